"""The services as ASGI apps and their migrations (SQLite and real PostgreSQL)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, MetaData, inspect

from pek.hub.models import Base as HubBase
from pek.hub.service import HubSubgraph
from pek.realm.models import Base as RealmBase
from pek.realm.service import RealmSubgraph
from pek.schema import ids
from pek.settings import Settings
from tests.subgraphs.conftest import run, viewer_headers

NODE_COMPOSE = Path(__file__).parents[1] / "composition" / "node" / "compose.mjs"


def _client(service: HubSubgraph | RealmSubgraph) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.asgi_app()), base_url="http://subgraph"
    )


async def test_http_post_get_and_health(hub: HubSubgraph) -> None:
    async with _client(hub) as client:
        posted = await client.post(
            "/graphql",
            json={"query": "query Me { me { id } }", "operationName": "Me"},
            headers=viewer_headers(hub.settings, 2),
        )
        assert posted.status_code == 200
        assert posted.json() == {"data": {"me": {"id": ids.encode("User", 2)}}}
        got = await client.get(
            "/graphql",
            params={"query": "query($n: Int) { users(first: $n) { totalCount } }",
                    "variables": json.dumps({"n": 1})},
            headers=viewer_headers(hub.settings, 2),
        )
        assert got.json()["data"]["users"]["totalCount"] == 300
        sdl = await client.post("/graphql", json={"query": "{ _service { sdl } }"})
        assert sdl.json()["data"]["_service"]["sdl"] == hub.sdl()
        health = await client.get("/health")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        assert (await client.get("/")).status_code == 404  # no GraphiQL on a subgraph


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b'{"query": 5}', 400),
        (b'{"query": "{ me { id } }", "variables": [1]}', 400),
    ],
)
async def test_http_rejects_malformed_requests(hub: HubSubgraph, body: bytes, status: int) -> None:
    async with _client(hub) as client:
        response = await client.post(
            "/graphql", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == status
    assert response.json()["errors"][0]["message"]


async def test_http_graphql_errors_are_graphql_responses(hub: HubSubgraph) -> None:
    async with _client(hub) as client:
        syntax = await client.post("/graphql", json={"query": "{ me { "})
        unknown = await client.post("/graphql", json={"query": "{ nope }"})
    assert syntax.status_code == 200 and "Syntax Error" in syntax.json()["errors"][0]["message"]
    assert "nope" in unknown.json()["errors"][0]["message"]


async def test_health_is_503_when_the_database_does_not_answer() -> None:
    settings = Settings(
        migrate=False, hub_database_url="postgresql+asyncpg://postgres@127.0.0.1:9/nowhere"
    )
    service = HubSubgraph(settings)
    await service.start()
    try:
        async with _client(service) as client:
            response = await client.get("/health")
            query = await client.post("/graphql", json={"query": "{ realms { id } }"})
    finally:
        await service.aclose()
    assert response.status_code == 503
    assert query.json()["errors"][0]["message"] == "Internal server error"


def _schema_diff(connection: Connection, metadata: MetaData, version_table: str) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"version_table": version_table})
    return list(compare_metadata(context, metadata))


async def test_migrations_on_both_databases_match_the_models(database_url: str) -> None:
    settings = Settings(hub_database_url=database_url, realm_database_url=database_url)
    hub, realm = HubSubgraph(settings), RealmSubgraph(settings)
    await hub.start()
    await realm.start()
    try:
        async with hub.engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            hub_diff = await conn.run_sync(_schema_diff, HubBase.metadata, "hub_alembic_version")
            realm_diff = await conn.run_sync(
                _schema_diff, RealmBase.metadata, "realm_alembic_version"
            )
    finally:
        await hub.aclose()
        await realm.aclose()
    assert {"hub_alembic_version", "realm_alembic_version", "hub_users", "realm_groups"} <= tables
    # Both histories in one database, and the migrations create exactly what the models say
    # (each side ignores the other's tables, which compare_metadata reports as "remove_table").
    assert [d for d in hub_diff if not _other_table(d, "realm_")] == []
    assert [d for d in realm_diff if not _other_table(d, "hub_")] == []


def _other_table(diff: Any, prefix: str) -> bool:
    return bool(diff[0] == "remove_table" and diff[1].name.startswith(prefix)) or (
        diff[0] == "remove_index" and diff[1].table.name.startswith(prefix)
    )


async def test_demo_seeding_on_postgresql(postgres_database: str) -> None:
    database_url = postgres_database
    settings = Settings(
        dev=True, demo_data=True, hub_database_url=database_url, realm_database_url=database_url
    )
    hub, realm = HubSubgraph(settings), RealmSubgraph(settings)
    await hub.start()
    await realm.start()
    try:
        # A user created after the demo gets a fresh id (the sequence was advanced).
        await hub.register_realm("second", "Second")
        from pek.hub import models

        async with hub.sessionmaker.begin() as session:
            user = models.User(username="late", first_name="Late", last_name="Comer")
            session.add(user)
        assert user.id == 301
        answer = await run(realm, "{ groups { totalCount } semesters { name } }")
        assert answer["data"]["groups"]["totalCount"] >= 24
        assert [s["name"] for s in answer["data"]["semesters"]] == [
            "2024-2025/2", "2025-2026/1", "2025-2026/2"]
    finally:
        await hub.aclose()
        await realm.aclose()


def test_sdls_compose_with_apollo_composition() -> None:
    node = shutil.which("node")
    if node is None or not (NODE_COMPOSE.parent / "node_modules" / "@apollo").is_dir():
        pytest.fail("needs Node and `npm ci --prefix tests/composition/node`")
    settings = Settings(dev=True)
    payload = [
        {"name": "hub", "url": "http://hub/graphql", "sdl": HubSubgraph(settings).sdl()},
        {"name": "realm", "url": "http://realm/graphql", "sdl": RealmSubgraph(settings).sdl()},
    ]
    completed = subprocess.run(
        [node, str(NODE_COMPOSE)], input=json.dumps(payload), capture_output=True, text=True,
        timeout=120, check=True,
    )
    result = json.loads(completed.stdout)
    assert result["errors"] == []
    supergraph = result["supergraphSdl"]
    assert '@join__type(graph: HUB, key: "id")' in supergraph
    assert '@join__type(graph: REALM, key: "id")' in supergraph
    api = result["apiSchema"]
    for field in ("memberships: [Membership!]!", "fullProfile: FullProfile",
                  "scoreboard(semester: String!): Scoreboard", "realms: [Realm!]!"):
        assert field in api, field
