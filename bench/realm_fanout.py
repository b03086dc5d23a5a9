"""Fan-out cost: p50/p99 latency of a fan-out query through the router over HTTP against 1, 4,
16 and 32 realms, each realm answering after a fixed 20 ms delay.

Processes on loopback: 4 realm processes (8 realms each: the realm-routing test subgraph, which
computes each distinct request once and then answers it from memory after exactly 20 ms, so the
realms cost a fixed delay and not CPU the router needs), and for each realm count one router
process (the ``pek.router.http`` app over the realm-routing layer, HTTP/1.1 asyncio client, a
registry listing that many realms). The client sends the query one at a time and prints a table;
the goal: 32 realms within 2x of 1 realm at p50.

    .venv/bin/python bench/realm_fanout.py [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "realms_router"))

DELAY = 0.020
REALMS_PER_PROCESS = 8
REALM_PROCESSES = 4
QUERY = "{ groups(first: 10) { totalCount edges { cursor node { id name realmId } } } }"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve_realms(port: int, realm_ids: list[str]) -> None:
    import uvicorn
    from fixtures import RealmData, RealmInstance, realms_app

    from pek.router.transport import SubgraphRequest

    class Lightweight(RealmInstance):
        """A realm whose answers cost a fixed delay: each distinct request is computed once."""

        answers: dict[str, dict[str, Any]] = {}

        async def execute(self, request: SubgraphRequest) -> dict[str, Any]:
            key = json.dumps([self.realm, request.query, request.variables], sort_keys=True)
            answer = self.answers.get(key)
            if answer is None:
                answer = self.answers[key] = await super().execute(request)
            else:
                await asyncio.sleep(DELAY)
            return answer

    instances: dict[str, RealmInstance] = {}
    for realm in realm_ids:
        data = RealmData()
        for n in range(12):
            data.add_group(f"{realm}-group-{n:02d}")
        instances[realm] = Lightweight(realm, data, delay=DELAY)
    uvicorn.run(realms_app(instances), host="127.0.0.1", port=port, log_level="warning")


def serve_router(port: int, registry_file: str) -> None:
    import uvicorn
    from fixtures import HubInstance
    from world import supergraph

    from pek.router.gateway import Gateway
    from pek.router.http import create_app
    from pek.router.realms import (
        InProcessRegistrySource,
        RealmInstances,
        RealmRegistry,
        RealmRoutingTransport,
    )
    from pek.router.transport import Http11Transport, InProcessTransport
    from pek.settings import Settings

    document = json.loads(Path(registry_file).read_text())
    layer = RealmRoutingTransport(
        InProcessTransport({"hub": HubInstance()}),
        supergraph(),
        RealmRegistry(InProcessRegistrySource(lambda: document), refresh_seconds=0),
        RealmInstances(http_factory=lambda realm, url: Http11Transport({realm: url})),
    )
    app = create_app(Gateway(supergraph(), layer), Settings(graphiql=False),
                     on_startup=[layer.start], on_shutdown=[layer.aclose])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, *args], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
    )


async def _wait(url: str, body: dict[str, Any] | None = None) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                response = await client.post(url, json=body or {"query": "{ __typename }"})
                if response.status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not start")


async def _measure(url: str, requests: int, realms: int) -> list[float]:
    import httpx

    timings: list[float] = []
    async with httpx.AsyncClient(timeout=30) as client:
        for i in range(requests + 20):
            started = time.perf_counter()
            response = await client.post(url, json={"query": QUERY})
            elapsed = time.perf_counter() - started
            payload = response.json()
            if "errors" in payload:
                raise SystemExit(f"errors from the router: {payload['errors'][:2]}")
            assert payload["data"]["groups"]["totalCount"] == 12 * realms
            if i >= 20:  # warm-up: connections, plan and analysis caches
                timings.append(elapsed)
    return timings


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--serve-realms", nargs=2, metavar=("PORT", "REALMS"))
    parser.add_argument("--serve-router", nargs=2, metavar=("PORT", "REGISTRY"))
    args = parser.parse_args()
    if args.serve_realms:
        serve_realms(int(args.serve_realms[0]), args.serve_realms[1].split(","))
        return
    if args.serve_router:
        serve_router(int(args.serve_router[0]), args.serve_router[1])
        return

    all_realms = [f"realm-{n:02d}" for n in range(REALMS_PER_PROCESS * REALM_PROCESSES)]
    processes: list[subprocess.Popen[bytes]] = []
    urls: dict[str, str] = {}
    try:
        for p in range(REALM_PROCESSES):
            port = _free_port()
            hosted = all_realms[p * REALMS_PER_PROCESS:(p + 1) * REALMS_PER_PROCESS]
            processes.append(_spawn("--serve-realms", str(port), ",".join(hosted)))
            for realm in hosted:
                urls[realm] = f"http://127.0.0.1:{port}/realms/{realm}/graphql"
        for url in urls.values():
            asyncio.run(_wait(url))
        rows = []
        for count in (1, 4, 16, 32):
            # spread the realms over the processes, as a real deployment would
            chosen = [all_realms[(i % REALM_PROCESSES) * REALMS_PER_PROCESS + i // REALM_PROCESSES]
                      for i in range(count)]
            registry = {"version": 1, "realms": [
                {"id": r, "name": r, "url": urls[r], "timeout_ms": 5000, "enabled": True,
                 "position": i} for i, r in enumerate(chosen)]}
            registry_file = Path(f"/tmp/pek-bench-registry-{os.getpid()}-{count}.json")
            registry_file.write_text(json.dumps(registry))
            port = _free_port()
            router = _spawn("--serve-router", str(port), str(registry_file))
            try:
                url = f"http://127.0.0.1:{port}/graphql"
                asyncio.run(_wait(url))
                timings = asyncio.run(_measure(url, args.requests, count))
            finally:
                router.terminate()
                router.wait()
                registry_file.unlink()
            rows.append((count, _percentile(timings, 0.5), _percentile(timings, 0.99),
                         statistics.fmean(timings)))
        base = rows[0][1]
        print(f"fan-out query through the router over HTTP, {args.requests} requests each, "
              f"every realm answers after {DELAY * 1000:.0f} ms")
        print(f"{'realms':>6} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'p50 / 1 realm':>14}")
        for count, p50, p99, mean in rows:
            print(f"{count:>6} {p50 * 1000:>8.1f} {p99 * 1000:>8.1f} {mean * 1000:>8.1f} "
                  f"{p50 / base:>14.2f}")
        verdict = "met" if rows[-1][1] <= 2 * base else "NOT met"
        print(f"goal (32 realms within 2x of 1 realm at p50): {verdict}")
    finally:
        for process in processes:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
