"""Metrics: the exposition format (read back by an independent strict reader), subgraph
fetches counted and timed over the real test subgraphs, and ``extensions.serviceName`` only
in dev mode."""

from __future__ import annotations

import time

import pytest
from subgraphs import SCHEMAS, RecordingSubgraph

from pek.roles import gateway_options
from pek.router.gateway import Gateway
from pek.router.metrics import (
    CONTENT_TYPE,
    MeteredTransport,
    Registry,
    RouterMetrics,
    SubgraphMetrics,
    status_class,
)
from pek.router.transport import InProcessTransport
from pek.schema.context import ClientError, decode_id
from pek.schema.ids import encode
from pek.settings import Settings
from tests.router.prometheus_text import parse

# user 4's name fails in the accounts subgraph: a partial answer with one error per path
QUERY = "{ users { id reviews { body author { name } } } }"


def test_counters_histograms_and_escaping_in_the_text_format() -> None:
    registry = Registry()
    counter = registry.counter("t_total", "A help\\text\nover two lines.", ("kind",))
    odd = 'a"b\\c\nd'
    counter.labels(odd).value += 2
    counter.labels("plain").value += 1
    histogram = registry.histogram("t_seconds", "Durations.", ("kind",), buckets=(0.001, 0.005))
    series = histogram.labels("x")
    for value in (0.001, 0.003, 20.0):  # on a bound, between bounds, beyond the last
        series.observe(value)
    registry.sample("t_gauge", "Read when scraped.", "gauge", (), lambda: [((), 1.5)])
    text = registry.render()
    exposition = parse(text)
    assert exposition.types == {"t_total": "counter", "t_seconds": "histogram",
                                "t_gauge": "gauge"}
    assert exposition.helps["t_total"] == "A help\\\\text\\nover two lines."
    assert exposition.value("t_total", kind=odd) == 2
    assert exposition.value("t_total", kind="plain") == 1
    assert exposition.value("t_seconds_bucket", kind="x", le="0.001") == 1
    assert exposition.value("t_seconds_bucket", kind="x", le="0.005") == 2
    assert exposition.value("t_seconds_bucket", kind="x", le="+Inf") == 3
    assert exposition.value("t_seconds_count", kind="x") == 3
    assert exposition.value("t_seconds_sum", kind="x") == pytest.approx(20.004)
    assert exposition.value("t_gauge") == 1.5
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_a_metric_is_registered_once_and_takes_its_own_labels() -> None:
    registry = Registry()
    family = registry.counter("x_total", "X.", ("a", "b"))
    with pytest.raises(ValueError, match="already registered"):
        registry.counter("x_total", "again")
    with pytest.raises(ValueError, match="takes labels"):
        family.labels("only-one")
    assert family.labels("1", "2") is family.labels("1", "2")


def test_status_classes() -> None:
    assert [status_class(s) for s in (200, 204, 400, 413, 500, 503)] == [
        "2xx", "2xx", "4xx", "4xx", "5xx", "5xx"]


def test_request_metrics_and_process_basics() -> None:
    metrics = SubgraphMetrics()
    metrics.request("query", 200, 0.002)
    metrics.request("query", 200, 0.02)
    metrics.request("mutation", 401, 0.001)
    exposition = parse(metrics.registry.render())
    assert exposition.value("pek_requests_total", operation_type="query", status="2xx") == 2
    assert exposition.value("pek_requests_total", operation_type="mutation", status="4xx") == 1
    assert exposition.value("pek_request_duration_seconds_count", operation_type="query") == 2
    assert exposition.value("pek_request_duration_seconds_bucket", operation_type="query",
                            le="0.0025") == 1
    assert exposition.value("process_resident_memory_bytes") > 1_000_000
    started = exposition.value("process_start_time_seconds")
    assert time.time() - 24 * 3600 < started <= time.time()
    assert exposition.value("process_cpu_seconds_total") > 0


