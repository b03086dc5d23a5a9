"""Prometheus metrics, written by hand: ``GET /metrics`` in the text exposition format 0.0.4.

A :class:`Registry` holds metric families; a family holds one series per label-value tuple.
Recording is a plain integer or float addition on a series object the caller looked up (and
usually keeps): no locks (everything runs on the event loop's thread), no allocation once a
series exists. Label values are never taken from client input (operation types, HTTP status
classes, subgraph names from the supergraph, realm ids from the registry), so the number of
series stays bounded.

Some values are read only when scraped (:meth:`Registry.sample`): the deduplication layers'
own counters and the process's memory and start time, so they cost nothing per request.

:class:`RouterMetrics` is the router's set; :class:`SubgraphMetrics` is what ``pek hub`` and
``pek realm`` serve (:mod:`pek.schema.subgraph`). :class:`MeteredTransport` counts and times the
fetches the executor sends to each subgraph.
"""

from __future__ import annotations

import math
import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pek.router.transport import JSON, SubgraphRequest, Transport

__all__ = [
    "CONTENT_TYPE",
    "DURATION_BUCKETS",
    "Counter",
    "Histogram",
    "MeteredTransport",
    "Registry",
    "RouterMetrics",
    "SubgraphMetrics",
    "metrics_route",
    "status_class",
]

#: The Content-Type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Upper bounds (seconds) of the duration histograms: 1 ms to 10 s, the subgraph timeout's
#: default.
DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
#: ``operation_type`` label values; ``unknown``: the request never named a valid operation.
OPERATION_TYPES = ("query", "mutation", "subscription", "unknown")
_STATUS_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")


def status_class(status: int) -> str:
    """``"2xx"`` for 200..299 and so on (a constant string: no allocation)."""
    index = status // 100
    return _STATUS_CLASSES[index] if 0 <= index < len(_STATUS_CLASSES) else "5xx"


class Counter:
    """One counter series: ``counter.value += 1``."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0


class Histogram:
    """One histogram series with fixed bucket bounds (cumulated only when scraped)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        #: observations per bucket (not cumulative); the last one is ``+Inf``
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # le semantics: a value equal to a bound belongs to that bound's bucket
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


S = TypeVar("S", Counter, Histogram)


class Family(Generic[S]):
    """A named metric and its series, one per tuple of label values."""

    def __init__(
        self, name: str, help_text: str, kind: str, label_names: Sequence[str],
        make: Callable[[], S],
    ) -> None:
        self.name = name
        self.help = help_text
        self.kind = kind
        self.label_names = tuple(label_names)
        self._make: Callable[[], S] = make
        self.series: dict[tuple[str, ...], S] = {}

    def labels(self, *values: str) -> S:
        """The series of these label values (created on first use); keep it for the hot path."""
        if len(values) != len(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {values}")
        series = self.series.get(values)
        if series is None:
            series = self.series[values] = self._make()
        return series

    def render(self, out: list[str]) -> None:
        _header(out, self.name, self.help, self.kind)
        for values in sorted(self.series):
            series = self.series[values]
            pairs: list[tuple[str, str]] = list(zip(self.label_names, values, strict=True))
            if isinstance(series, Histogram):
                cumulative = 0
                for bound, count in zip(series.bounds, series.counts, strict=False):
                    cumulative += count
                    out.append(_sample(f"{self.name}_bucket",
                                       [*pairs, ("le", _number(bound))], cumulative))
                cumulative += series.counts[-1]
                out.append(_sample(f"{self.name}_bucket", [*pairs, ("le", "+Inf")], cumulative))
                out.append(_sample(f"{self.name}_sum", pairs, series.sum))
                out.append(_sample(f"{self.name}_count", pairs, cumulative))
            else:
                out.append(_sample(self.name, pairs, series.value))


#: What a scrape-time metric returns: (label values, value) pairs.
Samples = Iterable[tuple[tuple[str, ...], float]]


class _Sampled:
    """A metric whose values are read when scraped."""

    def __init__(
        self, name: str, help_text: str, kind: str, label_names: Sequence[str],
        read: Callable[[], Samples],
    ) -> None:
        self.name = name
        self.help = help_text
        self.kind = kind
        self.label_names = tuple(label_names)
        self.read = read

    def render(self, out: list[str]) -> None:
        samples = list(self.read())
        if not samples:
            return
        _header(out, self.name, self.help, self.kind)
        for values, value in samples:
            out.append(_sample(self.name, list(zip(self.label_names, values, strict=True)), value))


class Registry:
    """The metrics of one process (or one app), rendered by :meth:`render`."""

    def __init__(self) -> None:
        self._metrics: dict[str, Family[Any] | _Sampled] = {}

    def _add(self, metric: Family[Any] | _Sampled) -> None:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} is already registered")
        self._metrics[metric.name] = metric

    def counter(
        self, name: str, help_text: str, label_names: Sequence[str] = ()
    ) -> Family[Counter]:
        family: Family[Counter] = Family(name, help_text, "counter", label_names, Counter)
        self._add(family)
        return family

    def histogram(
        self, name: str, help_text: str, label_names: Sequence[str] = (),
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> Family[Histogram]:
        bounds = tuple(sorted(float(b) for b in buckets))
        family: Family[Histogram] = Family(
            name, help_text, "histogram", label_names, lambda: Histogram(bounds)
        )
        self._add(family)
        return family

    def sample(
        self, name: str, help_text: str, kind: str, label_names: Sequence[str],
        read: Callable[[], Samples],
    ) -> None:
        """A ``counter`` or ``gauge`` whose values ``read()`` gives at scrape time."""
        self._add(_Sampled(name, help_text, kind, label_names, read))

    def render(self) -> str:
        """Every metric in the text exposition format 0.0.4."""
        out: list[str] = []
        for metric in self._metrics.values():
            metric.render(out)
        return "\n".join(out) + "\n"


def _header(out: list[str], name: str, help_text: str, kind: str) -> None:
    escaped = help_text.replace("\\", "\\\\").replace("\n", "\\n")
    out.append(f"# HELP {name} {escaped}")
    out.append(f"# TYPE {name} {kind}")


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int) or (math.isfinite(value) and value == int(value)
                                  and abs(value) < 1e15):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _sample(name: str, labels: Sequence[tuple[str, str]], value: float) -> str:
    if not labels:
        return f"{name} {_number(value)}"
    inner = ",".join(f'{k}="{_label_value(v)}"' for k, v in labels)
    return f"{name}{{{inner}}} {_number(value)}"


