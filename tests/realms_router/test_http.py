"""Partial failure over real HTTP on loopback: a slow realm and a realm that refuses
connections; the registry read over HTTP from a hub-like endpoint."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from fixtures import HubInstance, RealmData, RealmInstance, realms_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from world import supergraph

from pek.router.gateway import Gateway
from pek.router.realms import (
    HttpRegistrySource,
    RealmInstances,
    RealmRegistry,
    RealmRoutingTransport,
)
from pek.router.transport import InProcessTransport


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Served:
    """Realm instances behind real HTTP, plus ``GET /internal/realms`` like the hub's."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.refused_port = _free_port()  # nothing listens there
        self.instances: dict[str, RealmInstance] = {}
        for realm, names in {"kir": ["Alpha", "Delta"], "sem": ["Bravo"], "vik": ["Charlie"],
                             "gone": ["Echo"]}.items():
            data = RealmData()
            for name in names:
                data.add_group(name)
            self.instances[realm] = RealmInstance(realm, data)
        self.instances["sem"].delay = 3.0
        base = f"http://127.0.0.1:{self.port}"
        self.registry: dict[str, Any] = {
            "version": 1,
            "realms": [
                {"id": "kir", "name": "KIR", "url": f"{base}/realms/kir/graphql",
                 "timeout_ms": 2000, "enabled": True, "position": 1},
                {"id": "sem", "name": "SEM", "url": f"{base}/realms/sem/graphql",
                 "timeout_ms": 300, "enabled": True, "position": 2},
                {"id": "vik", "name": "VIK", "url": f"{base}/realms/vik/graphql",
                 "timeout_ms": 2000, "enabled": True, "position": 3},
                {"id": "gone", "name": "Gone",
                 "url": f"http://127.0.0.1:{self.refused_port}/realms/gone/graphql",
                 "timeout_ms": 2000, "enabled": True, "position": 4},
            ],
        }

        async def realms(request: Request) -> JSONResponse:
            return JSONResponse(self.registry)

        app = Starlette(routes=[Route("/internal/realms", realms),
                                Mount("/", realms_app(self.instances))])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    served = Served()
    task = asyncio.create_task(served.server.serve())
    for _ in range(500):
        if served.server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield served
    finally:
        served.server.should_exit = True
        await task


@pytest.fixture
async def gateway(served: Served) -> AsyncIterator[Gateway]:
    registry = RealmRegistry(
        HttpRegistrySource(f"http://127.0.0.1:{served.port}/internal/realms"),
        refresh_seconds=0.2,
    )
    layer = RealmRoutingTransport(
        InProcessTransport({"hub": HubInstance()}), supergraph(), registry, RealmInstances()
    )
    await layer.start()
    try:
        yield Gateway(supergraph(), layer)
    finally:
        await layer.aclose()


async def test_slow_and_refusing_realms_leave_the_others_answering(
    served: Served, gateway: Gateway
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await gateway.execute(
        "{ groups(first: 10) { totalCount edges { node { name realmId } } } }"
    )
    assert loop.time() - started < 2.0  # the slow realm's 300 ms timeout, not its 3 s
    edges = result["data"]["groups"]["edges"]
    assert [(e["node"]["name"], e["node"]["realmId"]) for e in edges] == [
        ("Alpha", "kir"), ("Charlie", "vik"), ("Delta", "kir"),
    ]
    assert result["data"]["groups"]["totalCount"] == 3
    errors = sorted(
        (e["extensions"]["code"], e["extensions"]["realm"], e["message"], tuple(e["path"]))
        for e in result["errors"]
    )
    assert errors == [
        ("REALM_UNAVAILABLE", "gone", "Realm Gone is unavailable", ("groups",)),
        ("REALM_UNAVAILABLE", "sem", "Realm SEM is unavailable", ("groups",)),
    ]


async def test_registry_changes_over_http_take_effect_while_running(
    served: Served, gateway: Gateway
) -> None:
    served.registry = {
        "version": 2,
        "realms": [r for r in served.registry["realms"] if r["id"] in ("kir", "vik")],
    }
    for _ in range(50):  # the router polls every 0.2 s
        result = await gateway.execute('{ searchGroups(search: "") { realmId } }')
        if "errors" not in result:
            break
        await asyncio.sleep(0.1)
    assert "errors" not in result
    assert {g["realmId"] for g in result["data"]["searchGroups"]} == {"kir", "vik"}
