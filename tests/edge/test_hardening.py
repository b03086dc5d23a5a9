"""Hostile or careless clients over real HTTP on loopback: operation limits, field suggestions,
body size and token messages.

The app is the router's edge in front of the real gateway (wrapped in inbound deduplication, as
the roles assemble it, with the options the roles derive from the settings) over the test
subgraphs in-process, served by uvicorn.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from pek.roles import gateway_options
from pek.router.dedup import DeduplicatingGateway
from pek.router.gateway import Gateway
from pek.router.http import create_app
from pek.router.transport import InProcessTransport
from pek.settings import Settings
from tests.processes import served
from tests.router.subgraphs import SCHEMAS, SUPERGRAPH_FILE, RecordingSubgraph

from .conftest import local_edge_auth

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
GET_HEADERS = {"accept": GRAPHQL_RESPONSE_JSON, "graphql-preflight": "1"}
DEEP = "{ me { reviews { product { reviews { author { reviews { id } } } } } } }"  # 7 deep

@asynccontextmanager
async def _served(settings: Settings, key_dir: Path) -> AsyncIterator[str]:
    subgraphs = {name: RecordingSubgraph(schema) for name, schema in SCHEMAS.items()}
    gateway = DeduplicatingGateway(
        Gateway(SUPERGRAPH_FILE.read_text(), InProcessTransport(subgraphs),
                **gateway_options(settings))
    )
    app = create_app(gateway, settings, auth=local_edge_auth(settings, key_dir))
    async with served(app) as origin:
        yield origin


@pytest.fixture
async def router(key_dir: Path) -> AsyncIterator[str]:
    settings = Settings(max_depth=6, max_aliases=3, max_root_fields=4, max_tokens=200,
                        max_body_bytes=4000)
    async with _served(settings, key_dir) as origin:
        yield origin


async def test_a_refused_operation_is_400_or_200_by_media_type(router: str) -> None:
    async with httpx.AsyncClient(base_url=router) as client:
        new = await client.post(
            "/graphql", json={"query": DEEP}, headers={"accept": GRAPHQL_RESPONSE_JSON}
        )
        assert new.status_code == 400
        assert new.headers["content-type"] == GRAPHQL_RESPONSE_JSON
        assert new.json() == {
            "errors": [
                {
                    "message": "The operation is nested 7 fields deep; the limit is 6.",
                    "extensions": {
                        "code": "OPERATION_LIMIT", "limit": "maxDepth", "maximum": 6, "actual": 7
                    },
                }
            ]
        }
        legacy = await client.post("/graphql", json={"query": DEEP})
        assert legacy.status_code == 200
        assert legacy.headers["content-type"] == "application/json"
        assert legacy.json() == new.json()
        # within the limits the same shape is answered
        ok = await client.post("/graphql", json={"query": "{ me { reviews { body } } }"},
                               headers={"accept": GRAPHQL_RESPONSE_JSON})
        assert ok.status_code == 200 and ok.json()["data"]["me"]["reviews"]


@pytest.mark.parametrize(
    ("query", "limit"),
    [
        ("{ a: me { id } b: me { id } c: me { id } d: me { id } }", "maxAliases"),
        ("{ me { id } users { id } warehouseName __typename topProducts { upc } }",
         "maxRootFields"),
    ],
)
async def test_aliases_and_root_fields_over_get_and_post(router: str, query: str,
                                                         limit: str) -> None:
    async with httpx.AsyncClient(base_url=router) as client:
        post = await client.post("/graphql", json={"query": query},
                                 headers={"accept": GRAPHQL_RESPONSE_JSON})
        get = await client.get("/graphql", params={"query": query}, headers=GET_HEADERS)
    for response in (post, get):
        assert response.status_code == 400
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "OPERATION_LIMIT"
        assert error["extensions"]["limit"] == limit


async def test_token_limit_for_post_and_get(router: str) -> None:
    long_query = "{ me { " + "id " * 300 + "} }"
    async with httpx.AsyncClient(base_url=router) as client:
        post = await client.post("/graphql", json={"query": long_query},
                                 headers={"accept": GRAPHQL_RESPONSE_JSON})
        get = await client.get("/graphql", params={"query": long_query},
                               headers=GET_HEADERS)
        # a mutation over GET that is too long to tell: refused by the token limit, not run
        mutation = "mutation { createUser(name: \"x\") { id " + "id " * 300 + "} }"
        get_mutation = await client.get("/graphql", params={"query": mutation},
                                        headers=GET_HEADERS)
    for response in (post, get, get_mutation):
        assert response.status_code == 400, response.text
        (error,) = response.json()["errors"]
        assert error["message"] == "The document has more than 200 tokens; the limit is 200."
        assert error["extensions"]["code"] == "OPERATION_LIMIT"


async def test_body_size_is_a_setting(router: str) -> None:
    async with httpx.AsyncClient(base_url=router) as client:
        response = await client.post(
            "/graphql", json={"query": "{ me { id } }", "variables": {"pad": "x" * 5000}},
            headers={"accept": GRAPHQL_RESPONSE_JSON},
        )
    assert response.status_code == 413
    assert response.json()["errors"][0]["message"] == "Request body is larger than 4000 bytes"


async def test_defaults_refuse_the_audits_documents_quickly(key_dir: Path) -> None:
    hops = "".join("reviews { author { " for _ in range(10)) + "id" + " } }" * 10
    deep = "{ me { " + hops + " } }"
    aliases = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(3000)) + " }"
    async with _served(Settings(), key_dir) as origin, \
            httpx.AsyncClient(base_url=origin) as client:
        for query, limit in ((deep, "maxDepth"), (aliases, "maxTokens")):
            started = time.perf_counter()
            response = await client.post("/graphql", json={"query": query},
                                         headers={"accept": GRAPHQL_RESPONSE_JSON})
            assert response.status_code == 400
            assert response.json()["errors"][0]["extensions"]["limit"] == limit
            assert time.perf_counter() - started < 1.0
            health = await client.get("/health")
            assert health.status_code == 200


@pytest.mark.parametrize(
    ("settings", "suggested"),
    [
        (Settings(), True),
        (Settings(introspection=False), False),  # auto follows introspection
        (Settings(introspection=False, field_suggestions="true"), True),
        (Settings(field_suggestions="false"), False),
    ],
)
async def test_field_suggestions_over_http(key_dir: Path, settings: Settings,
                                           suggested: bool) -> None:
    async with _served(settings, key_dir) as origin, \
            httpx.AsyncClient(base_url=origin) as client:
        response = await client.post("/graphql", json={"query": "{ me { nam } }"},
                                     headers={"accept": GRAPHQL_RESPONSE_JSON})
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["message"].startswith("Cannot query field 'nam' on type 'User'.")
    assert ("Did you mean 'name'?" in error["message"]) is suggested
    assert ("name'" in error["message"].removeprefix("Cannot query field 'nam'")) is suggested


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "token",
    [
        _b64(b"\xb7\xff\xfe") + ".e30.c2ln",  # a header that is not UTF-8
        "not.a.jwt",
        _b64(b'{"alg": "EdDSA"') + ".e30.c2ln",  # a header that is not JSON
    ],
)
async def test_a_malformed_token_gets_a_plain_message(
    router: str, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pek.router.auth")
    async with httpx.AsyncClient(base_url=router) as client:
        response = await client.post(
            "/graphql", json={"query": "{ me { id } }"},
            headers={"accept": GRAPHQL_RESPONSE_JSON, "authorization": f"Bearer {token}"},
        )
    assert response.status_code == 401
    (error,) = response.json()["errors"]
    assert error["message"] == (
        "The access token is malformed: sign in again or refresh it (POST /auth/refresh)."
    )
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    # the decoder's own words stay in the server log
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "malformed token:" in logged


async def test_every_forged_token_gets_a_plain_reason(key_dir: Path) -> None:
    from tests.auth.test_tokens import forged_tokens

    settings = Settings(key_dir=str(key_dir))
    plain = {
        "The access token is malformed",
        "The access token has expired",
        "The access token is not valid yet",
        "The access token was issued for another audience",
        "The access token was issued by another issuer",
        "The access token lacks a required claim",
        "The access token's signature is not valid",
        "The access token's algorithm is not accepted (only EdDSA)",
        "The access token is signed with an unknown signing key",
        "The access token's subject is not a user",
    }
    suffix = ": sign in again or refresh it (POST /auth/refresh)."
    async with _served(settings, key_dir) as origin, \
            httpx.AsyncClient(base_url=origin) as client:
        for name, token in forged_tokens(settings).items():
            response = await client.post(
                "/graphql", json={"query": "{ me { id } }"},
                headers={"accept": GRAPHQL_RESPONSE_JSON, "authorization": f"Bearer {token}"},
            )
            assert response.status_code == 401, name
            message = response.json()["errors"][0]["message"]
            assert message.endswith(suffix), (name, message)
            assert message.removesuffix(suffix) in plain, (name, message)