# -- process basics (Linux /proc; nothing elsewhere) ------------------------------------------


def _process_start_time() -> float | None:
    """Seconds since the epoch when this process started (``/proc/self/stat`` field 22)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as handle:
            stat = handle.read()
        with open("/proc/stat", encoding="ascii") as handle:
            boot = next(
                float(line.split()[1]) for line in handle if line.startswith("btime ")
            )
        # fields after the command name (which may hold spaces) start at field 3
        start_ticks = float(stat.rsplit(")", 1)[1].split()[19])
        return boot + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _resident_memory() -> float | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
        return float(pages * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):
        return None


def add_process_metrics(registry: Registry) -> None:
    """``process_resident_memory_bytes``, ``process_start_time_seconds`` and
    ``process_cpu_seconds_total``, read when scraped (memory and start time only on Linux)."""
    start = _process_start_time()

    def memory() -> Samples:
        rss = _resident_memory()
        return [] if rss is None else [((), rss)]

    def cpu() -> Samples:
        times = os.times()
        return [((), times.user + times.system)]

    registry.sample("process_resident_memory_bytes", "Resident memory size in bytes.",
                    "gauge", (), memory)
    registry.sample("process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.", "gauge", (),
                    lambda: [] if start is None else [((), start)])
    registry.sample("process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.", "counter", (), cpu)


# -- the sets the roles serve -----------------------------------------------------------------


class _RequestMetrics:
    """``pek_requests_total{operation_type,status}`` and
    ``pek_request_duration_seconds{operation_type}``."""

    def __init__(self, registry: Registry, what: str) -> None:
        self.requests = registry.counter(
            "pek_requests_total",
            f"GraphQL requests {what}, by operation type and HTTP status class.",
            ("operation_type", "status"),
        )
        self.request_duration = registry.histogram(
            "pek_request_duration_seconds",
            f"Time to answer a GraphQL request {what}, by operation type.",
            ("operation_type",),
        )
        # operation type -> status class -> series, and operation type -> histogram
        self._counters: dict[str, dict[str, Counter]] = {}
        self._durations: dict[str, Histogram] = {}

    def request(self, operation_type: str, status: int, seconds: float) -> None:
        """Record one answered request (``operation_type`` one of :data:`OPERATION_TYPES`)."""
        by_status = self._counters.get(operation_type)
        if by_status is None:
            by_status = self._counters[operation_type] = {}
        klass = status_class(status)
        counter = by_status.get(klass)
        if counter is None:
            counter = by_status[klass] = self.requests.labels(operation_type, klass)
        counter.value += 1
        histogram = self._durations.get(operation_type)
        if histogram is None:
            histogram = self._durations[operation_type] = self.request_duration.labels(
                operation_type
            )
        histogram.observe(seconds)


class RouterMetrics(_RequestMetrics):
    """The router's metrics (see the README's metrics paragraph)."""

    def __init__(self, registry: Registry | None = None, *, process: bool = True) -> None:
        self.registry = registry if registry is not None else Registry()
        super().__init__(self.registry, "answered by the router")
        self.subgraph_fetches = self.registry.counter(
            "pek_subgraph_fetches_total",
            "Fetches the router sent to a subgraph, by outcome (ok, error: the answer has "
            "errors, unavailable: no answer).",
            ("subgraph", "outcome"),
        )
        self.subgraph_fetch_duration = self.registry.histogram(
            "pek_subgraph_fetch_duration_seconds",
            "Time a subgraph fetch took (for the realm subgraph: every realm asked, merged).",
            ("subgraph",),
        )
        self.realm_requests = self.registry.counter(
            "pek_realm_requests_total",
            "Requests the realm-routing layer sent to one realm, by outcome (ok, "
            "unavailable, timeout).",
            ("realm", "outcome"),
        )
        self._realms: dict[str, dict[str, Counter]] = {}
        self._deduplicated: list[tuple[str, Callable[[], float]]] = []
        self.registry.sample(
            "pek_deduplicated_total",
            "Requests answered by joining an identical one in flight, by layer (inbound: "
            "client queries, fetch: subgraph fetches).",
            "counter", ("layer",),
            lambda: [((layer,), read()) for layer, read in self._deduplicated],
        )
        if process:
            add_process_metrics(self.registry)

    def realm_request(self, realm: str, outcome: str) -> None:
        """Record one request to a realm instance: ``ok``, ``unavailable`` or ``timeout``."""
        by_outcome = self._realms.get(realm)
        if by_outcome is None:
            by_outcome = self._realms[realm] = {}
        counter = by_outcome.get(outcome)
        if counter is None:
            counter = by_outcome[outcome] = self.realm_requests.labels(realm, outcome)
        counter.value += 1

    def count_deduplicated(self, layer: str, read: Callable[[], float]) -> None:
        """Report ``read()`` (a deduplication layer's own counter) as
        ``pek_deduplicated_total{layer=...}`` when scraped."""
        self._deduplicated.append((layer, read))


class SubgraphMetrics(_RequestMetrics):
    """What a subgraph process (``pek hub``, ``pek realm``) serves at ``/metrics``."""

    def __init__(self, registry: Registry | None = None, *, process: bool = True) -> None:
        self.registry = registry if registry is not None else Registry()
        super().__init__(self.registry, "answered by this subgraph over HTTP")
        if process:
            add_process_metrics(self.registry)


class _FetchSeries:
    __slots__ = ("ok", "error", "unavailable", "duration")

    def __init__(self, metrics: RouterMetrics, subgraph: str) -> None:
        family = metrics.subgraph_fetches
        self.ok = family.labels(subgraph, "ok")
        self.error = family.labels(subgraph, "error")
        self.unavailable = family.labels(subgraph, "unavailable")
        self.duration = metrics.subgraph_fetch_duration.labels(subgraph)


class MeteredTransport:
    """A :class:`Transport` that counts and times every fetch per subgraph (see
    :class:`RouterMetrics`); everything else is the wrapped transport's."""

    def __init__(self, inner: Transport, metrics: RouterMetrics) -> None:
        self.inner = inner
        self.metrics = metrics
        self._series: dict[str, _FetchSeries] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def fetch(self, subgraph: str, request: SubgraphRequest) -> JSON:
        series = self._series.get(subgraph)
        if series is None:
            series = self._series[subgraph] = _FetchSeries(self.metrics, subgraph)
        started = time.perf_counter()
        try:
            response = await self.inner.fetch(subgraph, request)
        except Exception:  # SubgraphUnavailable, or a transport's defect: no answer
            series.unavailable.value += 1
            series.duration.observe(time.perf_counter() - started)
            raise
        series.duration.observe(time.perf_counter() - started)
        if isinstance(response, dict) and response.get("errors"):
            series.error.value += 1
        else:
            series.ok.value += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def metrics_route(registry: Registry) -> Route:
    """``GET /metrics``: the registry in the text exposition format."""

    async def metrics(request: Request) -> Response:
        return Response(registry.render(), media_type=None,
                        headers={"content-type": CONTENT_TYPE, "cache-control": "no-store"})

    return Route("/metrics", metrics, methods=["GET"])
