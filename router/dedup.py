"""Inbound operation deduplication: identical in-flight queries share one execution.

:class:`DeduplicatingGateway` wraps anything with the gateway's ``execute`` (the
:class:`~pek.router.edge.executor.GraphQLExecutor` protocol), so the HTTP edge takes it
unchanged. While a query runs, every later request with the same

* document text and operation name,
* variables (compared as canonical JSON),
* forwarded headers (the caller's identity: ``authorization``, the dev user; also
  ``accept-language``, which can change the answer),
* query-plan opt-in,

awaits the same execution instead of starting its own. Two viewers never share a result: their
forwarded headers differ. Mutations (and anything that is not plainly a query: subscriptions,
documents that do not parse or name no single operation) always run on their own.

A mutation also starts a new *generation*: a query arriving after a mutation started or finished
never joins an execution that began before, so a client that waits for its mutation's answer and
then queries sees its own write.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import GraphQLError, OperationDefinitionNode, OperationType

from pek.router.edge.executor import GraphQLExecutor
from pek.router.limits import parse_limited

JSON = dict[str, Any]

__all__ = ["DeduplicatingGateway", "DedupStats", "operation_type"]


@dataclass(slots=True)
class DedupStats:
    """Counters for tests and diagnostics."""

    #: Requests that started an execution of their own (leaders and never-shared requests).
    executions: int = 0
    #: Requests answered by joining an execution already in flight.
    shared: int = 0


@dataclass(slots=True)
class _Flight:
    task: asyncio.Future[JSON]
    waiters: int = 0
    #: the shared result as orjson bytes, encoded by the first waiter that asks for them
    encoded: bytes | None = None


def operation_type(
    query: str,
    operation_name: str | None,
    cache: OrderedDict[tuple[str, str | None], str | None],
    max_tokens: int | None = None,
) -> str | None:
    """``"query"``, ``"mutation"`` or ``"subscription"`` of the operation a request selects;
    None when the document does not parse or the operation is ambiguous or unknown (the gateway
    answers such requests with an error, so they are simply not shared). Cached per
    (document, operation name), the cache being bounded by its owner. A document longer than
    ``max_tokens`` is not parsed in full (the gateway refuses it)."""
    key = (query, operation_name)
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    kind: str | None = None
    try:
        document = parse_limited(query, max_tokens, no_location=True)
    except (GraphQLError, TypeError):
        document = None
    if document is not None:
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        chosen: OperationDefinitionNode | None = None
        if operation_name is None:
            if len(operations) == 1:
                chosen = operations[0]
        else:
            for operation in operations:
                if operation.name is not None and operation.name.value == operation_name:
                    chosen = operation
                    break
        if chosen is not None:
            kind = chosen.operation.value
    cache[key] = kind
    return kind


class DeduplicatingGateway:
    """A :class:`GraphQLExecutor` that lets identical in-flight queries share one execution.

    ``enabled=False`` makes it a transparent pass-through (every request runs on its own), so
    the roles can always wrap the gateway and let a setting decide. Attributes it does not
    define (``api_schema``, ``plan``, ``subgraph_urls``, ``aclose``...) come from the wrapped
    gateway.

    Shared results are the same nested objects for every waiter (each gets its own top-level
    dict): callers may add top-level keys but must not change nested values.
    """

    def __init__(
        self, gateway: GraphQLExecutor, *, enabled: bool = True, cache_size: int = 1000
    ) -> None:
        self.gateway = gateway
        self.enabled = enabled
        self.stats = DedupStats()
        self._in_flight: dict[Hashable, _Flight] = {}
        self._kinds: OrderedDict[tuple[str, str | None], str | None] = OrderedDict()
        self._cache_size = max(cache_size, 1)
        self._generation = 0

    def __getattr__(self, name: str) -> Any:
        # Only reached for names this class lacks: the wrapper stands in for the gateway.
        return getattr(self.gateway, name)

    @property
    def in_flight(self) -> int:
        """How many distinct executions are being shared right now."""
        return len(self._in_flight)

    def _kind(self, query: str, operation_name: str | None) -> str | None:
        limits = getattr(self.gateway, "limits", None)
        max_tokens = getattr(limits, "parser_max_tokens", None)
        kind = operation_type(query, operation_name, self._kinds, max_tokens)
        while len(self._kinds) > self._cache_size:
            self._kinds.popitem(last=False)
        return kind

    def _key(
        self,
        query: str,
        variables: Mapping[str, Any] | None,
        operation_name: str | None,
        headers: Mapping[str, str] | None,
        include_plan: bool,
    ) -> Hashable | None:
        try:
            # Sorted keys: {"a":1,"b":2} and {"b":2,"a":1} are the same request.
            variables_key = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None
        headers_key = tuple(sorted((k.lower(), v) for k, v in (headers or {}).items()))
        return (
            self._generation,
            query,
            operation_name,
            variables_key,
            headers_key,
            include_plan,
        )

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        include_plan: bool = False,
    ) -> JSON:
        """Execute one GraphQL request, sharing the execution of an identical query in flight."""
        kind = (
            self._kind(query, operation_name)
            if self.enabled and isinstance(query, str) else None
        )
        if kind == OperationType.QUERY.value:
            key = self._key(query, variables, operation_name, headers, include_plan)
            if key is not None:
                flight = self._join(key, query, variables, operation_name, headers, include_plan)
                return dict(await self._wait(key, flight))
        self.stats.executions += 1
        if kind == OperationType.MUTATION.value:
            return await self._mutate(query, variables, operation_name, headers, include_plan)
        return await self.gateway.execute(
            query, variables, operation_name, headers=headers, include_plan=include_plan
        )

    async def execute_encoded(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        include_plan: bool = False,
    ) -> tuple[JSON, bytes]:
        """Like :meth:`execute`, plus the response encoded as JSON (orjson) bytes: requests
        sharing one execution share one encoding, so the edge does not re-encode the same result
        for every waiter. The returned response must not be changed (it may be shared)."""
        key = self._shareable_key(query, variables, operation_name, headers, include_plan)
        if key is None:
            result = await self.execute(
                query, variables, operation_name, headers=headers, include_plan=include_plan
            )
            return result, orjson.dumps(result)
        flight = self._join(key, query, variables, operation_name, headers, include_plan)
        result = await self._wait(key, flight)
        if flight.encoded is None:
            flight.encoded = orjson.dumps(result)
        return result, flight.encoded

    def _shareable_key(
        self,
        query: str,
        variables: Mapping[str, Any] | None,
        operation_name: str | None,
        headers: Mapping[str, str] | None,
        include_plan: bool,
    ) -> Hashable | None:
        """The sharing key of a request that may join others, None for one that runs alone."""
        if not self.enabled or not isinstance(query, str):
            return None
        if self._kind(query, operation_name) != OperationType.QUERY.value:
            return None
        return self._key(query, variables, operation_name, headers, include_plan)

    def _join(
        self,
        key: Hashable,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        headers: Mapping[str, str] | None,
        include_plan: bool,
    ) -> _Flight:
        flight = self._in_flight.get(key)
        if flight is None or flight.task.done():
            flight = self._start(key, query, variables, operation_name, headers, include_plan)
            self.stats.executions += 1
        else:
            self.stats.shared += 1
        return flight

    async def _wait(self, key: Hashable, flight: _Flight) -> JSON:
        flight.waiters += 1
        try:
            # Shielded: one waiter going away (client disconnect) must not cancel the others.
            return await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            if flight.waiters == 1 and not flight.task.done():
                # Nobody else wants it: stop the work, and let no newcomer join a dying task.
                self._forget(key, flight)
                flight.task.cancel()
            raise
        finally:
            flight.waiters -= 1

    def _start(
        self,
        key: Hashable,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        headers: Mapping[str, str] | None,
        include_plan: bool,
    ) -> _Flight:
        # The leader's own objects go to the shared execution: copy what it could change later.
        shared_variables = dict(variables) if variables is not None else None
        shared_headers = dict(headers) if headers is not None else None

        async def run() -> JSON:
            try:
                return await self.gateway.execute(
                    query,
                    shared_variables,
                    operation_name,
                    headers=shared_headers,
                    include_plan=include_plan,
                )
            finally:
                # Forgotten the moment it finishes (not in a later callback): a request that
                # arrives after the answer was computed starts a fresh execution.
                current = self._in_flight.get(key)
                if current is not None and current.task is asyncio.current_task():
                    del self._in_flight[key]

        flight = _Flight(task=asyncio.ensure_future(run()))
        self._in_flight[key] = flight
        return flight

    def _forget(self, key: Hashable, flight: _Flight) -> None:
        if self._in_flight.get(key) is flight:
            del self._in_flight[key]

    async def _mutate(
        self,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        headers: Mapping[str, str] | None,
        include_plan: bool,
    ) -> JSON:
        # New generations before and after: queries that arrive from now on, and after the
        # write is done, never join an execution that may have read the old data.
        self._generation += 1
        try:
            return await self.gateway.execute(
                query, variables, operation_name, headers=headers, include_plan=include_plan
            )
        finally:
            self._generation += 1
