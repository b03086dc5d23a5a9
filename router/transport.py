"""Transports: how the executor reaches a subgraph.

One interface, several implementations (like httpx's transports): the planner and the executor
only ever call :meth:`Transport.fetch` with a subgraph name and a :class:`SubgraphRequest`;
whether the subgraph runs in this process (all-in-one, ``pek dev``) or behind HTTP is the
transport's business alone.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

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


#: Headers of every subgraph request, whatever the transport.
REQUEST_CONTENT_TYPE = "application/json"
REQUEST_ACCEPT = "application/graphql-response+json, application/json"


def graphql_payload(subgraph: str, status: int, body: bytes) -> JSON:
    """Decode a subgraph's HTTP answer; :class:`SubgraphUnavailable` unless it is a GraphQL
    response (any status: a GraphQL-over-HTTP server answers request errors with 4xx and a body
    that the client should see)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise SubgraphUnavailable(subgraph, f"HTTP {status} without a JSON body") from None
    if not isinstance(payload, dict) or ("data" not in payload and "errors" not in payload):
        raise SubgraphUnavailable(subgraph, f"HTTP {status}, not a GraphQL response")
    return payload


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
        headers = {"content-type": REQUEST_CONTENT_TYPE, "accept": REQUEST_ACCEPT}
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
        return graphql_payload(subgraph, response.status_code, response.content)

    async def aclose(self) -> None:
        await self._client.aclose()


# -- a small HTTP/1.1 client on asyncio --------------------------------------------------------
#
# httpx spends most of its time in layers the router does not need (auth and redirect handling,
# anyio cancel scopes, an async-library probe that re-runs a failing import per request). The
# router needs one thing: POST a JSON body to a known origin over a kept-alive connection and read
# one response. Measured on the gateway benchmark's subgraphs, this client costs a fraction of
# httpx's CPU per fetch (bench/README.md has the figures).

_MAX_HEAD_BYTES = 64 * 1024
_MAX_CHUNK_LINE_BYTES = 4096

# Parser states of one response.
_HEAD, _FIXED, _CHUNK_SIZE, _CHUNK_DATA, _TRAILERS, _UNTIL_CLOSE = range(6)


class _ProtocolError(Exception):
    """The peer did not speak HTTP/1.1 as expected."""


