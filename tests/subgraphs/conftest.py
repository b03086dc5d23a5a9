"""Fixtures of the subgraph tests: database URLs (SQLite and real PostgreSQL) and demo data."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pek.hub.service import HubSubgraph
from pek.realm.service import RealmSubgraph
from pek.router.transport import SubgraphRequest
from pek.schema import ids
from pek.schema.tokens import TokenSigner
from pek.settings import Settings
from tests.conftest import create_database, drop_database


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database, once SQLite and once a fresh PostgreSQL database (dropped after)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "pek.sqlite3")
        return
    name = await create_database("pek_subgraphs")
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await drop_database(name)


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with the hub and the "hub" realm migrated and seeded (built once)."""
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    url = sqlite_url(path)
    settings = Settings(dev=True, demo_data=True, hub_database_url=url, realm_database_url=url,
                        key_dir=str(path.parent / "keys"))

    async def build() -> None:
        hub, realm = HubSubgraph(settings), RealmSubgraph(settings)
        await hub.start()
        await realm.start()
        await hub.aclose()
        await realm.aclose()

    asyncio.run(build())
    return path


@pytest.fixture
def demo_settings(demo_template: Path, tmp_path: Path) -> Settings:
    """Dev-mode settings over a private copy of the demo database."""
    path = tmp_path / "demo.sqlite3"
    shutil.copy(demo_template, path)
    url = sqlite_url(path)
    return Settings(dev=True, hub_database_url=url, realm_database_url=url,
                    key_dir=str(tmp_path / "keys"))


@pytest.fixture
async def hub(demo_settings: Settings) -> AsyncIterator[HubSubgraph]:
    service = HubSubgraph(demo_settings)
    await service.start()
    yield service
    await service.aclose()


@pytest.fixture
async def realm(demo_settings: Settings) -> AsyncIterator[RealmSubgraph]:
    service = RealmSubgraph(demo_settings)
    await service.start()
    yield service
    await service.aclose()


async def run(
    service: HubSubgraph | RealmSubgraph,
    query: str,
    variables: dict[str, Any] | None = None,
    viewer: str | None = None,
) -> dict[str, Any]:
    """Execute ``query`` in-process, as ``viewer`` (a User id, global or local) if given."""
    headers = viewer_headers(service.settings, viewer) if viewer is not None else {}
    return await service.execute(SubgraphRequest(query, variables=variables, headers=headers))


def viewer_headers(settings: Settings, viewer: str | int) -> dict[str, str]:
    """An ``Authorization`` header with a real hub token for ``viewer`` (a User id, global or
    local): the only way a subgraph accepts a viewer."""
    text = str(viewer)
    local_id = int(text) if text.isdigit() else ids.decode(text, expected_type="User").local_id
    token, _ = TokenSigner.from_settings(settings).mint(local_id)
    return {"authorization": f"Bearer {token}"}


def error_codes(response: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in response.get("errors", [])]
