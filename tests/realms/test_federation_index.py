"""The federation index: realms tell the hub whose memberships they hold, for real.

Hub and realm as HTTP services on loopback (uvicorn) over PostgreSQL: signed calls, the
start-up full resync, changes from mutations, the hub going down and the realm catching up
from its outbox when it returns. Plus the hub's refusals (bad signature, stale timestamp,
replay, unknown realm) and the in-process path of ``pek dev``.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette

from pek.hub.service import HubSubgraph
from pek.realm.canary import seed_canary
from pek.realm.index import InProcessIndexSink, queue_full_resync
from pek.realm.service import RealmSubgraph
from pek.schema import ids
from pek.schema.index_protocol import IndexMessage, sign
from pek.settings import Settings
from tests.conftest import create_database, drop_database
from tests.realms.conftest import post_graphql, realm_settings, viewer_headers

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/"
SECRET = "test-index-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Served:
    """An ASGI app served by uvicorn on loopback inside this event loop; stop and restart."""

    def __init__(self, app: Starlette, port: int) -> None:
        self.app, self.port = app, port
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, lifespan="off",
                                log_level="warning")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        await eventually(self._started, within=10.0)

    async def _started(self) -> bool:
        return self._server is not None and self._server.started

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = self._task = None


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    """Poll ``check`` until it holds (a background task is expected to make it true)."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubSubgraph]:
    name = await create_database("pek_index_hub")
    service = HubSubgraph(realm_settings(tmp_path, hub_database_url=PG + name,
                                         index_secret=SECRET))
    await service.start()
    for realm in ("alpha", "beta"):
        await service.register_realm(realm, realm.title())
    try:
        yield service
    finally:
        await service.aclose()
        await drop_database(name)


async def _index(url: str, *users: int) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.get(url, params=[("user", ids.encode("User", u)) for u in users])
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_realm_keeps_the_hub_index_current_and_catches_up_after_an_outage(
    hub: HubSubgraph, tmp_path: Path
) -> None:
    port = _free_port()
    served = Served(Starlette(routes=hub.routes()), port)
    await served.start()
    index_url = f"http://127.0.0.1:{port}/internal/federation-index"
    realm_db = await create_database("pek_index_realm")
    settings = realm_settings(
        tmp_path, realm_ids="alpha,beta", realm_database_url=PG + realm_db,
        index_url=index_url, index_secret=SECRET,
    )
    realm = RealmSubgraph(settings)
    try:
        await realm.start()
        assert realm.index_drainer is not None
        async with realm.sessions_of("alpha").begin() as session:
            canary = await seed_canary(session, "alpha", user_ids=(1, 2, 3))
        async with realm.sessions_of("beta").begin() as session:
            await seed_canary(session, "beta", user_ids=(3, 4))
        for realm_id in realm.realm_ids:
            await queue_full_resync(realm.sessions_of(realm_id))
        realm.index_drainer.notify()

        async def synced() -> bool:
            users = (await _index(index_url, 1, 3, 4, 9))["users"]
            u = {k: v for k, v in users.items()}
            return u == {
                ids.encode("User", 1): ["alpha"], ids.encode("User", 3): ["alpha", "beta"],
                ids.encode("User", 4): ["beta"], ids.encode("User", 9): [],
            }

        await eventually(synced)
        first = await _index(index_url, 1)
        assert set(first["realms"]) == {"alpha", "beta"}
        assert first["realms"]["alpha"]["synced_at"]

        # The hub goes down; a user applies meanwhile: the change waits in the outbox.
        await served.stop()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=realm.asgi_app()), base_url="http://realm"
        ) as client:
            applied = await post_graphql(
                client, "/realms/alpha/graphql",
                "mutation($g: ID!) { applyToGroup(groupId: $g) { id } }",
                {"g": canary.ids["Group"][1]}, viewer_headers(settings, 7),
            )
            assert "errors" not in applied, applied

            async def failing() -> bool:
                drainer = realm.index_drainer
                return drainer is not None and drainer.last_error is not None

            await eventually(failing)
            assert await realm.pending_index_updates() >= 1

            # Back up: the realm delivers what it kept.
            await served.start()

            async def caught_up() -> bool:
                users = (await _index(index_url, 7))["users"]
                return users[ids.encode("User", 7)] == ["alpha"]

            await eventually(caught_up, within=45)
            await eventually(lambda: _no_pending(realm))
            version = (await _index(index_url, 7))["version"]

            withdrawn = await post_graphql(
                client, "/realms/alpha/graphql",
                "mutation($m: ID!) { withdrawApplication(membershipId: $m) }",
                {"m": applied["data"]["applyToGroup"]["id"]}, viewer_headers(settings, 7),
            )
            assert withdrawn == {"data": {"withdrawApplication": True}}

            async def removed() -> bool:
                return (await _index(index_url, 7))["users"][ids.encode("User", 7)] == []

            await eventually(removed)
            assert (await _index(index_url, 7))["version"] > version
    finally:
        await realm.aclose()
        await served.stop()
        await drop_database(realm_db)