class _ConnectionClosed(Exception):
    """The connection closed before the response was complete."""

    def __init__(self, received_any: bool) -> None:
        super().__init__("connection closed before the response was complete")
        self.received_any = received_any


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: bytes
    keep_alive: bool


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection carrying one request at a time; the response is parsed as bytes
    arrive (content-length, chunked, or until close)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.reused = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[_Response] | None = None
        self._received_any = False
        self._reset()

    def _reset(self) -> None:
        self._state = _HEAD
        self._status = 0
        self._keep_alive = True
        self._remaining = 0
        self._chunks: list[bytes] = []

    # asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            # Bytes nobody asked for: the connection's framing can no longer be trusted.
            self.close()
            return
        self._received_any = True
        self._buffer += data
        try:
            self._parse(waiter)
        except _ProtocolError as exc:
            if not waiter.done():
                waiter.set_exception(exc)
            self.close()

    def eof_received(self) -> bool:
        return False  # let the transport close; connection_lost finishes the response

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._state == _UNTIL_CLOSE:
            waiter.set_result(_Response(self._status, bytes(self._buffer), False))
        else:
            waiter.set_exception(_ConnectionClosed(self._received_any))

    # client side ----------------------------------------------------------------------------

    async def request(self, data: bytes) -> _Response:
        """Send one complete request and wait for its response."""
        if self.closed or self.transport is None or self.transport.is_closing():
            raise _ConnectionClosed(False)
        self._reset()
        self._buffer.clear()
        self._received_any = False
        self._waiter = self._loop.create_future()
        self.transport.write(data)
        try:
            return await self._waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # parsing ---------------------------------------------------------------------------------

    def _parse(self, waiter: asyncio.Future[_Response]) -> None:
        buffer = self._buffer
        while True:
            state = self._state
            if state == _FIXED:
                remaining = self._remaining
                if len(buffer) < remaining:
                    return
                body = bytes(buffer[:remaining])
                del buffer[:remaining]
                self._finish(waiter, body)
                return
            if state == _HEAD:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > _MAX_HEAD_BYTES:
                        raise _ProtocolError("response head too large")
                    return
                head = bytes(buffer[:end])
                del buffer[: end + 4]
                if self._head(head):
                    self._finish(waiter, b"")
                    return
            elif state == _CHUNK_SIZE:
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > _MAX_CHUNK_LINE_BYTES:
                        raise _ProtocolError("chunk size line too long")
                    return
                line = bytes(buffer[:end]).split(b";", 1)[0].strip()
                del buffer[: end + 2]
                try:
                    size = int(line, 16)
                except ValueError:
                    raise _ProtocolError(f"bad chunk size {line[:20]!r}") from None
                if size < 0:
                    raise _ProtocolError("negative chunk size")
                if size == 0:
                    self._state = _TRAILERS
                else:
                    self._remaining = size
                    self._state = _CHUNK_DATA
            elif state == _CHUNK_DATA:
                remaining = self._remaining
                if len(buffer) < remaining + 2:
                    return
                if buffer[remaining : remaining + 2] != b"\r\n":
                    raise _ProtocolError("chunk not followed by CRLF")
                self._chunks.append(bytes(buffer[:remaining]))
                del buffer[: remaining + 2]
                self._state = _CHUNK_SIZE
            elif state == _TRAILERS:
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > _MAX_HEAD_BYTES:
                        raise _ProtocolError("trailers too large")
                    return
                del buffer[: end + 2]
                if end == 0:
                    self._finish(waiter, b"".join(self._chunks))
                    return
            else:  # _UNTIL_CLOSE: the body is whatever arrives before the peer closes
                return

    def _head(self, head: bytes) -> bool:
        """Read a status line and headers; True when the response has no body."""
        lines = head.split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        if not version.startswith(b"HTTP/1."):
            raise _ProtocolError(f"not an HTTP/1.x response ({lines[0][:40]!r})")
        try:
            status = int(rest[:3])
        except ValueError:
            raise _ProtocolError(f"bad status line {lines[0][:40]!r}") from None
        keep_alive = version == b"HTTP/1.1"
        length: int | None = None
        chunked = False
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                raise _ProtocolError("malformed header line")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    raise _ProtocolError("bad Content-Length") from None
                if length < 0:
                    raise _ProtocolError("negative Content-Length")
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                tokens = value.lower()
                if b"close" in tokens:
                    keep_alive = False
                elif b"keep-alive" in tokens:
                    keep_alive = True
        if 100 <= status < 200:
            return False  # an interim answer (100 Continue...): the real head follows
        self._status = status
        self._keep_alive = keep_alive
        if status in (204, 304):
            return True
        if chunked:
            self._state = _CHUNK_SIZE
        elif length is not None:
            self._remaining = length
            self._state = _FIXED
        else:
            self._keep_alive = False
            self._state = _UNTIL_CLOSE
        return False

    def _finish(self, waiter: asyncio.Future[_Response], body: bytes) -> None:
        # Left-over bytes would belong to no request (we never pipeline): do not reuse.
        keep_alive = self._keep_alive and not self._buffer
        self._state = _HEAD
        if not waiter.done():
            waiter.set_result(_Response(self._status, body, keep_alive))


