"""``GET /metrics`` over real HTTP on loopback: ``pek dev``'s whole app (hub, the three demo
realms behind the realm-routing layer, the router) and ``pek hub`` served by uvicorn, scraped
after real traffic; ``PEK_METRICS=false`` removes the route."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from pek.roles import build_dev_app, build_subgraph_app
from pek.router.dedup import DeduplicatingGateway
from pek.router.fetch_dedup import DeduplicatingTransport
from pek.settings import Settings
from tests.processes import served
from tests.router.prometheus_text import Exposition, parse

GRAPHQL_RESPONSE = "application/graphql-response+json"


def _settings(tmp_path: Path, **changes: Any) -> Settings:
    url = f"sqlite+aiosqlite:///{tmp_path / 'pek.sqlite3'}"
    return Settings(demo_data=True, hub_database_url=url, realm_database_url=url,
                    key_dir=str(tmp_path / "keys")).replace(**changes)


@pytest.fixture
async def dev_url(tmp_path: Path) -> AsyncIterator[str]:
    async with served(build_dev_app(_settings(tmp_path)), lifespan="on") as url:
        yield url


async def _scrape(client: httpx.AsyncClient, url: str) -> Exposition:
    response = await client.get(f"{url}/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(response.text)


async def test_the_router_reports_requests_fetches_realms_and_itself(dev_url: str) -> None:
    secret_query = "{ groups(first: 5) { totalCount edges { node { name realm { id } } } } }"
    async with httpx.AsyncClient(timeout=30) as client:
        before = await _scrape(client, dev_url)
        assert before.get("pek_requests_total", operation_type="query", status="2xx") == 0
        for _ in range(3):
            response = await client.post(
                f"{dev_url}/graphql", json={"query": secret_query},
                headers={"accept": GRAPHQL_RESPONSE},
            )
            assert response.status_code == 200
            edges = response.json()["data"]["groups"]["edges"]
            assert {e["node"]["realm"]["id"] for e in edges}  # demo groups, from the realms
        # a request error (parse): 400 with graphql-response+json, no operation type
        response = await client.post(f"{dev_url}/graphql", json={"query": "{"},
                                     headers={"accept": GRAPHQL_RESPONSE})
        assert response.status_code == 400
        # a mutation nobody may run anonymously still counts as a mutation
        response = await client.post(
            f"{dev_url}/graphql",
            json={"query": 'mutation { updateProfile(input: {nickname: "x"}) { id } }'},
            headers={"accept": GRAPHQL_RESPONSE},
        )
        mutation_status = response.status_code
        # GraphiQL is a page, not a GraphQL request: not counted
        page = await client.get(f"{dev_url}/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200

        # no CSRF header, a forged token: /metrics needs neither check
        response = await client.get(f"{dev_url}/metrics",
                                    headers={"authorization": "Bearer forged"})
        assert response.status_code == 200
        assert secret_query not in response.text and "forged" not in response.text
        after = parse(response.text)

    assert after.value("pek_requests_total", operation_type="query", status="2xx") == 3
    assert after.value("pek_requests_total", operation_type="unknown", status="4xx") == 1
    assert after.value("pek_requests_total", operation_type="mutation",
                       status=f"{mutation_status // 100}xx") == 1
    assert sum(after.series("pek_requests_total").values()) == 5
    assert after.value("pek_request_duration_seconds_count", operation_type="query") == 3
    assert after.value("pek_request_duration_seconds_sum", operation_type="query") > 0
    # every demo realm was asked for each of the three queries
    for realm in ("hub", "kir", "sch-events"):
        assert after.value("pek_realm_requests_total", realm=realm, outcome="ok") >= 3
    fetched = after.series("pek_subgraph_fetches_total")
    assert {dict(labels)["subgraph"] for labels in fetched} <= {"hub", "realm"}
    assert after.value("pek_subgraph_fetches_total", subgraph="realm", outcome="ok") >= 3
    assert after.value("pek_subgraph_fetch_duration_seconds_count", subgraph="realm") >= 3
    assert after.value("process_resident_memory_bytes") > 1_000_000
    # label values are bounded: operation types and status classes only
    for labels in after.series("pek_requests_total"):
        values = dict(labels)
        assert values["operation_type"] in {"query", "mutation", "subscription", "unknown"}
        assert values["status"] in {"2xx", "4xx", "5xx"}


async def test_the_deduplication_layers_counters_are_reported(tmp_path: Path) -> None:
    app = build_dev_app(_settings(tmp_path))
    route = next(r for r in app.routes if isinstance(r, Route) and r.path == "/graphql")
    gateway = route.endpoint.__self__.gateway  # type: ignore[attr-defined]
    assert isinstance(gateway, DeduplicatingGateway)
    fetches = gateway.gateway.transport
    assert isinstance(fetches, DeduplicatingTransport)
    query = "{ groups(first: 3) { edges { node { name realm { id name } } } } }"
    async with served(app, lifespan="on") as url:
        async with httpx.AsyncClient(timeout=30) as client:
            # two spellings of one query: each shares its own executions (inbound), and
            # both plan to the same subgraph fetches (shared by the fetch layer)
            answers = await asyncio.gather(*(
                client.post(f"{url}/graphql", json={"query": query + " " * (i % 2)},
                            headers={"accept": GRAPHQL_RESPONSE})
                for i in range(20)
            ))
            assert all(a.status_code == 200 for a in answers)
            exposition = await _scrape(client, url)
    assert exposition.value("pek_requests_total", operation_type="query", status="2xx") == 20
    # the layers' own counters, as they were when scraped
    assert gateway.stats.executions + gateway.stats.shared == 20
    assert exposition.value("pek_deduplicated_total", layer="inbound") == gateway.stats.shared
    assert exposition.value("pek_deduplicated_total", layer="fetch") == fetches.stats.shared


async def test_metrics_off_removes_the_route(tmp_path: Path) -> None:
    async with served(build_dev_app(_settings(tmp_path, metrics=False)), lifespan="on") as url:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(f"{url}/graphql", json={"query": "{ realms { id } }"})
            assert response.status_code == 200
            assert (await client.get(f"{url}/metrics")).status_code == 404


async def test_the_hub_process_serves_its_own_metrics(tmp_path: Path) -> None:
    async with served(build_subgraph_app("hub", _settings(tmp_path)), lifespan="on") as url:
        async with httpx.AsyncClient(timeout=30) as client:
            for _ in range(2):
                response = await client.post(f"{url}/graphql",
                                             json={"query": "{ _service { sdl } }"})
                assert response.status_code == 200 and "sdl" in response.json()["data"]["_service"]
            response = await client.post(f"{url}/graphql", content=b"{",
                                         headers={"content-type": "application/json"})
            assert response.status_code == 400
            exposition = await _scrape(client, url)
    assert exposition.value("pek_requests_total", operation_type="query", status="2xx") == 2
    assert exposition.value("pek_requests_total", operation_type="unknown", status="4xx") == 1
    assert exposition.value("pek_request_duration_seconds_count", operation_type="query") == 2
    assert exposition.value("process_resident_memory_bytes") > 1_000_000
    assert "pek_realm_requests_total" not in exposition.types  # a router metric
