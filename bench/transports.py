"""CPU per subgraph fetch: HttpTransport (httpx) against Http11Transport (asyncio).

Starts a small subgraph stand-in (uvicorn, answering every POST with a fixed GraphQL response of
``--size`` bytes) in a child process, then sends ``--fetches`` fetches through each transport at
each concurrency and prints the client process's CPU time per fetch and the fetches per second.

    .venv/bin/python bench/transports.py [--size 20000] [--fetches 2000] [--concurrency 1 20]

Pin it to compare fairly on a busy machine: ``taskset -c 1 .venv/bin/python bench/transports.py``
(the server child moves itself to the other CPUs when it can).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time

from pek.router.transport import Http11Transport, HttpTransport, SubgraphRequest, Transport

SERVER = r"""
import os, sys, orjson, uvicorn
size = int(sys.argv[2])
payload = orjson.dumps({"data": {"blob": "x" * max(size - 22, 0)}})
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": payload})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            http="httptools", loop="uvloop", access_log=False)
"""

REQUEST = SubgraphRequest(
    query="query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { name } } }",
    variables={"r": [{"__typename": "Product", "upc": str(i)} for i in range(5)]},
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def measure(transport: Transport, fetches: int, concurrency: int) -> tuple[float, float]:
    """(CPU microseconds per fetch, fetches per second)."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            result = await transport.fetch("sg", REQUEST)
            assert "data" in result

    await asyncio.gather(*(one() for _ in range(min(200, fetches))))  # warm the pool
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(fetches)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / fetches * 1e6, fetches / wall


async def main_async(args: argparse.Namespace, url: str) -> None:
    kinds: dict[str, type[HttpTransport] | type[Http11Transport]] = {
        "httpx": HttpTransport,
        "asyncio": Http11Transport,
    }
    for concurrency in args.concurrency:
        for name, kind in kinds.items():
            transport = kind({"sg": url})
            try:
                cpu_us, rate = await measure(transport, args.fetches, concurrency)
            finally:
                await transport.aclose()
            print(
                f"TRANSPORT client={name} size={args.size} concurrency={concurrency} "
                f"cpu_us_per_fetch={cpu_us:.0f} fetches_per_s={rate:.0f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=20_000, help="response bytes")
    parser.add_argument("--fetches", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 20])
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(args.size)])
    try:
        if hasattr(os, "sched_setaffinity"):
            # Keep the server off the client's CPUs (when the client was pinned).
            others = set(range(os.cpu_count() or 1)) - os.sched_getaffinity(0)
            if others:
                os.sched_setaffinity(server.pid, others)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        asyncio.run(main_async(args, f"http://127.0.0.1:{port}/graphql"))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
