"""Transports: how the executor reaches a subgraph.

One interface, several implementations (like httpx's transports): the planner and the executor
only ever call :meth:`Transport.fetch` with a subgraph name and a :class:`SubgraphRequest`;
whether the subgraph runs in this process (all-in-one, ``pek dev``) or behind HTTP is the
transport's business alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import orjson

JSON = dict[str, Any]

#: Request headers the router forwards from the client to every subgraph.
FORWARDED_HEADERS = ("authorization", "x-pek-dev-user", "accept-language")


@dataclass(frozen=True, slots=True)
class SubgraphRequest:
    """One GraphQL request to one subgraph."""

    query: str
    variables: Mapping[str, Any] | None = None
    operation_name: str | None = None
    #: Headers forwarded from the client (lower-case names), see FORWARDED_HEADERS.
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> JSON:
        body: JSON = {"query": self.query}
        if self.variables:
            body["variables"] = dict(self.variables)
        if self.operation_name:
            body["operationName"] = self.operation_name
        return body


class SubgraphUnavailable(Exception):
    """The subgraph could not be reached or did not answer with a GraphQL response."""

    def __init__(self, subgraph: str, reason: str) -> None:
        super().__init__(f"subgraph {subgraph!r} is unavailable: {reason}")
        self.subgraph = subgraph
        self.reason = reason


class Transport(Protocol):
    async def fetch(self, subgraph: str, request: SubgraphRequest) -> JSON:
        """Send ``request`` to ``subgraph``; return its GraphQL response as JSON data."""
        ...

    async def aclose(self) -> None: ...


class LocalSubgraph(Protocol):
    """A subgraph running in this process (see ``pek.hub.service`` and ``pek.realm.service``)."""

    async def execute(self, request: SubgraphRequest) -> JSON: ...


class InProcessTransport:
    """Calls subgraphs living in the same process: no HTTP, no JSON encoding."""

    def __init__(self, subgraphs: Mapping[str, LocalSubgraph]) -> None:
        self._subgraphs = dict(subgraphs)

    async def fetch(self, subgraph: str, request: SubgraphRequest) -> JSON:
        target = self._subgraphs.get(subgraph)
        if target is None:
            raise SubgraphUnavailable(subgraph, "no such subgraph in this process")
        return await target.execute(request)

    async def aclose(self) -> None:
        return None


class HttpTransport:
    """Calls subgraphs over HTTP with one pooled httpx client (keep-alive connections)."""

    def __init__(
        self,
        urls: Mapping[str, str],
        *,
        timeout: float = 10.0,
        max_connections: int = 100,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._urls = dict(urls)
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            http2=False,
        )

    def url_of(self, subgraph: str) -> str | None:
        return self._urls.get(subgraph)

    async def fetch(self, subgraph: str, request: SubgraphRequest) -> JSON:
        url = self._urls.get(subgraph)
        if url is None:
            raise SubgraphUnavailable(subgraph, "no URL configured")
        headers = {
            "content-type": "application/json",
            "accept": "application/graphql-response+json, application/json",
        }
        headers.update(request.headers)
        try:
            response = await self._client.post(
                url, content=orjson.dumps(request.body()), headers=headers
            )
        except httpx.TimeoutException:
            raise SubgraphUnavailable(subgraph, "timed out") from None
        except (httpx.HTTPError, OSError) as exc:
            reason = f"connection failed ({type(exc).__name__})"
            raise SubgraphUnavailable(subgraph, reason) from None
        except asyncio.CancelledError:
            raise
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise SubgraphUnavailable(
                subgraph, f"HTTP {response.status_code} without a JSON body"
            ) from None
        if not isinstance(payload, dict) or ("data" not in payload and "errors" not in payload):
            reason = f"HTTP {response.status_code}, not a GraphQL response"
            raise SubgraphUnavailable(subgraph, reason)
        return payload

    async def aclose(self) -> None:
        await self._client.aclose()