async def _no_pending(realm: RealmSubgraph) -> bool:
    return await realm.pending_index_updates() == 0


async def test_hub_refuses_unsigned_stale_replayed_and_unknown(hub: HubSubgraph) -> None:
    path = "/internal/federation-index"
    message = IndexMessage("alpha", 5, user_ids_added=(ids.encode("User", 1),))
    body = orjson.dumps(message.to_json())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=Starlette(routes=hub.routes())), base_url="http://hub"
    ) as client:
        async def send(content: bytes, headers: dict[str, str]) -> httpx.Response:
            return await client.post(path, content=content,
                                     headers={"content-type": "application/json", **headers})

        assert (await send(body, {})).status_code == 401
        wrong = sign("another-secret", body).as_dict()
        assert (await send(body, wrong)).status_code == 401
        stale = sign(SECRET, body, now=time.time() - 3600).as_dict()
        assert (await send(body, stale)).status_code == 401
        tampered = sign(SECRET, body).as_dict()
        assert (await send(body.replace(b"alpha", b"beta"), tampered)).status_code == 401

        good = sign(SECRET, body).as_dict()
        accepted = await send(body, good)
        assert accepted.status_code == 200 and accepted.json() == {"applied": True}
        replay = await send(body, good)
        assert replay.status_code == 409 and replay.json()["error"]["code"] == "REPLAY"
        # A fresh signature of an old message is accepted but changes nothing.
        duplicate = await send(body, sign(SECRET, body).as_dict())
        assert duplicate.json() == {"applied": False}

        unknown = orjson.dumps(IndexMessage("gamma", 1).to_json())
        refused = await send(unknown, sign(SECRET, unknown).as_dict())
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "UNKNOWN_REALM"
        bad = b'{"realm": "alpha", "sequence": 9, "user_ids_added": ["nope"]}'
        assert (await send(bad, sign(SECRET, bad).as_dict())).status_code == 400
        assert (await client.get(path, params={"user": "nope"})).status_code == 400

        index = (await client.get(path, params={"user": ids.encode("User", 1)})).json()
        assert index["users"] == {ids.encode("User", 1): ["alpha"]}
        assert index["realms"]["alpha"]["sequence"] == 5


async def test_in_process_sink_uses_the_same_outbox(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'dev.sqlite3'}"
    settings = Settings(hub_database_url=url, realm_database_url=url, realm_ids="hub,kir")
    hub = HubSubgraph(settings)
    await hub.start()
    await hub.register_realm("hub", "Hub")
    await hub.register_realm("kir", "KIR Dev")
    realm = RealmSubgraph(settings, index_sink=InProcessIndexSink(hub))
    await realm.start()
    try:
        async with realm.sessions_of("kir").begin() as session:
            await seed_canary(session, "kir", user_ids=(11, 12))
        await queue_full_resync(realm.sessions_of("kir"))
        assert realm.index_drainer is not None
        realm.index_drainer.notify()

        async def indexed() -> bool:
            users = (await hub.read_federation_index([ids.encode("User", 11)]))["users"]
            return users == {ids.encode("User", 11): ["kir"]}

        await eventually(indexed)
        assert await realm.pending_index_updates() == 0
    finally:
        await realm.aclose()
        await hub.aclose()


async def test_hub_publishes_the_index_version_for_routers(tmp_path: Path) -> None:
    """Every index change raises the version routers watch in Redis, so their cached entries
    are dropped at once (a stale cache never hides a realm a user just joined)."""
    import redis.asyncio as aioredis

    from pek.router.realms.index import VERSION_KEY
    from pek.schema.index_protocol import REDIS_VERSION_KEY

    assert REDIS_VERSION_KEY == VERSION_KEY  # the hub and the router agree on the key
    redis_url = "redis://127.0.0.1:6379/11"
    client = aioredis.from_url(redis_url)
    await client.delete(VERSION_KEY)
    name = await create_database("pek_index_hub")
    service = HubSubgraph(realm_settings(tmp_path, hub_database_url=PG + name,
                                         index_secret=SECRET, redis_url=redis_url))
    try:
        await service.start()
        await service.register_realm("alpha", "Alpha")
        message = IndexMessage("alpha", 1, user_ids_added=(ids.encode("User", 3),))
        assert await service.apply_index_message(message)
        first = int(await client.get(VERSION_KEY))
        read = await service.read_federation_index([ids.encode("User", 3)])
        assert first == read["version"]
        later = IndexMessage("alpha", 2, user_ids_removed=(ids.encode("User", 3),))
        assert await service.apply_index_message(later)
        assert int(await client.get(VERSION_KEY)) > first
    finally:
        await client.delete(VERSION_KEY)
        await client.aclose()
        await service.aclose()
        await drop_database(name)
