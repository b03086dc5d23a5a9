"""The authorisation matrix (``matrix.json``) through real processes, as in production.

Issue 5: policies are defined centrally at the hub and enforced by each realm on its own data.
``test_matrix.py`` checks every case with all parts in one event loop; here the same cases (the
same seeding, operations and checks, from ``world.py``) run against separate processes talking
HTTP: ``pek hub`` (its own PostgreSQL database), ``pek realm`` for ``alpha`` and ``pek realm``
for ``beta`` (a PostgreSQL database each), registered the operator's way (``pek realms add``),
and ``pek router`` composed from the running subgraphs. Realms read the policies from the
hub's ``/internal/policies`` and report their memberships to the hub's federation index with
signed calls (``PEK_INDEX_SECRET``); every process runs outside dev mode.

One topology serves the whole module, so only cases that leave the data as it was run here:

* every read (allowed or denied), through the router with ``Authorization: Bearer`` tokens
  minted with the hub's key directory;
* every denied write, through the router: the error is FORBIDDEN/UNAUTHENTICATED and a
  snapshot read straight from the PostgreSQL databases is unchanged;
* every denied write of a realm operation by a signed-in role, sent straight to that realm's
  process (no router): the realm itself answers FORBIDDEN, so enforcement does not depend on
  the router.

Allowed writes change state that later cases depend on (an accepted membership, a judged
evaluation, a new season), so they are checked in-process only, by ``test_matrix.py`` with a
fresh database per case.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from pek.hub.service import HubSubgraph
from pek.realm import models
from pek.realm.index import pending_count
from pek.realm.scoping import realm_sessionmaker
from pek.realm.service import RealmSubgraph
from pek.schema.tokens import TokenSigner
from pek.settings import Settings
from tests.authz.world import (
    HUB_WRITES,
    MATRIX,
    READS,
    REALMS,
    Ask,
    RealmRefs,
    check_case,
    error_codes,
    gid,
    matrix_cases,
    perform,
    seed_hub_users,
    seed_realm,
    snapshot,
)
from tests.conftest import create_database, drop_database
from tests.processes import PekProcess, free_port, register_realm

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/"
SECRET = "authz-matrix-index-secret"


@dataclass
class Topology:
    """The running processes' addresses and what the tests need to reach their data."""

    router: str
    #: realm id -> the realm process's endpoint of that realm
    realm_urls: dict[str, str]
    hub_database: str
    #: realm id -> its database URL
    realm_databases: dict[str, str]
    key_dir: Path
    #: realm id -> the local ids of its seeded rows
    refs: dict[str, RealmRefs]


def _env(**extra: str) -> dict[str, str]:
    return {"PEK_LOG_LEVEL": "warning", "PEK_DEV": "false", "PEK_INDEX_SECRET": SECRET, **extra}


async def _seed(hub_database: str, realm_databases: dict[str, str], key_dir: Path
                ) -> dict[str, RealmRefs]:
    """The matrix's world written into the PostgreSQL databases before any process starts:
    the hub's users (its default policies and first signing key come with its start-up), and
    each realm's rows through a short-lived RealmSubgraph on that realm's database."""
    hub = HubSubgraph(Settings(hub_database_url=hub_database, key_dir=str(key_dir)),
                      demo_realms=[])
    await hub.start()
    try:
        async with hub.sessionmaker.begin() as session:
            await seed_hub_users(session)
    finally:
        await hub.aclose()
    refs = {}
    for realm_id, url in realm_databases.items():
        # No hub URL and no secret: this object sends nothing; the realm process's own
        # start-up queues the full index resync that tells the hub about these rows.
        realm = RealmSubgraph(Settings(realm_database_url=url, realm_id=realm_id,
                                       realm_ids=realm_id, key_dir=str(key_dir)))
        await realm.start()
        try:
            refs[realm_id] = await seed_realm(realm.sessions_of(realm_id), realm_id)
        finally:
            await realm.aclose()
    return refs


async def _index_pending(realm_databases: dict[str, str]) -> int:
    """Federation-index updates the realms have not delivered to the hub yet."""
    pending = 0
    for realm_id, url in realm_databases.items():
        engine = create_async_engine(url)
        try:
            pending += await pending_count(realm_sessionmaker(engine, realm_id))
        finally:
            await engine.dispose()
    return pending


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    logs = tmp_path_factory.mktemp("authz-processes")
    key_dir = logs / "hub-keys"
    databases: list[str] = []
    started: list[PekProcess] = []

    def database(prefix: str) -> str:
        name = asyncio.run(create_database(prefix))
        databases.append(name)
        return PG + name

    try:
        hub_database = database("pek_authz_hub")
        realm_databases = {realm_id: database(f"pek_authz_{realm_id}") for realm_id in REALMS}
        refs = asyncio.run(_seed(hub_database, realm_databases, key_dir))
        ports = {name: free_port() for name in ("hub", *REALMS, "router")}
        hub_url = f"http://127.0.0.1:{ports['hub']}"
        hub = PekProcess(
            ["hub", "--port", str(ports["hub"])],
            _env(PEK_HUB_DATABASE_URL=hub_database, PEK_KEY_DIR=str(key_dir)),
            logs / "hub.log",
        )
        started.append(hub)
        hub.wait_healthy(f"{hub_url}/health")
        realm_urls = {
            realm_id: f"http://127.0.0.1:{ports[realm_id]}/realms/{realm_id}/graphql"
            for realm_id in REALMS
        }
        # Registered before the realms start, so that the hub takes their first index call.
        for realm_id in REALMS:
            register_realm(hub_database, realm_id, realm_urls[realm_id], timeout_ms=10000)
        for realm_id in REALMS:
            realm = PekProcess(
                ["realm", "--port", str(ports[realm_id]), "--realm-id", realm_id],
                _env(PEK_REALM_DATABASE_URL=realm_databases[realm_id],
                     PEK_HUB_URL=f"{hub_url}/graphql"),
                logs / f"realm-{realm_id}.log",
            )
            started.append(realm)
            realm.wait_healthy(f"http://127.0.0.1:{ports[realm_id]}/health")
        # The hub decides full profiles from the groups the realms publish with the index.
        for _ in range(150):
            if asyncio.run(_index_pending(realm_databases)) == 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the realms did not deliver the federation index:\n"
                                 + "\n".join(p.log() for p in started))
        router = PekProcess(
            ["router", "--port", str(ports["router"]), "--hub-url", f"{hub_url}/graphql",
             "--realm-url", realm_urls[REALMS[0]]],
            _env(),
            logs / "router.log",
        )
        started.append(router)
        router.wait_healthy(f"http://127.0.0.1:{ports['router']}/health")
        yield Topology(
            router=f"http://127.0.0.1:{ports['router']}/graphql", realm_urls=realm_urls,
            hub_database=hub_database, realm_databases=realm_databases, key_dir=key_dir,
            refs=refs,
        )
    finally:
        for process in reversed(started):
            process.stop()
        for name in databases:
            asyncio.run(drop_database(name.removeprefix(PG)))


