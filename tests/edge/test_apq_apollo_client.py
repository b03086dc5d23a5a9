"""Apollo Client 3's persisted-query link (Node, tests/edge/node) against the router's APQ over
real HTTP: the first request of a query is its hash alone, the router answers
PERSISTED_QUERY_NOT_FOUND, the link retries with the query, and later requests (also from a new
client) go by hash only; with useGETForHashedQueries those are GETs, mutations stay POSTs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pek.settings import Settings

from .test_apq import serve  # noqa: F401  (the fixture)

NODE_DIR = Path(__file__).resolve().parent / "node"
INSTALL_COMMAND = "npm ci --prefix tests/edge/node"


def run_apollo_client(url: str, mode: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js 20 is needed for this test")
    if not (NODE_DIR / "node_modules" / "@apollo" / "client").is_dir():
        pytest.fail(f"@apollo/client is not installed: run `{INSTALL_COMMAND}`")
    result = subprocess.run(
        [node, "apq.mjs", f"{url}/graphql", mode],
        cwd=NODE_DIR, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    output: dict[str, Any] = json.loads(result.stdout)
    return output


EXPECTED_RESULTS = [
    {"hello": "Hello, one!"},
    {"hello": "Hello, two!"},
    {"hello": "Hello, three!"},
    {"rename": "m"},
]
NOT_FOUND = {
    "errors": [
        {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
    ]
}


def shape(exchanges: list[dict[str, Any]]) -> list[tuple[str, bool, bool, int]]:
    return [(e["method"], e["sentQuery"], e["sentHash"], e["status"]) for e in exchanges]


def test_apollo_client_persisted_query_link_over_post(serve: Any) -> None:  # noqa: F811
    router = serve(Settings())
    output = run_apollo_client(router.url, "post")
    assert output["results"] == EXPECTED_RESULTS
    exchanges = output["exchanges"]
    assert shape(exchanges) == [
        ("POST", False, True, 200),  # hash only: unknown
        ("POST", True, True, 200),  # the retry with the query: stored and run
        ("POST", False, True, 200),  # known: hash only
        ("POST", False, True, 200),  # a new client: hash only, known
        ("POST", False, True, 200),  # the mutation: hash only, unknown
        ("POST", True, True, 200),  # its retry
    ]
    assert exchanges[0]["answer"] == NOT_FOUND
    assert exchanges[4]["answer"] == NOT_FOUND
    # the executor saw each operation once per run, never an empty query
    assert [c.query.split("(")[0] for c in router.executor.calls] == [
        "query Hello", "query Hello", "query Hello", "mutation Rename",
    ]


def test_apollo_client_hashed_queries_over_get(serve: Any) -> None:  # noqa: F811
    router = serve(Settings())
    output = run_apollo_client(router.url, "get")
    assert output["results"] == EXPECTED_RESULTS
    exchanges = output["exchanges"]
    assert shape(exchanges) == [
        ("GET", False, True, 200),  # hash only over GET: unknown
        ("POST", True, True, 200),  # the retry with the query goes as POST
        ("GET", False, True, 200),  # then GET by hash: a URL a CDN can cache
        ("GET", False, True, 200),
        ("POST", False, True, 200),  # mutations are never GETs
        ("POST", True, True, 200),
    ]
    assert exchanges[0]["answer"] == NOT_FOUND
