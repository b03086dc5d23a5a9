"""GraphQL over HTTP at /graphql: parsing, content negotiation, CSRF, methods, errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from pek.router.edge.content_negotiation import negotiate
from pek.settings import Settings

from .conftest import AppFactory, FailingExecutor, SchemaExecutor, client_for, signer_for

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON_HEADERS = {"content-type": "application/json"}


def messages(response: httpx.Response) -> list[str]:
    return [e["message"] for e in response.json()["errors"]]


# --- POST ------------------------------------------------------------------------------------


async def test_post_query_returns_data_as_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        json={"query": "query Q($n: String) { hello(name: $n) }", "variables": {"n": "PÉK"}},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"data": {"hello": "Hello, PÉK!"}}


async def test_post_runs_the_named_operation(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        json={"query": "query A { hello } query B { hello(name: \"B\") }", "operationName": "B"},
    )
    assert response.json() == {"data": {"hello": "Hello, B!"}}


async def test_post_mutation_is_allowed(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": 'mutation { rename(name: "x") }'})
    assert response.json() == {"data": {"rename": "x"}}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"query": "{ hello }"}'),
        ("application/x-www-form-urlencoded", b"query=%7Bhello%7D"),
        ("multipart/form-data; boundary=x", b"--x--"),
        ("application/graphql", b"{ hello }"),
        (None, b'{"query": "{ hello }"}'),
    ],
)
async def test_post_with_a_non_json_content_type_is_415(
    client: httpx.AsyncClient, executor: SchemaExecutor, content_type: str | None, body: bytes
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 415
    assert "application/json" in messages(response)[0]
    assert executor.calls == []


async def test_json_content_type_with_charset_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        content=b'{"query": "{ hello }"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.json() == {"data": {"hello": "Hello, world!"}}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b'"just a string"', "JSON object"),
        (b'[{"query": "{ hello }"}]', "Batched requests are not supported"),
        (b"{}", "must contain a 'query' string"),
        (b'{"query": 42}', "'query' must be a string"),
        (b'{"query": "  "}', "must not be empty"),
        (b'{"query": "{ hello }", "variables": [1]}', "'variables' must be an object"),
        (b'{"query": "{ hello }", "variables": "{}"}', "'variables' must be an object"),
        (b'{"query": "{ hello }", "operationName": 1}', "'operationName' must be a string"),
        (b'{"query": "{ hello }", "extensions": 1}', "'extensions' must be an object"),
        (b'{"extensions": {"persistedQuery": {"sha256Hash": "ab"}}}', "Persisted queries"),
    ],
)
async def test_malformed_post_is_400_with_a_graphql_error(
    client: httpx.AsyncClient, executor: SchemaExecutor, body: bytes, expected: str
) -> None:
    response = await client.post("/graphql", content=body, headers=JSON_HEADERS)
    assert response.status_code == 400
    assert list(response.json()) == ["errors"]
    assert expected in messages(response)[0]
    assert "Traceback" not in response.text
    assert executor.calls == []


async def test_body_over_one_mebibyte_is_413(client: httpx.AsyncClient) -> None:
    padding = " " * (1024 * 1024)
    body = orjson.dumps({"query": "{ hello }" + padding})
    response = await client.post("/graphql", content=body, headers=JSON_HEADERS)
    assert response.status_code == 413
    assert "larger than" in messages(response)[0]


async def test_chunked_body_over_the_limit_is_413(make_app: AppFactory) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ hello }", "x": "'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"}'

    async with client_for(make_app(max_body_bytes=5000)) as client:
        response = await client.post("/graphql", content=chunks(), headers=JSON_HEADERS)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_body_just_under_the_limit_is_fine(make_app: AppFactory) -> None:
    body = orjson.dumps({"query": "{ hello }", "extensions": {"pad": "a" * 4000}})
    async with client_for(make_app(max_body_bytes=len(body))) as client:
        response = await client.post("/graphql", content=body, headers=JSON_HEADERS)
    assert response.status_code == 200


# --- Content negotiation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        ("application/json", "application/json"),
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, application/json", GRAPHQL_RESPONSE_JSON),
        (f"application/json, {GRAPHQL_RESPONSE_JSON}", GRAPHQL_RESPONSE_JSON),
        (f"application/json;q=0.9, {GRAPHQL_RESPONSE_JSON}", GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON};q=0.5, application/json", "application/json"),
        (f"{GRAPHQL_RESPONSE_JSON};q=0, */*", "application/json"),
        ("application/json, multipart/mixed", "application/json"),
        ("text/html", None),
        ("application/xml, text/plain", None),
        ("application/json;q=0", None),
        ("garbage", "application/json"),
    ],
)
def test_negotiate(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


async def test_graphql_response_json_is_200_with_data(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ hello }"}, headers={"accept": GRAPHQL_RESPONSE_JSON}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == GRAPHQL_RESPONSE_JSON
    assert response.json() == {"data": {"hello": "Hello, world!"}}


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ hello(", None),  # syntax
        ("{ nope }", None),  # validation
        ("query Q($n: Int!) { users(first: $n) { edges { node { name } } } }", {"n": "x"}),
    ],
)
async def test_request_error_status_depends_on_media_type(
    client: httpx.AsyncClient, query: str, variables: dict[str, object] | None
) -> None:
    body = {"query": query, "variables": variables}
    new = await client.post("/graphql", json=body, headers={"accept": GRAPHQL_RESPONSE_JSON})
    assert new.status_code == 400
    assert new.headers["content-type"] == GRAPHQL_RESPONSE_JSON
    assert "data" not in new.json() and new.json()["errors"]

    legacy = await client.post("/graphql", json=body, headers={"accept": "application/json"})
    assert legacy.status_code == 200
    assert legacy.headers["content-type"] == "application/json"
    assert legacy.json() == new.json()


async def test_field_error_with_null_data_is_200(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ boom }"}, headers={"accept": GRAPHQL_RESPONSE_JSON}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["message"] == "boom is a field error"


async def test_unacceptable_accept_is_406(
    client: httpx.AsyncClient, executor: SchemaExecutor
) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ hello }"}, headers={"accept": "application/xml"}
    )
    assert response.status_code == 406
    assert "application/graphql-response+json" in messages(response)[0]
    assert executor.calls == []


# --- GET -------------------------------------------------------------------------------------


async def test_get_query_with_preflight_content_type(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql",
        params={"query": "query Q($n: String) { hello(name: $n) }", "variables": '{"n": "GET"}'},
        headers=JSON_HEADERS,
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"hello": "Hello, GET!"}}


@pytest.mark.parametrize(
    "header",
    [
        {"apollo-require-preflight": "true"},
        {"graphql-preflight": "1"},
        {"x-apollo-operation-name": "Q"},
        {"content-type": "application/graphql-response+json"},
    ],
)
async def test_get_with_any_non_simple_header_passes_csrf(
    client: httpx.AsyncClient, header: dict[str, str]
) -> None:
    response = await client.get("/graphql", params={"query": "{ hello }"}, headers=header)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"hello": "Hello, world!"}}


@pytest.mark.parametrize(
    "header",
    [
        {},
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {"apollo-require-preflight": ""},
    ],
)
async def test_get_without_preflight_is_blocked_as_csrf(
    client: httpx.AsyncClient, executor: SchemaExecutor, header: dict[str, str]
) -> None:
    response = await client.get("/graphql", params={"query": "{ hello }"}, headers=header)
    assert response.status_code == 400
    assert "CSRF" in messages(response)[0]
    assert executor.calls == []


@pytest.mark.parametrize(
    ("query", "operation_name"),
    [
        ('mutation { rename(name: "x") }', None),
        ('query A { hello } mutation B { rename(name: "x") }', "B"),
    ],
)
async def test_mutation_over_get_is_405(
    client: httpx.AsyncClient, executor: SchemaExecutor, query: str, operation_name: str | None
) -> None:
    params = {"query": query}
    if operation_name:
        params["operationName"] = operation_name
    response = await client.get("/graphql", params=params, headers=JSON_HEADERS)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "POST" in messages(response)[0]
    assert executor.calls == []


async def test_query_of_a_mixed_document_over_get_runs(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql",
        params={
            "query": 'query A { hello } mutation B { rename(name: "x") }',
            "operationName": "A",
        },
        headers=JSON_HEADERS,
    )
    assert response.json() == {"data": {"hello": "Hello, world!"}}


async def test_get_syntax_error_reaches_the_gateway_as_a_graphql_error(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        "/graphql",
        params={"query": "{ hello("},
        headers={**JSON_HEADERS, "accept": GRAPHQL_RESPONSE_JSON},
    )
    assert response.status_code == 400
    assert "Syntax Error" in messages(response)[0]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "must contain a 'query' string"),
        ({"query": "{ hello }", "variables": "{oops"}, "'variables' is not valid JSON"),
        ({"query": "{ hello }", "variables": "[1]"}, "'variables' must be an object"),
        ({"query": "{ hello }", "extensions": "nope"}, "'extensions' is not valid JSON"),
        ([("query", "{ hello }"), ("query", "{ hello }")], "more than once"),
    ],
)
async def test_malformed_get_is_400(
    client: httpx.AsyncClient, params: object, expected: str
) -> None:
    response = await client.get("/graphql", params=params, headers=JSON_HEADERS)  # type: ignore[arg-type]
    assert response.status_code == 400
    assert expected in messages(response)[0]


# --- Failures, routing --------------------------------------------------------------------


async def test_gateway_exception_is_500_without_details(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(make_app(gateway=FailingExecutor())) as client:
        with caplog.at_level(logging.ERROR):
            response = await client.post("/graphql", json={"query": "{ hello }"})
    assert response.status_code == 500
    assert response.json() == {"errors": [{"message": "Internal server error"}]}
    assert "secret internals" not in response.text
    assert "secret internals" in caplog.text
    assert "Traceback" in caplog.text


async def test_unknown_path_and_method_answer_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["message"]
    wrong_method = await client.put("/graphql", json={"query": "{ hello }"})
    assert wrong_method.status_code == 405
    assert "POST" in wrong_method.headers["allow"]
    assert wrong_method.json()["errors"][0]["message"]


# --- Forwarded headers and query plans -----------------------------------------------------


async def test_only_listed_headers_are_forwarded(
    client: httpx.AsyncClient, executor: SchemaExecutor, key_dir: Path
) -> None:
    token = signer_for(Settings(), key_dir).mint(2)[0]
    response = await client.post(
        "/graphql",
        json={"query": '{ a: header(name: "authorization") b: header(name: "x-secret") }'},
        headers={
            "authorization": f"Bearer {token}",
            "accept-language": "hu",
            "x-secret": "no",
            "x-pek-dev-user": "someone",
        },
    )
    assert response.json() == {"data": {"a": f"Bearer {token}", "b": None}}
    assert executor.calls[-1].headers == {
        "authorization": f"Bearer {token}", "accept-language": "hu"
    }


async def test_dev_user_header_is_forwarded_only_in_dev_mode(
    dev_client: httpx.AsyncClient, executor: SchemaExecutor
) -> None:
    response = await dev_client.post(
        "/graphql", json={"query": "{ me { name } }"}, headers={"x-pek-dev-user": "VXNlcjo6Mg"}
    )
    assert response.json() == {"data": {"me": {"name": "Szabó Bence"}}}
    # The edge turned the dev header into a hub token; the header itself never travels.
    assert list(executor.calls[-1].headers) == ["authorization"]


@pytest.mark.parametrize(
    ("dev", "headers", "extensions", "expected"),
    [
        (True, {"x-pek-query-plan": "1"}, None, True),
        (True, {"x-pek-query-plan": "true"}, None, True),
        (True, {}, {"queryPlan": True}, True),
        (True, {}, None, False),
        (True, {"x-pek-query-plan": "0"}, None, False),
        (False, {"x-pek-query-plan": "1"}, None, False),
        (False, {}, {"queryPlan": True}, False),
    ],
)
async def test_query_plan_only_on_request_in_dev_mode(
    make_app: AppFactory,
    executor: SchemaExecutor,
    dev: bool,
    headers: dict[str, str],
    extensions: dict[str, object] | None,
    expected: bool,
) -> None:
    async with client_for(make_app(settings=Settings(dev=dev))) as client:
        response = await client.post(
            "/graphql", json={"query": "{ hello }", "extensions": extensions}, headers=headers
        )
    assert executor.calls[-1].include_plan is expected
    assert ("extensions" in response.json()) is expected
    if expected:
        assert response.json()["extensions"]["queryPlan"]["rootFields"] == ["hello"]