async def test_fetches_are_counted_and_timed_per_subgraph_and_outcome(supergraph: str) -> None:
    metrics = RouterMetrics(process=False)
    subgraphs = {name: RecordingSubgraph(schema) for name, schema in SCHEMAS.items()}
    gateway = Gateway(supergraph, MeteredTransport(InProcessTransport(subgraphs), metrics))
    for _ in range(3):
        result = await gateway.execute(QUERY)
        assert result["data"]["users"][0]["reviews"]  # the query really ran
        assert any(e["message"].startswith("name") for e in result["errors"])
    fetched = {name: len(sub.requests) for name, sub in subgraphs.items()}
    exposition = parse(metrics.registry.render())
    counted = {dict(labels)["subgraph"]: 0.0 for labels in
               exposition.series("pek_subgraph_fetches_total")}
    for labels, value in exposition.series("pek_subgraph_fetches_total").items():
        counted[dict(labels)["subgraph"]] += value
    assert {k: v for k, v in counted.items() if v} == {k: v for k, v in fetched.items() if v}
    # accounts answers user 4's name with an error: those fetches are "error", not "ok"
    assert exposition.value("pek_subgraph_fetches_total", subgraph="accounts",
                            outcome="error") == 3
    assert exposition.value("pek_subgraph_fetches_total", subgraph="reviews", outcome="ok") == 3
    assert exposition.value("pek_subgraph_fetch_duration_seconds_count",
                            subgraph="reviews") == 3

    # a subgraph this process cannot reach: "unavailable"
    del subgraphs["reviews"]
    gateway = Gateway(supergraph, MeteredTransport(InProcessTransport(subgraphs), metrics))
    result = await gateway.execute(QUERY)
    assert any(e["extensions"].get("code") == "SUBGRAPH_UNAVAILABLE" for e in result["errors"])
    exposition = parse(metrics.registry.render())
    assert exposition.value("pek_subgraph_fetches_total", subgraph="reviews",
                            outcome="unavailable") == 1


def test_deduplication_counters_are_read_when_scraped() -> None:
    metrics = RouterMetrics(process=False)
    shared = {"inbound": 0, "fetch": 0}
    metrics.count_deduplicated("inbound", lambda: shared["inbound"])
    metrics.count_deduplicated("fetch", lambda: shared["fetch"])
    shared["inbound"], shared["fetch"] = 4, 7
    exposition = parse(metrics.registry.render())
    assert exposition.value("pek_deduplicated_total", layer="inbound") == 4
    assert exposition.value("pek_deduplicated_total", layer="fetch") == 7


async def test_service_names_in_errors_only_in_dev_mode(supergraph: str) -> None:
    def gateway(settings: Settings) -> Gateway:
        subgraphs = {name: RecordingSubgraph(schema) for name, schema in SCHEMAS.items()}
        return Gateway(supergraph, InProcessTransport(subgraphs), **gateway_options(settings))

    production = await gateway(Settings()).execute(QUERY)
    development = await gateway(Settings(dev=True)).execute(QUERY)
    default = await Gateway(
        supergraph, InProcessTransport({n: RecordingSubgraph(s) for n, s in SCHEMAS.items()})
    ).execute(QUERY)
    for result in (production, default):
        assert result["errors"]
        assert all("serviceName" not in e.get("extensions", {}) for e in result["errors"])
    assert development["errors"]
    assert all(e["extensions"]["serviceName"] == "accounts" for e in development["errors"])
    # otherwise the same answer
    for error in development["errors"]:
        del error["extensions"]["serviceName"]
    assert development == production


def test_decode_id_names_the_argument_when_asked() -> None:
    with pytest.raises(ClientError) as plain:
        decode_id("forged", "Group", "kir")
    assert plain.value.message == "Invalid ID"
    with pytest.raises(ClientError) as named:
        decode_id("forged", "Group", "kir", argument="id")
    assert named.value.message == 'Invalid ID in argument "id": it is not an ID this ' \
        "federation issued"
    assert named.value.extensions == {"code": "BAD_USER_INPUT"}
    with pytest.raises(ClientError) as other_realm:
        decode_id(encode("Group", 1, realm="vik"), "Group", "kir", argument="groupId")
    assert other_realm.value.message == (
        'Invalid ID in argument "groupId": it does not name an object of this realm')
    with pytest.raises(ClientError) as wrong_type:
        decode_id(encode("User", 1), "Group", None, argument="id")
    assert wrong_type.value.message == (
        'Invalid ID in argument "id": expected an ID of a Group')
    assert decode_id(encode("Group", 5, realm="kir"), "Group", "kir", argument="id") == 5
