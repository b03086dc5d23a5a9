"""Automatic persisted queries over real HTTP (uvicorn on 127.0.0.1), with a real Redis
(database 13, used by no other test), with Redis unreachable, and with APQ switched off."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import redis
import uvicorn

from pek.router.edge.apq import REDIS_PREFIX
from pek.router.http import create_app
from pek.settings import Settings

from ..conftest import require_redis
from .conftest import SchemaExecutor

APQ_REDIS_URL = "redis://127.0.0.1:6379/13"
QUERY = "query Hello($n: String) { hello(name: $n) }"
JSON_HEADERS = {"content-type": "application/json"}


def sha(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def persisted(query: str, version: Any = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": sha(query)}}


class Served:
    def __init__(self, url: str, executor: SchemaExecutor) -> None:
        self.url = url
        self.executor = executor
        self.http = httpx.Client(base_url=url, timeout=10)

    def post(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        return self.http.post("/graphql", json=body, headers=headers)

    def get(self, params: dict[str, Any], **headers: str) -> httpx.Response:
        encoded = {
            k: orjson.dumps(v).decode() if isinstance(v, dict) else v for k, v in params.items()
        }
        return self.http.get("/graphql", params=encoded, headers={**JSON_HEADERS, **headers})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there once the socket is closed


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[tuple[uvicorn.Server, threading.Thread, Served]] = []

    def start(settings: Settings) -> Served:
        executor = SchemaExecutor()
        app = create_app(executor, settings)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                pytest.fail("uvicorn did not start")
            time.sleep(0.05)
        served = Served(f"http://127.0.0.1:{port}", executor)
        servers.append((server, thread, served))
        return served

    yield start
    for server, thread, served in servers:
        served.http.close()
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def apq_redis() -> Iterator[redis.Redis]:
    require_redis()
    client = redis.Redis.from_url(APQ_REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def test_unknown_hash_is_persisted_query_not_found_as_apollo_server_answers(serve: Any) -> None:
    router = serve(Settings())
    for accept in ("application/json", "application/graphql-response+json"):
        response = router.post({"extensions": persisted(QUERY)}, accept=accept)
        assert response.status_code == 200
        assert response.headers["content-type"] == accept
        assert response.headers["cache-control"] == "private, no-cache, must-revalidate"
        assert response.json() == {
            "errors": [
                {
                    "message": "PersistedQueryNotFound",
                    "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
                }
            ]
        }
    assert router.executor.calls == []


def test_register_then_hash_only_over_post_and_get(serve: Any) -> None:
    router = serve(Settings())
    variables = {"n": "PÉK"}
    first = router.post({"query": QUERY, "variables": variables, "extensions": persisted(QUERY)})
    assert first.json() == {"data": {"hello": "Hello, PÉK!"}}
    again = router.post({"variables": {"n": "APQ"}, "extensions": persisted(QUERY)})
    assert again.json() == {"data": {"hello": "Hello, APQ!"}}
    over_get = router.get({"variables": {"n": "GET"}, "extensions": persisted(QUERY)})
    assert over_get.status_code == 200
    assert over_get.json() == {"data": {"hello": "Hello, GET!"}}
    assert [c.query for c in router.executor.calls] == [QUERY, QUERY, QUERY]


def test_register_over_get_then_hash_only(serve: Any) -> None:
    router = serve(Settings())
    query = "{ hello }"
    assert router.get({"extensions": persisted(query)}).json()["errors"][0]["extensions"] == {
        "code": "PERSISTED_QUERY_NOT_FOUND"
    }
    registered = router.get({"query": query, "extensions": persisted(query)})
    assert registered.json() == {"data": {"hello": "Hello, world!"}}
    assert router.get({"extensions": persisted(query)}).json() == {
        "data": {"hello": "Hello, world!"}
    }


def test_get_still_needs_csrf_prevention(serve: Any) -> None:
    router = serve(Settings())
    router.post({"query": "{ hello }", "extensions": persisted("{ hello }")})
    response = router.http.get(
        "/graphql",
        params={"extensions": orjson.dumps(persisted("{ hello }")).decode()},
    )
    assert response.status_code == 400
    assert "cross-site request forgery" in response.json()["errors"][0]["message"]


def test_mutation_over_get_is_refused_and_not_stored(serve: Any) -> None:
    router = serve(Settings())
    mutation = 'mutation { rename(name: "x") }'
    refused = router.get({"query": mutation, "extensions": persisted(mutation)})
    assert refused.status_code == 405
    assert refused.headers["allow"] == "POST"
    # not stored: the hash alone is still unknown (over POST too)
    unknown = router.post({"extensions": persisted(mutation)})
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    # registered over POST, the hash alone still cannot run it over GET
    assert router.post({"query": mutation, "extensions": persisted(mutation)}).json() == {
        "data": {"rename": "x"}
    }
    assert router.get({"extensions": persisted(mutation)}).status_code == 405
    assert router.post({"extensions": persisted(mutation)}).json() == {"data": {"rename": "x"}}


def test_hash_that_does_not_match_its_query_is_refused_and_not_stored(serve: Any) -> None:
    router = serve(Settings())
    wrong = {"persistedQuery": {"version": 1, "sha256Hash": sha("{ boom }")}}
    response = router.post({"query": "{ hello }", "extensions": wrong})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert "does not match" in error["message"]
    assert "Traceback" not in response.text
    # the query was not stored under that hash
    unknown = router.post({"extensions": wrong})
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert router.executor.calls == []


@pytest.mark.parametrize(
    ("extensions", "expected"),
    [
        ({"persistedQuery": "abc"}, "must be an object"),
        ({"persistedQuery": {"version": 2, "sha256Hash": sha("{ hello }")}}, "version 2"),
        ({"persistedQuery": {"sha256Hash": sha("{ hello }")}}, "version None"),
        ({"persistedQuery": {"version": 1}}, "64 hexadecimal digits"),
        ({"persistedQuery": {"version": 1, "sha256Hash": "ab"}}, "64 hexadecimal digits"),
        ({"persistedQuery": {"version": 1, "sha256Hash": "z" * 64}}, "64 hexadecimal digits"),
        ({"persistedQuery": {"version": 1, "sha256Hash": "a" * 10_000}}, "64 hexadecimal"),
    ],
)
def test_malformed_persisted_query_is_a_clear_400(
    serve: Any, extensions: dict[str, Any], expected: str
) -> None:
    router = serve(Settings())
    response = router.post({"extensions": extensions})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert expected in error["message"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}


def test_query_over_the_limits_is_not_stored(serve: Any) -> None:
    router = serve(Settings(max_depth=2))
    deep = "{ users { edges { node { name } } } }"
    first = router.post({"query": deep, "extensions": persisted(deep)})
    # the executor stands in for the gateway here: it does not apply the limits itself
    assert first.status_code == 200
    unknown = router.post({"extensions": persisted(deep)})
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    shallow = "{ hello }"
    router.post({"query": shallow, "extensions": persisted(shallow)})
    assert router.post({"extensions": persisted(shallow)}).json() == {
        "data": {"hello": "Hello, world!"}
    }


def test_query_over_the_token_limit_is_not_stored(serve: Any) -> None:
    router = serve(Settings(max_tokens=5))
    query = "{ hello hello hello hello }"
    router.post({"query": query, "extensions": persisted(query)})
    unknown = router.post({"extensions": persisted(query)})
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


def test_switched_off_hash_only_is_not_supported(serve: Any) -> None:
    router = serve(Settings(persisted_queries=False))
    response = router.post({"extensions": persisted("{ hello }")})
    assert response.status_code == 200
    assert response.json()["errors"][0] == {
        "message": "PersistedQueryNotSupported",
        "extensions": {"code": "PERSISTED_QUERY_NOT_SUPPORTED"},
    }
    # a client that gets this sends plain queries, which work as ever
    assert router.post({"query": "{ hello }"}).json() == {"data": {"hello": "Hello, world!"}}


def test_redis_shares_persisted_queries_between_routers_with_a_ttl(
    serve: Any, apq_redis: redis.Redis
) -> None:
    settings = Settings(redis_url=APQ_REDIS_URL, persisted_queries_ttl_seconds=120)
    first = serve(settings)
    second = serve(settings)
    assert first.post({"query": QUERY, "extensions": persisted(QUERY)}).json() == {
        "data": {"hello": "Hello, world!"}
    }
    key = REDIS_PREFIX + sha(QUERY)
    assert apq_redis.get(key) == QUERY.encode()
    assert 0 < apq_redis.ttl(key) <= 120
    # the second router never saw the query: it reads it from Redis
    assert second.post({"variables": {"n": "B"}, "extensions": persisted(QUERY)}).json() == {
        "data": {"hello": "Hello, B!"}
    }
    # what Redis holds under a hash is run only when it matches that hash
    tampered = "{ boom }"
    apq_redis.set(REDIS_PREFIX + sha("{ hello }"), tampered.encode())
    unknown = second.post({"extensions": persisted("{ hello }")})
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


def test_redis_outage_degrades_to_the_in_process_cache(serve: Any) -> None:
    router = serve(Settings(redis_url=f"redis://127.0.0.1:{_closed_port()}/0"))
    assert router.post({"extensions": persisted(QUERY)}).json()["errors"][0]["extensions"] == {
        "code": "PERSISTED_QUERY_NOT_FOUND"
    }
    assert router.post({"query": QUERY, "extensions": persisted(QUERY)}).json() == {
        "data": {"hello": "Hello, world!"}
    }
    assert router.get({"extensions": persisted(QUERY)}).json() == {
        "data": {"hello": "Hello, world!"}
    }
