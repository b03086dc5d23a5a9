"""Subgraph fetch deduplication: identical in-flight subgraph queries share one fetch.

:class:`DeduplicatingTransport` wraps any :class:`~pek.router.transport.Transport`. While a
fetch runs, a second fetch to the same subgraph with the same query text, operation name,
variables and forwarded headers (so two viewers never share one) awaits it instead of sending its
own. Mutations always go out on their own.

The executor merges subgraph answers into its own data tree and changes them afterwards, so
waiters of a shared fetch must not hold the same objects: when a fetch was shared, every waiter
but one gets its own copy (decoded from the answer's JSON encoding, made once). A fetch nobody
joined is handed over as it is, at no extra cost.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import orjson

from pek.router.transport import JSON, SubgraphRequest, SubgraphUnavailable, Transport

__all__ = ["DeduplicatingTransport", "FetchDedupStats", "is_query_text"]


@dataclass(slots=True)
class FetchDedupStats:
    """Counters for tests and diagnostics."""

    #: Fetches really sent to the wrapped transport.
    sent: int = 0
    #: Fetches answered by joining one already in flight.
    shared: int = 0


@dataclass(slots=True)
class _Flight:
    task: asyncio.Future[JSON]
    waiters: int = 0
    encoded: bytes | None = None


def is_query_text(query: str) -> bool:
    """True when a subgraph operation is a query: the planner writes ``query ...`` or ``{ ... }``
    (anything else, a mutation or a document it cannot tell, is never shared)."""
    text = query.lstrip()
    if text.startswith("{"):
        return True
    if not text.startswith("query"):
        return False
    # "query" must be the keyword, not the start of a longer name ("queryX" cannot start one).
    rest = text[5:6]
    return rest == "" or not (rest.isalnum() or rest == "_")


class DeduplicatingTransport:
    """A :class:`Transport` sharing identical in-flight subgraph queries (see the module doc)."""

    def __init__(self, inner: Transport, *, enabled: bool = True, cache_size: int = 1000) -> None:
        self.inner = inner
        self.enabled = enabled
        self.stats = FetchDedupStats()
        self._in_flight: dict[Hashable, _Flight] = {}
        self._is_query: OrderedDict[str, bool] = OrderedDict()
        self._cache_size = max(cache_size, 1)

    def __getattr__(self, name: str) -> Any:
        # Names this class lacks (``url_of`` ...) come from the wrapped transport.
        return getattr(self.inner, name)

    @property
    def in_flight(self) -> int:
        """How many distinct fetches are being shared right now."""
        return len(self._in_flight)

    def _query(self, text: str) -> bool:
        known = self._is_query.get(text)
        if known is None:
            known = self._is_query[text] = is_query_text(text)
            if len(self._is_query) > self._cache_size:
                self._is_query.popitem(last=False)
        return known

    @staticmethod
    def _key(subgraph: str, request: SubgraphRequest) -> Hashable | None:
        try:
            variables = orjson.dumps(request.variables or {}, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None
        headers = tuple(sorted((k.lower(), v) for k, v in request.headers.items()))
        return (subgraph, request.query, request.operation_name, variables, headers)

    async def fetch(self, subgraph: str, request: SubgraphRequest) -> JSON:
        """Send ``request`` to ``subgraph``, or share an identical query already in flight."""
        if not self.enabled or not self._query(request.query):
            self.stats.sent += 1
            return await self.inner.fetch(subgraph, request)
        key = self._key(subgraph, request)
        if key is None:
            self.stats.sent += 1
            return await self.inner.fetch(subgraph, request)
        flight = self._in_flight.get(key)
        if flight is None or flight.task.done():
            flight = self._start(key, subgraph, request)
            self.stats.sent += 1
        else:
            self.stats.shared += 1
        flight.waiters += 1
        try:
            payload = await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            if flight.waiters == 1 and not flight.task.done():
                self._forget(key, flight)
                flight.task.cancel()
            raise
        except SubgraphUnavailable as exc:
            # A fresh exception per waiter: one shared instance would pile up tracebacks.
            raise SubgraphUnavailable(exc.subgraph, exc.reason) from None
        finally:
            flight.waiters -= 1
        # Waiters resume one after another once the fetch is done; the last one to resume may
        # keep the original tree, because every earlier one decoded its own copy from the
        # encoding made before anybody could change that tree.
        if flight.waiters == 0 and flight.encoded is None:
            return payload  # nobody else wanted it
        if flight.encoded is None:
            flight.encoded = orjson.dumps(payload)
        if flight.waiters == 0:
            return payload
        copy: JSON = orjson.loads(flight.encoded)
        return copy

    def _start(self, key: Hashable, subgraph: str, request: SubgraphRequest) -> _Flight:
        async def run() -> JSON:
            try:
                return await self.inner.fetch(subgraph, request)
            finally:
                # Forgotten as soon as the answer is there: later fetches go out afresh.
                current = self._in_flight.get(key)
                if current is not None and current.task is asyncio.current_task():
                    del self._in_flight[key]

        flight = _Flight(task=asyncio.ensure_future(run()))
        self._in_flight[key] = flight
        return flight

    def _forget(self, key: Hashable, flight: _Flight) -> None:
        if self._in_flight.get(key) is flight:
            del self._in_flight[key]

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self.inner.aclose()