@dataclass
class Live:
    """HTTP client, token signer and database engines of one module's event loop."""

    topology: Topology
    client: httpx.AsyncClient
    signer: TokenSigner
    hub_engine: AsyncEngine
    realm_engines: dict[str, AsyncEngine]

    def asker(self, url: str) -> Ask:
        """An :data:`Ask` that POSTs to ``url`` with the viewer's hub token."""

        async def ask(viewer: int | None, query: str, variables: dict[str, Any]
                      ) -> dict[str, Any]:
            headers = {"accept": "application/json"}
            if viewer is not None:
                token, _ = self.signer.mint(viewer)
                headers["authorization"] = f"Bearer {token}"
            response = await self.client.post(
                url, json={"query": query, "variables": variables}, headers=headers)
            assert response.status_code == 200, (response.status_code, response.text)
            body: dict[str, Any] = response.json()
            return body

        return ask

    async def snapshot(self, realm_id: str) -> Any:
        """Read straight from the realm's and the hub's PostgreSQL databases."""
        return await snapshot(realm_sessionmaker(self.realm_engines[realm_id], realm_id),
                              async_sessionmaker(self.hub_engine))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def live(topology: Topology) -> AsyncIterator[Live]:
    engines = {realm_id: create_async_engine(url)
               for realm_id, url in topology.realm_databases.items()}
    hub_engine = create_async_engine(topology.hub_database)
    signer = TokenSigner.from_settings(Settings(key_dir=str(topology.key_dir)))
    async with httpx.AsyncClient(timeout=30.0) as client:
        try:
            yield Live(topology, client, signer, hub_engine, engines)
        finally:
            for engine in (hub_engine, *engines.values()):
                await engine.dispose()


ROUTER_CASES = matrix_cases(lambda role, operation, expected: operation in READS or not expected)
DIRECT_CASES = matrix_cases(
    lambda role, operation, expected: not expected and operation not in READS
    and operation not in HUB_WRITES and MATRIX["roles"][role] is not None
)


@pytest.mark.parametrize(("role", "operation", "realm_index"), ROUTER_CASES)
async def test_matrix_through_the_router(live: Live, role: str, operation: str,
                                         realm_index: int) -> None:
    await check_case(live.asker(live.topology.router), live.topology.refs[REALMS[realm_index]],
                     live.snapshot, role, operation, realm_index)


@pytest.mark.parametrize(("role", "operation", "realm_index"), DIRECT_CASES)
async def test_the_realm_itself_refuses(live: Live, role: str, operation: str,
                                        realm_index: int) -> None:
    """A valid token of a role the matrix denies, sent to the realm's own process: the realm
    answers FORBIDDEN and changes nothing."""
    realm_id = REALMS[realm_index]
    before = await live.snapshot(realm_id)
    allowed, body, write = await perform(
        live.asker(live.topology.realm_urls[realm_id]), live.topology.refs[realm_id],
        MATRIX["roles"][role], operation, realm_id)
    assert write and not allowed, body
    assert error_codes(body) == {"FORBIDDEN"}, body
    assert await live.snapshot(realm_id) == before, "a denied write changed data"


async def _description(live: Live, realm_id: str, group: int) -> str | None:
    async with realm_sessionmaker(live.realm_engines[realm_id], realm_id)() as session:
        row = await session.get(models.Group, group)
        assert row is not None
        return row.description


@pytest.mark.parametrize("through", ["router", "realm"])
async def test_an_allowed_write_shows_in_the_snapshot(live: Live, through: str) -> None:
    """The checks above are not vacuous: the snapshot is read from the databases the
    processes write, and the paths that refuse also accept a role the matrix allows (the
    circle's leader edits the circle in alpha). A group's description decides no permission,
    so this write changes no other case's outcome, in whatever order the cases run."""
    refs = live.topology.refs["alpha"]
    circle = refs.groups["Circle"]
    url = live.topology.router if through == "router" else live.topology.realm_urls["alpha"]
    text = f"edited through the {through}"
    before = await live.snapshot("alpha")
    assert len(before[0]) == 4 and len(before[1]) == 8, before  # the seeded world
    body = await live.asker(url)(
        MATRIX["roles"]["leader"],
        "mutation($id: ID!, $d: String!) { updateGroup(id: $id, description: $d) { id } }",
        {"id": gid("alpha", "Group", circle), "d": text})
    assert not body.get("errors"), body
    assert await live.snapshot("alpha") != before
    assert await _description(live, "alpha", circle) == text
