"""Inbound operation dedup and subgraph fetch dedup, over the real Gateway and real strawberry
subgraphs (in-process), with a gate in front of the subgraphs so concurrent requests overlap."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from pek.router.dedup import DeduplicatingGateway, operation_type
from pek.router.fetch_dedup import DeduplicatingTransport, is_query_text
from pek.router.gateway import Gateway
from pek.router.http import create_app
from pek.router.transport import (
    InProcessTransport,
    SubgraphRequest,
    SubgraphUnavailable,
)
from pek.settings import Settings
from tests.edge.conftest import local_edge_auth, signer_for
from tests.router.subgraphs import MUTATION_LOG, SCHEMAS, RecordingSubgraph, supergraph_sdl

QUERY = "{ users { id username reviews { body product { name price inStock } } } }"
N = 8


class GatedSubgraph:
    """A real subgraph behind a gate: requests wait until the test opens it, so requests sent
    together are in flight together (a subgraph that answers synchronously would not let them
    overlap)."""

    def __init__(self, inner: RecordingSubgraph, gate: asyncio.Event) -> None:
        self.inner = inner
        self.gate = gate

    @property
    def requests(self) -> list[SubgraphRequest]:
        return self.inner.requests

    async def execute(self, request: SubgraphRequest) -> dict[str, Any]:
        await self.gate.wait()
        return await self.inner.execute(request)


@pytest.fixture(scope="module")
def supergraph() -> str:
    return supergraph_sdl()


@pytest.fixture
def gate() -> asyncio.Event:
    return asyncio.Event()


@pytest.fixture
def subgraphs(gate: asyncio.Event) -> dict[str, GatedSubgraph]:
    return {name: GatedSubgraph(RecordingSubgraph(s), gate) for name, s in SCHEMAS.items()}


def total_requests(subgraphs: Mapping[str, GatedSubgraph]) -> int:
    return sum(len(s.requests) for s in subgraphs.values())


async def run_together(
    gate: asyncio.Event, calls: list[Any], *, return_exceptions: bool = False
) -> list[Any]:
    tasks = [asyncio.ensure_future(c) for c in calls]
    for _ in range(5):  # let every request reach its gate (or join a flight)
        await asyncio.sleep(0)
    gate.set()
    return await asyncio.gather(*tasks, return_exceptions=return_exceptions)


def make(
    supergraph: str,
    subgraphs: Mapping[str, GatedSubgraph],
    *,
    dedup: bool = True,
    fetch_dedup: bool = False,
) -> tuple[DeduplicatingGateway, DeduplicatingTransport]:
    transport = DeduplicatingTransport(InProcessTransport(subgraphs), enabled=fetch_dedup)
    return DeduplicatingGateway(Gateway(supergraph, transport), enabled=dedup), transport


# -- inbound operation dedup ---------------------------------------------------------------------


async def test_identical_queries_share_one_execution(
    supergraph: str, subgraphs: dict[str, GatedSubgraph], gate: asyncio.Event
) -> None:
    gateway, _ = make(supergraph, subgraphs)
    results = await run_together(gate, [gateway.execute(QUERY) for _ in range(N)])
    shared_requests = total_requests(subgraphs)

    # The same query alone, for comparison: the subgraph work of exactly one execution.
    for s in subgraphs.values():
        s.requests.clear()
    alone = await gateway.execute(QUERY)
    assert shared_requests == total_requests(subgraphs) > 0
    assert all(r == alone for r in results)
    assert alone["data"]["users"][0]["reviews"][0]["product"]["name"] == "Table"
    assert (gateway.stats.executions, gateway.stats.shared) == (2, N - 1)
    assert gateway.in_flight == 0


async def test_every_waiter_gets_its_own_top_level_dict(
    supergraph: str, subgraphs: dict[str, GatedSubgraph], gate: asyncio.Event
) -> None:
    gateway, _ = make(supergraph, subgraphs)
    first, second = await run_together(gate, [gateway.execute(QUERY), gateway.execute(QUERY)])
    first["extensions"] = {"mine": True}
    assert "extensions" not in second


async def test_execute_encoded_encodes_once_per_shared_execution(
    supergraph: str,
    subgraphs: dict[str, GatedSubgraph],
    gate: asyncio.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gateway, _ = make(supergraph, subgraphs)
    encodings = 0
    real_dumps = orjson.dumps

    def counting_dumps(value: Any, *args: Any, **kwargs: Any) -> bytes:
        nonlocal encodings
        encodings += 1
        return real_dumps(value, *args, **kwargs)

    monkeypatch.setattr("pek.router.dedup.orjson.dumps", counting_dumps)
    calls = [gateway.execute_encoded(QUERY) for _ in range(N)]
    results = await run_together(gate, calls)
    before = encodings
    monkeypatch.undo()
    alone = await gateway.execute(QUERY)
    # the request keys use orjson too (one per request, variables only): count the bodies
    bodies = {id(body) for _, body in results}
    assert len(bodies) == 1
    assert before == N + 1
    for result, body in results:
        assert orjson.loads(body) == alone == result
        assert body == orjson.dumps(alone)
    assert (gateway.stats.executions, gateway.stats.shared) == (2, N - 1)


async def test_execute_encoded_runs_mutations_and_dedup_off_alone(
    supergraph: str, subgraphs: dict[str, GatedSubgraph], gate: asyncio.Event
) -> None:
    gateway, _ = make(supergraph, subgraphs, dedup=False)
    gate.set()
    first, second = [await gateway.execute_encoded(QUERY) for _ in range(2)]
    assert first[1] == second[1] == orjson.dumps(first[0])
    assert gateway.stats.executions == 2
    shared, _ = make(supergraph, subgraphs)
    result, body = await shared.execute_encoded(
        'mutation { createUser(name: "Encoded") { name } }'
    )
    assert orjson.loads(body) == result == {"data": {"createUser": {"name": "Encoded"}}}
    assert shared.stats.shared == 0


async def test_two_viewers_never_share(
    supergraph: str, subgraphs: dict[str, GatedSubgraph], gate: asyncio.Event
) -> None:
    gateway, _ = make(supergraph, subgraphs)
    viewers = ["Bearer alice", "Bearer bob"]
    calls = [
        gateway.execute("{ me { name } }", headers={"authorization": v}) for v in viewers * 3
    ]
    await run_together(gate, calls)
    seen = sorted(r.headers.get("authorization", "") for r in subgraphs["accounts"].requests)
    assert seen == viewers  # one execution per viewer, each with its own header
    assert (gateway.stats.executions, gateway.stats.shared) == (2, 4)


async def test_anonymous_and_signed_in_do_not_share(
    supergraph: str, subgraphs: dict[str, GatedSubgraph], gate: asyncio.Event
) -> None:
    gateway, _ = make(supergraph, subgraphs)
    calls = [
        gateway.execute("{ me { name } }"),
        gateway.execute("{ me { name } }", headers={"x-pek-dev-user": "alice"}),
    ]
    await run_together(gate, calls)
    assert len(subgraphs["accounts"].requests) == 2


async def test_variables_and_operation_name_are_part_of_the_identity(
    supergraph: str, subgraphs: dict[str, GatedSubgraph], gate: asyncio.Event
) -> None:
    gateway, _ = make(supergraph, subgraphs)
    doc = "query A($id: ID!) { user(id: $id) { name } } query B($id: ID!) { user(id: $id) { id } }"
    calls = [
        gateway.execute(doc, {"id": "1"}, "A"),
        gateway.execute(doc, {"id": "1"}, "A"),  # shares with the first
        gateway.execute(doc, {"id": "2"}, "A"),
        gateway.execute(doc, {"id": "1"}, "B"),
    ]
    results = await run_together(gate, calls)
    assert results[0] == results[1] == {"data": {"user": {"name": "Ada Lovelace"}}}
    assert results[2] == {"data": {"user": {"name": "Alan Turing"}}}
    assert results[3] == {"data": {"user": {"id": "1"}}}
    assert (gateway.stats.executions, gateway.stats.shared) == (3, 1)


async def test_variable_order_does_not_matter(
    supergraph: str, subgraphs: dict[str, GatedSubgraph], gate: asyncio.Event
) -> None:
    gateway, _ = make(supergraph, subgraphs)
    doc = "query($id: ID!, $n: Int) { user(id: $id) { name } topProducts(first: $n) { upc } }"
    calls = [
        gateway.execute(doc, {"id": "1", "n": 2}),
        gateway.execute(doc, {"n": 2, "id": "1"}),
    ]
    first, second = await run_together(gate, calls)
    assert first == second
    assert gateway.stats.shared == 1


async def test_mutations_are_never_shared(
    supergraph: str, subgraphs: dict[str, GatedSubgraph], gate: asyncio.Event
) -> None:
    gateway, _ = make(supergraph, subgraphs, fetch_dedup=True)
    before = len(MUTATION_LOG)
    mutation = 'mutation { createUser(name: "Twin") { id } }'
    results = await run_together(gate, [gateway.execute(mutation) for _ in range(3)])
    assert len(MUTATION_LOG) == before + 3
    assert len({r["data"]["createUser"]["id"] for r in results}) == 3
    assert gateway.stats.shared == 0


async def test_a_query_after_a_mutation_does_not_join_an_older_execution(
    supergraph: str, subgraphs: dict[str, GatedSubgraph], gate: asyncio.Event
) -> None:
    gateway, _ = make(supergraph, subgraphs)
    older = asyncio.ensure_future(gateway.execute("{ users { id } }"))
    await asyncio.sleep(0)
    write = 'mutation { createUser(name: "Late") { id } }'
    mutation = asyncio.ensure_future(gateway.execute(write))
    await asyncio.sleep(0)
    newer = asyncio.ensure_future(gateway.execute("{ users { id } }"))
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(older, mutation, newer)
    assert gateway.stats.shared == 0
    assert gateway.stats.executions == 3


async def test_an_error_in_the_shared_execution_reaches_every_waiter() -> None:
    release = asyncio.Event()
    calls = 0

    class BrokenGateway:
        async def execute(self, query: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
            nonlocal calls
            calls += 1
            await release.wait()
            raise RuntimeError("executor bug")

    gateway = DeduplicatingGateway(BrokenGateway())
    results = await run_together(
        release, [gateway.execute("{ a }") for _ in range(4)], return_exceptions=True
    )
    assert calls == 1
    assert all(isinstance(r, RuntimeError) and str(r) == "executor bug" for r in results)
    assert gateway.in_flight == 0


async def test_a_failing_subgraph_reaches_every_waiter(
    supergraph: str, subgraphs: dict[str, GatedSubgraph], gate: asyncio.Event
) -> None:
    subgraphs["accounts"].inner.down = True
    gateway, _ = make(supergraph, subgraphs)
    results = await run_together(gate, [gateway.execute("{ me { name } }") for _ in range(3)])
    assert len(subgraphs["accounts"].requests) == 1
    for result in results:
        assert result["data"] is None
        assert result["errors"][0]["extensions"]["code"] == "SUBGRAPH_UNAVAILABLE"


async def test_one_waiter_cancelled_the_others_still_get_the_answer(
    supergraph: str, subgraphs: dict[str, GatedSubgraph], gate: asyncio.Event
) -> None:
    gateway, _ = make(supergraph, subgraphs)
    tasks = [asyncio.ensure_future(gateway.execute("{ me { name } }")) for _ in range(3)]
    await asyncio.sleep(0)
    tasks[0].cancel()  # the leader's client goes away
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert results[1] == results[2] == {"data": {"me": {"name": "Ada Lovelace"}}}
    assert len(subgraphs["accounts"].requests) == 1


async def test_all_waiters_cancelled_stops_the_execution() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    class SlowGateway:
        async def execute(self, query: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return {"data": {}}

    gateway = DeduplicatingGateway(SlowGateway())
    task = asyncio.ensure_future(gateway.execute("{ a }"))
    await started.wait()
    task.cancel()
    await asyncio.wait_for(cancelled.wait(), 2)
    assert gateway.in_flight == 0


async def test_dedup_off_runs_each_request(
    supergraph: str, subgraphs: dict[str, GatedSubgraph], gate: asyncio.Event
) -> None:
    gateway, _ = make(supergraph, subgraphs, dedup=False)
    await run_together(gate, [gateway.execute("{ me { name } }") for _ in range(N)])
    assert len(subgraphs["accounts"].requests) == N
    assert (gateway.stats.executions, gateway.stats.shared) == (N, 0)


async def test_bad_requests_pass_through_with_their_errors(
    supergraph: str, subgraphs: dict[str, GatedSubgraph]
) -> None:
    gateway, _ = make(supergraph, subgraphs)
    result = await gateway.execute("{ users { ")
    assert result["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    result = await gateway.execute("query A { me { name } } query B { me { id } }")
    assert "operation name" in result["errors"][0]["message"]


def test_operation_type() -> None:
    from collections import OrderedDict

    cache: OrderedDict[tuple[str, str | None], str | None] = OrderedDict()
    assert operation_type("{ a }", None, cache) == "query"
    assert operation_type("mutation M { a } query Q { b }", "M", cache) == "mutation"
    assert operation_type("mutation M { a } query Q { b }", "Q", cache) == "query"
    assert operation_type("mutation M { a } query Q { b }", None, cache) is None
    assert operation_type("subscription { a }", None, cache) == "subscription"
    assert operation_type("{ a", None, cache) is None
    assert operation_type("{ a }", "Nope", cache) is None


# -- subgraph fetch dedup ------------------------------------------------------------------------


async def test_identical_fetches_are_shared(
    supergraph: str, subgraphs: dict[str, GatedSubgraph], gate: asyncio.Event
) -> None:
    gateway, transport = make(supergraph, subgraphs, dedup=False, fetch_dedup=True)
    results = await run_together(gate, [gateway.execute(QUERY) for _ in range(N)])
    shared_requests = total_requests(subgraphs)
    for s in subgraphs.values():
        s.requests.clear()
    alone = await gateway.execute(QUERY)
    per_query = total_requests(subgraphs)
    assert per_query > 1
    # The first fetch of every execution was shared; later ones may overlap less perfectly.
    assert shared_requests < N * per_query
    assert len([r for r in subgraphs["accounts"].requests if "users" in r.query]) == 1
    assert all(r == alone for r in results)
    assert transport.stats.shared > 0
    assert transport.in_flight == 0


async def test_shared_fetch_results_are_independent_copies(gate: asyncio.Event) -> None:
    calls = 0

    class Subgraph:
        async def execute(self, request: SubgraphRequest) -> dict[str, Any]:
            nonlocal calls
            calls += 1
            await gate.wait()
            return {"data": {"users": [{"id": "1"}]}}

    transport = DeduplicatingTransport(InProcessTransport({"a": Subgraph()}))
    request = SubgraphRequest(query="{ users { id } }")
    results = await run_together(gate, [transport.fetch("a", request) for _ in range(3)])
    assert calls == 1
    for i, result in enumerate(results):
        result["data"]["users"][0]["name"] = f"changed by executor {i}"
    assert [r["data"]["users"][0]["name"] for r in results] == [
        "changed by executor 0",
        "changed by executor 1",
        "changed by executor 2",
    ]


async def test_fetches_with_different_headers_are_not_shared(gate: asyncio.Event) -> None:
    seen: list[Mapping[str, str]] = []

    class Subgraph:
        async def execute(self, request: SubgraphRequest) -> dict[str, Any]:
            seen.append(request.headers)
            await gate.wait()
            return {"data": {"me": request.headers.get("authorization")}}

    transport = DeduplicatingTransport(InProcessTransport({"a": Subgraph()}))
    calls = [
        transport.fetch("a", SubgraphRequest(query="{ me }", headers={"authorization": who}))
        for who in ("alice", "bob", "alice")
    ]
    results = await run_together(gate, calls)
    assert [r["data"]["me"] for r in results] == ["alice", "bob", "alice"]
    assert len(seen) == 2


async def test_mutation_fetches_are_never_shared(gate: asyncio.Event) -> None:
    calls = 0

    class Subgraph:
        async def execute(self, request: SubgraphRequest) -> dict[str, Any]:
            nonlocal calls
            calls += 1
            await gate.wait()
            return {"data": {"n": calls}}

    transport = DeduplicatingTransport(InProcessTransport({"a": Subgraph()}))
    request = SubgraphRequest(query="mutation { bump }")
    await run_together(gate, [transport.fetch("a", request) for _ in range(3)])
    assert calls == 3


async def test_a_failed_fetch_reaches_every_waiter(gate: asyncio.Event) -> None:
    calls = 0

    class Subgraph:
        async def execute(self, request: SubgraphRequest) -> dict[str, Any]:
            nonlocal calls
            calls += 1
            await gate.wait()
            raise SubgraphUnavailable("a", "connection refused")

    transport = DeduplicatingTransport(InProcessTransport({"a": Subgraph()}))
    request = SubgraphRequest(query="{ x }")
    results = await run_together(
        gate, [transport.fetch("a", request) for _ in range(3)], return_exceptions=True
    )
    assert calls == 1
    for result in results:
        assert isinstance(result, SubgraphUnavailable) and result.reason == "connection refused"
    assert len({id(r) for r in results}) == 3


def test_is_query_text() -> None:
    assert is_query_text("{ a }")
    assert is_query_text("  query Q($x: Int) { a }")
    assert is_query_text("query{ a }")
    assert not is_query_text("mutation { a }")
    assert not is_query_text("queryX")
    assert not is_query_text("subscription { a }")


# -- through the HTTP edge -----------------------------------------------------------------------


async def test_http_edge_shares_per_viewer(
    supergraph: str, subgraphs: dict[str, GatedSubgraph], gate: asyncio.Event, tmp_path: Path
) -> None:
    gateway, _ = make(supergraph, subgraphs)
    settings = Settings()
    keys = tmp_path / "keys"
    app = create_app(gateway, settings, auth=local_edge_auth(settings, keys))
    signer = signer_for(settings, keys)
    tokens = {who: signer.mint(local_id)[0] for who, local_id in (("alice", 1), ("bob", 2))}
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    async with client:
        calls = [
            client.post(
                "/graphql",
                json={"query": "{ me { name } }"},
                headers={"authorization": f"Bearer {tokens[who]}"},
            )
            for who in ("alice", "alice", "bob", "alice")
        ]
        responses = await run_together(gate, calls)
    assert [r.status_code for r in responses] == [200] * 4
    assert all(r.json() == {"data": {"me": {"name": "Ada Lovelace"}}} for r in responses)
    seen = {r.headers.get("authorization") for r in subgraphs["accounts"].requests}
    assert seen == {f"Bearer {tokens['alice']}", f"Bearer {tokens['bob']}"}
    assert (gateway.stats.executions, gateway.stats.shared) == (2, 2)


def test_roles_wire_both_dedups_and_their_switches(tmp_path: Path, supergraph: str) -> None:
    from starlette.routing import Route

    from pek.roles import build_router_app

    sdl = tmp_path / "supergraph.graphql"
    sdl.write_text(supergraph, encoding="utf-8")
    for on in (True, False):
        app = build_router_app(
            Settings(supergraph=str(sdl), deduplicate=on, deduplicate_fetches=not on)
        )
        route = next(r for r in app.routes if isinstance(r, Route) and r.path == "/graphql")
        gateway = route.endpoint.__self__.gateway  # type: ignore[attr-defined]
        assert isinstance(gateway, DeduplicatingGateway) and gateway.enabled is on
        assert isinstance(gateway.gateway, Gateway)
        transport = gateway.gateway.transport
        assert isinstance(transport, DeduplicatingTransport) and transport.enabled is not on
