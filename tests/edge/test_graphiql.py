"""GraphiQL page, its whitelisted local assets, and what happens when they are missing."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest

from pek.router.graphiql import ASSETS, DEFAULT_ASSETS_DIR, INSTALL_COMMAND
from pek.settings import Settings

from .conftest import DEMO_USERS, AppFactory, client_for

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def require_assets() -> None:
    missing = [rel for rel in ASSETS.values() if not (DEFAULT_ASSETS_DIR / rel).is_file()]
    if missing:
        pytest.fail(f"GraphiQL assets missing ({', '.join(missing)}): run `{INSTALL_COMMAND}`")


async def test_browser_gets_graphiql_with_local_assets_only(client: httpx.AsyncClient) -> None:
    require_assets()
    response = await client.get("/graphql", headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sorted(sources) == sorted(f"/graphiql-assets/{name}" for name in ASSETS)
    assert "http://" not in page and "https://" not in page and "//unpkg" not in page
    assert "groups(first: 5)" in page
    for source in sources:
        asset = await client.get(source)
        assert asset.status_code == 200, source
        assert len(asset.content) > 1000


async def test_assets_have_the_right_types(client: httpx.AsyncClient) -> None:
    require_assets()
    js = await client.get("/graphiql-assets/graphiql.min.js")
    assert js.headers["content-type"].startswith("text/javascript")
    css = await client.get("/graphiql-assets/graphiql.min.css")
    assert css.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    "path",
    [
        "/graphiql-assets/package.json",
        "/graphiql-assets/..%2Fpackage.json",
        "/graphiql-assets/graphiql.js",
        "/graphiql-assets/react/umd/react.production.min.js",
    ],
)
async def test_only_whitelisted_assets_are_served(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404


async def test_graphiql_disabled_means_no_page(make_app: AppFactory) -> None:
    async with client_for(make_app(settings=Settings(graphiql=False))) as client:
        page = await client.get("/graphql", headers=BROWSER)
        asset = await client.get("/graphiql-assets/graphiql.min.js")
        api = await client.post("/graphql", json={"query": "{ hello }"})
    assert page.status_code == 404
    assert asset.status_code == 404
    assert api.json() == {"data": {"hello": "Hello, world!"}}


async def test_missing_assets_page_names_the_install_command(
    make_app: AppFactory, tmp_path: Path
) -> None:
    async with client_for(make_app(graphiql_assets=tmp_path / "node_modules")) as client:
        page = await client.get("/graphql", headers=BROWSER)
        api = await client.post("/graphql", json={"query": "{ hello }"})
    assert page.status_code == 503
    assert INSTALL_COMMAND in page.text
    assert api.json() == {"data": {"hello": "Hello, world!"}}


async def test_startup_warns_when_assets_are_missing(
    make_app: AppFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []

    async def started() -> None:
        events.append("start")

    async def stopped() -> None:
        events.append("stop")

    app = make_app(
        graphiql_assets=tmp_path / "node_modules", on_startup=[started], on_shutdown=[stopped]
    )
    with caplog.at_level(logging.WARNING):
        async with app.router.lifespan_context(app):
            assert events == ["start"]
            async with client_for(app) as client:
                assert (await client.get("/health")).json() == {"status": "ok"}
    assert events == ["start", "stop"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(INSTALL_COMMAND in w and "GraphiQL" in w for w in warnings), warnings


async def test_no_warning_when_assets_are_installed(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    require_assets()
    app = make_app()
    with caplog.at_level(logging.WARNING):
        async with app.router.lifespan_context(app):
            pass
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_dev_page_shows_who_is_signed_in(dev_client: httpx.AsyncClient) -> None:
    require_assets()
    anonymous = await dev_client.get("/graphql", headers=BROWSER)
    assert "Not signed in" in anonymous.text
    assert 'href="/dev/sign-in"' in anonymous.text
    await dev_client.post("/dev/sign-in", json={"user": DEMO_USERS[2]["id"]})
    signed_in = await dev_client.get("/graphql", headers=BROWSER)
    assert f"Signed in as <strong>{DEMO_USERS[2]['name']}</strong>" in signed_in.text
    assert "Switch user" in signed_in.text


async def test_production_page_has_no_sign_in(client: httpx.AsyncClient) -> None:
    require_assets()
    page = await client.get("/graphql", headers=BROWSER)
    assert "/dev/sign-in" not in page.text


async def test_health_and_readiness(make_app: AppFactory) -> None:
    state = {"ready": False}

    async def ready() -> bool:
        if state["ready"] is None:
            raise ConnectionError("supergraph not loaded")
        return bool(state["ready"])

    async with client_for(make_app(ready=ready)) as client:
        assert (await client.get("/health")).json() == {"status": "ok"}
        not_ready = await client.get("/ready")
        assert not_ready.status_code == 503
        state["ready"] = True
        assert (await client.get("/ready")).status_code == 200
        state["ready"] = None  # type: ignore[assignment]
        failing = await client.get("/ready")
        assert failing.status_code == 503
        assert "supergraph" not in failing.text
