"""Http11Transport (and HttpTransport, where they must agree) against real HTTP servers on
loopback: a scripted asyncio server for the framing cases, uvicorn for the ordinary path."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pek.router.transport import (
    Http11Transport,
    HttpTransport,
    SubgraphRequest,
    SubgraphUnavailable,
)

ANSWER = {"data": {"hello": "world", "list": list(range(50))}}


@dataclass
class Received:
    request_line: str
    headers: dict[str, str]
    body: bytes


Responder = Callable[[Received, asyncio.StreamWriter, int], Awaitable[bool]]


@dataclass
class ScriptedServer:
    """An HTTP/1.1 server whose answers the test writes byte by byte. ``respond`` gets each
    request, the writer and the request's number on its connection; it returns whether to keep
    the connection open."""

    respond: Responder
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                received = Received(lines[0], headers, body)
                self.received.append(received)
                number += 1
                if not await self.respond(received, writer, number):
                    return
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def scripted(respond: Responder) -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer(respond)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


def json_response(payload: Any = ANSWER, *, status: str = "200 OK", extra: str = "") -> bytes:
    body = orjson.dumps(payload)
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


async def fixed(received: Received, writer: asyncio.StreamWriter, number: int) -> bool:
    writer.write(json_response())
    await writer.drain()
    return True


def transport_for(port: int, **kwargs: Any) -> Http11Transport:
    return Http11Transport({"sg": f"http://127.0.0.1:{port}/graphql"}, **kwargs)


REQUEST = SubgraphRequest(
    query="query Q($id: ID!) { user(id: $id) { name } }",
    variables={"id": "1"},
    operation_name="Q",
    headers={"authorization": "Bearer abc", "accept-language": "hu"},
)


async def test_sends_a_graphql_post_and_reuses_the_connection() -> None:
    async with scripted(fixed) as server:
        transport = transport_for(server.port)
        for _ in range(3):
            assert await transport.fetch("sg", REQUEST) == ANSWER
        await transport.aclose()
    assert server.connections == 1
    first = server.received[0]
    assert first.request_line == "POST /graphql HTTP/1.1"
    assert first.headers["host"] == f"127.0.0.1:{server.port}"
    assert first.headers["content-type"] == "application/json"
    assert "application/graphql-response+json" in first.headers["accept"]
    assert first.headers["authorization"] == "Bearer abc"
    assert first.headers["accept-language"] == "hu"
    assert orjson.loads(first.body) == {
        "query": REQUEST.query,
        "variables": {"id": "1"},
        "operationName": "Q",
    }


async def test_chunked_response_in_small_pieces() -> None:
    body = orjson.dumps(ANSWER)

    async def chunked(received: Received, writer: asyncio.StreamWriter, number: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
        for piece in pieces:
            frame = b"%x;ext=1\r\n%s\r\n" % (len(piece), piece)
            # Split every frame mid-way, across separate TCP writes.
            for part in (frame[:3], frame[3:]):
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(0)
        writer.write(b"0\r\nX-Trailer: yes\r\n\r\n")
        await writer.drain()
        return True

    async with scripted(chunked) as server:
        transport = transport_for(server.port)
        assert await transport.fetch("sg", REQUEST) == ANSWER
        assert await transport.fetch("sg", REQUEST) == ANSWER  # framing left nothing behind
        await transport.aclose()
    assert server.connections == 1


async def test_body_until_close_and_connection_close() -> None:
    async def until_close(received: Received, writer: asyncio.StreamWriter, number: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
        writer.write(orjson.dumps(ANSWER))
        await writer.drain()
        return False

    async def says_close(received: Received, writer: asyncio.StreamWriter, number: int) -> bool:
        writer.write(json_response(extra="Connection: close\r\n"))
        await writer.drain()
        return False

    for respond in (until_close, says_close):
        async with scripted(respond) as server:
            transport = transport_for(server.port)
            assert await transport.fetch("sg", REQUEST) == ANSWER
            assert await transport.fetch("sg", REQUEST) == ANSWER
            await transport.aclose()
        assert server.connections == 2


async def test_interim_100_continue_is_skipped() -> None:
    async def interim(received: Received, writer: asyncio.StreamWriter, number: int) -> bool:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + json_response())
        await writer.drain()
        return True

    async with scripted(interim) as server:
        transport = transport_for(server.port)
        assert await transport.fetch("sg", REQUEST) == ANSWER
        await transport.aclose()


async def test_graphql_error_status_still_returns_the_body() -> None:
    errors = {"errors": [{"message": "Cannot query field"}]}

    async def bad_request(received: Received, writer: asyncio.StreamWriter, number: int) -> bool:
        writer.write(json_response(errors, status="400 Bad Request"))
        await writer.drain()
        return True

    async with scripted(bad_request) as server:
        transport = transport_for(server.port)
        assert await transport.fetch("sg", REQUEST) == errors
        await transport.aclose()


async def test_idle_connection_closed_by_the_server_is_retried_once() -> None:
    async def one_per_connection(
        received: Received, writer: asyncio.StreamWriter, number: int
    ) -> bool:
        # Answers the first request, then closes without a word (a keep-alive timeout race).
        if number > 1:
            return False
        writer.write(json_response())
        await writer.drain()
        return True

    async with scripted(one_per_connection) as server:
        transport = transport_for(server.port)
        assert await transport.fetch("sg", REQUEST) == ANSWER
        assert await transport.fetch("sg", REQUEST) == ANSWER
        await transport.aclose()
    assert server.connections == 2


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "HTTP 200 without a JSON body"),
        (json_response({"hello": 1}), "HTTP 200, not a GraphQL response"),
        (b"SMTP ready\r\n\r\n", "invalid HTTP response"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad", "HTTP 502"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}", "connection closed"),
    ],
)
async def test_bad_answers_are_clear_subgraph_errors(raw: bytes, reason: str) -> None:
    async def answer(received: Received, writer: asyncio.StreamWriter, number: int) -> bool:
        writer.write(raw)
        await writer.drain()
        return False

    async with scripted(answer) as server:
        transport = transport_for(server.port)
        with pytest.raises(SubgraphUnavailable) as caught:
            await transport.fetch("sg", REQUEST)
        await transport.aclose()
    assert caught.value.subgraph == "sg"
    assert reason in caught.value.reason


async def test_timeout() -> None:
    async def silent(received: Received, writer: asyncio.StreamWriter, number: int) -> bool:
        await asyncio.sleep(5)
        return False

    async with scripted(silent) as server:
        transport = transport_for(server.port, timeout=0.2)
        with pytest.raises(SubgraphUnavailable, match="timed out"):
            await transport.fetch("sg", REQUEST)
        await transport.aclose()


async def test_connection_refused_and_unknown_subgraph() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    transport = transport_for(port)
    with pytest.raises(SubgraphUnavailable, match=r"connection failed \(ConnectionRefusedError\)"):
        await transport.fetch("sg", REQUEST)
    with pytest.raises(SubgraphUnavailable, match="no URL configured"):
        await transport.fetch("other", REQUEST)
    await transport.aclose()


async def test_header_injection_is_refused() -> None:
    async with scripted(fixed) as server:
        transport = transport_for(server.port)
        evil = SubgraphRequest(query="{ a }", headers={"authorization": "x\r\nX-Admin: 1"})
        with pytest.raises(SubgraphUnavailable, match="control characters"):
            await transport.fetch("sg", evil)
        await transport.aclose()
    assert server.received == []


async def test_pool_limit_queues_requests() -> None:
    in_flight = 0
    most = 0

    async def slow(received: Received, writer: asyncio.StreamWriter, number: int) -> bool:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        writer.write(json_response())
        await writer.drain()
        return True

    async with scripted(slow) as server:
        transport = transport_for(server.port, max_connections=3)
        results = await asyncio.gather(*(transport.fetch("sg", REQUEST) for _ in range(12)))
        await transport.aclose()
    assert all(r == ANSWER for r in results)
    assert most <= 3
    assert server.connections == 3


async def test_cancelled_fetch_does_not_leak_its_slot() -> None:
    release = asyncio.Event()

    async def held(received: Received, writer: asyncio.StreamWriter, number: int) -> bool:
        if received.body and b"hold" in received.body:
            await release.wait()
        writer.write(json_response())
        await writer.drain()
        return True

    async with scripted(held) as server:
        transport = transport_for(server.port, max_connections=1)
        held_task = asyncio.ensure_future(
            transport.fetch("sg", SubgraphRequest(query="{ hold }"))
        )
        await asyncio.sleep(0.05)
        held_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await held_task
        release.set()
        # The cancelled fetch's connection was dropped; its slot is free for the next one.
        assert await asyncio.wait_for(transport.fetch("sg", REQUEST), 2) == ANSWER
        await transport.aclose()


# -- a real ASGI server ---------------------------------------------------------------------------


async def graphql_echo(request: Request) -> Response:
    body = orjson.loads(await request.body())
    payload = {
        "data": {
            "query": body["query"],
            "variables": body.get("variables"),
            "auth": request.headers.get("authorization"),
            "big": "x" * 200_000,  # larger than any socket buffer: many reads
        }
    }
    return Response(orjson.dumps(payload), media_type="application/json")


@contextlib.asynccontextmanager
async def uvicorn_server() -> AsyncIterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = Starlette(routes=[Route("/graphql", graphql_echo, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    for _ in range(1000):  # uvicorn offers no event for "listening"
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize("kind", ["asyncio", "httpx"])
async def test_both_transports_agree_against_uvicorn(kind: str) -> None:
    async with uvicorn_server() as port:
        urls = {"sg": f"http://127.0.0.1:{port}/graphql"}
        transport = Http11Transport(urls) if kind == "asyncio" else HttpTransport(urls)
        results = await asyncio.gather(*(transport.fetch("sg", REQUEST) for _ in range(20)))
        await transport.aclose()
    for result in results:
        assert result["data"]["query"] == REQUEST.query
        assert result["data"]["variables"] == {"id": "1"}
        assert result["data"]["auth"] == "Bearer abc"
        assert len(result["data"]["big"]) == 200_000
