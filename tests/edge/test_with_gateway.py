"""The edge in front of the real ``pek.router.gateway.Gateway`` (test subgraphs, in-process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest

from pek.router.devauth import COOKIE_NAME, sign_user
from pek.router.gateway import Gateway
from pek.router.http import create_app
from pek.router.transport import InProcessTransport
from pek.settings import Settings
from tests.router.subgraphs import SCHEMAS, SUPERGRAPH_FILE, RecordingSubgraph

from .conftest import client_for, local_edge_auth, signer_for

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
QUERY = "{ me { name reviews { body } } }"


@pytest.fixture
def subgraphs() -> dict[str, RecordingSubgraph]:
    return {name: RecordingSubgraph(schema) for name, schema in SCHEMAS.items()}


@pytest.fixture
def gateway(subgraphs: dict[str, RecordingSubgraph]) -> Gateway:
    return Gateway(SUPERGRAPH_FILE.read_text(), InProcessTransport(subgraphs))


@pytest.fixture
async def dev_client(gateway: Gateway, key_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(dev=True)
    app = create_app(gateway, settings, auth=local_edge_auth(settings, key_dir))
    async with client_for(app) as client:
        yield client


async def test_query_through_the_real_gateway(
    dev_client: httpx.AsyncClient, subgraphs: dict[str, RecordingSubgraph], key_dir: Path
) -> None:
    token = signer_for(Settings(), key_dir).mint(1)[0]
    response = await dev_client.post(
        "/graphql",
        json={"query": QUERY},
        headers={"accept": GRAPHQL_RESPONSE_JSON, "authorization": f"Bearer {token}",
                 "x-other": "no"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == GRAPHQL_RESPONSE_JSON
    reviews = [{"body": "Love it"}, {"body": "Comfy"}]
    assert response.json() == {"data": {"me": {"name": "Ada Lovelace", "reviews": reviews}}}
    fetched = [r for s in subgraphs.values() for r in s.requests]
    assert len(fetched) >= 2
    assert all(r.headers == {"authorization": f"Bearer {token}"} for r in fetched)


async def test_request_error_from_the_gateway_is_400_or_200_by_media_type(
    dev_client: httpx.AsyncClient,
) -> None:
    body = {"query": "{ me { nope } }"}
    new = await dev_client.post("/graphql", json=body, headers={"accept": GRAPHQL_RESPONSE_JSON})
    assert new.status_code == 400
    assert "data" not in new.json()
    assert new.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    legacy = await dev_client.post("/graphql", json=body)
    assert legacy.status_code == 200 and legacy.json() == new.json()


async def test_get_query_and_dev_cookie_reach_the_subgraphs(
    dev_client: httpx.AsyncClient, subgraphs: dict[str, RecordingSubgraph]
) -> None:
    dev_client.cookies.set(COOKIE_NAME, sign_user("VXNlcjo6MQ", Settings().secret_key))
    response = await dev_client.get(
        "/graphql", params={"query": "{ me { name } }"}, headers={"graphql-preflight": "1"}
    )
    assert response.json() == {"data": {"me": {"name": "Ada Lovelace"}}}
    # The dev cookie became a hub token for that user; no header names the user.
    forwarded = subgraphs["accounts"].requests[-1].headers
    assert list(forwarded) == ["authorization"]
    token = forwarded["authorization"].removeprefix("Bearer ")
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "VXNlcjo6MQ"


async def test_query_plan_on_request_in_dev_mode_only(gateway: Gateway) -> None:
    for dev in (True, False):
        async with client_for(create_app(gateway, Settings(dev=dev))) as client:
            response = await client.post(
                "/graphql", json={"query": QUERY}, headers={"x-pek-query-plan": "1"}
            )
        body = response.json()
        assert body["data"]["me"]["name"] == "Ada Lovelace"
        assert ("queryPlan" in body.get("extensions", {})) is dev