class _Pool:
    """Keep-alive connections to one origin, at most ``max_connections`` open at once."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int,
        keepalive_expiry: float,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self.ssl = ssl_context or ssl.create_default_context()
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        default_port = self.port == (443 if self.ssl else 80)
        host_header = parts.hostname if default_port else f"{parts.hostname}:{self.port}"
        if ":" in parts.hostname:  # an IPv6 literal keeps its brackets in Host
            host_header = host_header.replace(parts.hostname, f"[{parts.hostname}]", 1)
        self.head_prefix = (
            f"POST {target} HTTP/1.1\r\n"
            f"Host: {host_header}\r\n"
            f"Content-Type: {REQUEST_CONTENT_TYPE}\r\n"
            f"Accept: {REQUEST_ACCEPT}\r\n"
            "Accept-Encoding: identity\r\n"
            "User-Agent: pek-router\r\n"
        ).encode("latin-1")
        self.max_connections = max(1, max_connections)
        self.keepalive_expiry = keepalive_expiry
        self._idle: collections.deque[_Connection] = collections.deque()
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.closed = False

    async def acquire(self) -> _Connection:
        loop = asyncio.get_running_loop()
        while True:
            now = time.monotonic()
            while self._idle:
                # The most recently used first: the least likely to have been closed by the peer.
                conn = self._idle.pop()
                if conn.closed or now - conn.idle_since > self.keepalive_expiry:
                    self._discard(conn)
                    continue
                conn.reused = True
                return conn
            if self._open < self.max_connections:
                break
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # we were handed a slot we will not use: pass it on
                raise
        self._open += 1
        try:
            _, protocol = await loop.create_connection(
                lambda: _Connection(loop),
                self.host,
                self.port,
                ssl=self.ssl,
                server_hostname=self.host if self.ssl else None,
            )
        except BaseException:
            self._open -= 1
            self._wake()
            raise
        return protocol

    def release(self, conn: _Connection, reusable: bool) -> None:
        if reusable and not conn.closed and not self.closed:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            self._discard(conn)
        self._wake()

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._open -= 1

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        self.closed = True
        while self._idle:
            self._discard(self._idle.pop())


def _header_lines(headers: Mapping[str, str]) -> bytes:
    out = []
    for name, value in headers.items():
        if not name or any(c in name for c in "\r\n:\0 ") or any(c in value for c in "\r\n\0"):
            raise ValueError(f"header {name!r} cannot be forwarded (control characters)")
        out.append(f"{name}: {value}\r\n")
    return "".join(out).encode("latin-1", errors="replace")


class Http11Transport:
    """Calls subgraphs over HTTP/1.1 with a small asyncio client: a keep-alive pool per
    subgraph origin, one request per connection at a time, a whole-fetch timeout.

    Same contract as :class:`HttpTransport` (the two are interchangeable): every failure to get
    a GraphQL response is a :class:`SubgraphUnavailable` with a reason a person can act on.
    A fetch on a reused connection that the subgraph closed before answering a single byte is
    retried once on a new connection (the subgraph's keep-alive timeout raced with us; it has
    not seen the request).
    """

    def __init__(
        self,
        urls: Mapping[str, str],
        *,
        timeout: float = 10.0,
        max_connections: int = 100,
        keepalive_expiry: float = 4.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._urls = dict(urls)
        self._timeout = timeout
        self._pools = {
            name: _Pool(
                url,
                max_connections=max_connections,
                keepalive_expiry=keepalive_expiry,
                ssl_context=ssl_context,
            )
            for name, url in self._urls.items()
        }

    def url_of(self, subgraph: str) -> str | None:
        return self._urls.get(subgraph)

    async def fetch(self, subgraph: str, request: SubgraphRequest) -> JSON:
        pool = self._pools.get(subgraph)
        if pool is None:
            raise SubgraphUnavailable(subgraph, "no URL configured")
        if pool.closed:
            raise SubgraphUnavailable(subgraph, "the transport is closed")
        body = orjson.dumps(request.body())
        try:
            extra = _header_lines(request.headers) if request.headers else b""
        except ValueError as exc:
            raise SubgraphUnavailable(subgraph, str(exc)) from None
        data = b"".join(
            (pool.head_prefix, extra, b"Content-Length: %d\r\n\r\n" % len(body), body)
        )
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._exchange(pool, data)
        except TimeoutError:
            raise SubgraphUnavailable(subgraph, "timed out") from None
        except _ConnectionClosed:
            raise SubgraphUnavailable(subgraph, "connection closed by the subgraph") from None
        except _ProtocolError as exc:
            raise SubgraphUnavailable(subgraph, f"invalid HTTP response ({exc})") from None
        except OSError as exc:
            reason = f"connection failed ({type(exc).__name__})"
            raise SubgraphUnavailable(subgraph, reason) from None
        return graphql_payload(subgraph, response.status, response.body)

    async def _exchange(self, pool: _Pool, data: bytes) -> _Response:
        attempt = 0
        while True:
            conn = await pool.acquire()
            reused = conn.reused
            try:
                response = await conn.request(data)
            except _ConnectionClosed as exc:
                pool.release(conn, False)
                if reused and not exc.received_any and attempt == 0:
                    attempt += 1
                    continue
                raise
            except BaseException:
                # Timed out or cancelled mid-exchange: the connection's state is unknown.
                pool.release(conn, False)
                raise
            pool.release(conn, response.keep_alive)
            return response

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.close()
