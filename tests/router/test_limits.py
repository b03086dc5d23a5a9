"""Operation limits and field suggestions in the gateway (test subgraphs, in-process).

A refused document never reaches validation, planning or a subgraph; the verdict is cached with
the parsed document.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from graphql import get_introspection_query, parse

from pek.router.gateway import Gateway
from pek.router.graphiql import DEFAULT_QUERY
from pek.router.limits import (
    ConfigurationError,
    OperationLimits,
    field_suggestions_enabled,
    strip_suggestions,
)
from pek.router.transport import InProcessTransport
from pek.settings import Settings
from tests.router.subgraphs import RecordingSubgraph


def _gateway(
    supergraph: str,
    subgraphs: dict[str, RecordingSubgraph],
    limits: OperationLimits | None = None,
    **kwargs: Any,
) -> Gateway:
    return Gateway(supergraph, InProcessTransport(subgraphs), limits=limits, **kwargs)


def _deep(hops: int) -> str:
    """``{ me { reviews { product { reviews { author { ... __typename } } } } } }``: 2 fields a
    hop."""
    inner = "__typename"
    for hop in range(hops):
        inner = f"reviews {{ product {{ {inner} }} }}" if hop % 2 == 0 else \
            f"reviews {{ author {{ {inner} }} }}"
    return f"{{ me {{ {inner} }} }}"


def _only_error(response: dict[str, Any]) -> dict[str, Any]:
    assert "data" not in response, response
    assert len(response["errors"]) == 1, response
    error: dict[str, Any] = response["errors"][0]
    return error


def _fetches(subgraphs: dict[str, RecordingSubgraph]) -> int:
    return sum(len(s.requests) for s in subgraphs.values())


async def test_depth_limit_refuses_with_a_clear_message(
    supergraph: str, subgraphs: dict[str, RecordingSubgraph]
) -> None:
    gateway = _gateway(supergraph, subgraphs, OperationLimits(max_depth=6))
    ok = await gateway.execute(_deep(2))  # me + 2 hops of 2 + id = 6
    assert "errors" not in ok and ok["data"]["me"]["reviews"]
    error = _only_error(await gateway.execute(_deep(3)))
    assert error["message"] == "The operation is nested 8 fields deep; the limit is 6."
    assert error["extensions"] == {
        "code": "OPERATION_LIMIT", "limit": "maxDepth", "maximum": 6, "actual": 8
    }
    named = _only_error(await gateway.execute("query Deep " + _deep(3)))
    assert named["message"].startswith("Operation 'Deep' is nested 8 fields deep")


async def test_depth_counts_through_fragments_and_survives_cycles(
    supergraph: str, subgraphs: dict[str, RecordingSubgraph]
) -> None:
    gateway = _gateway(supergraph, subgraphs, OperationLimits(max_depth=4))
    through_fragments = """
        { me { ...A } }
        fragment A on User { reviews { ... on Review { ...B } } }
        fragment B on Review { product { reviews { id } } }
    """
    error = _only_error(await gateway.execute(through_fragments))
    assert error["extensions"]["actual"] == 5
    # A fragment cycle must neither hang nor crash the measurement: validation refuses it.
    cyclic = """
        { me { ...A } }
        fragment A on User { reviews { author { ...A } } }
    """
    error = _only_error(await gateway.execute(cyclic))
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "Cannot spread fragment 'A' within itself" in error["message"]


async def test_aliases_are_counted_with_fragments_expanded(
    supergraph: str, subgraphs: dict[str, RecordingSubgraph]
) -> None:
    gateway = _gateway(supergraph, subgraphs, OperationLimits(max_aliases=5))
    # a: 1 alias, F used twice with 2 aliases each: 5 in all
    five = await gateway.execute(
        "{ me { ...F } a: me { ...F } } fragment F on User { x: id y: name }"
    )
    assert "errors" not in five, five
    six = "{ me { ...F } a: me { ...F } b: me { id } } fragment F on User { x: id y: name }"
    error = _only_error(await gateway.execute(six))
    assert error["message"] == "The operation uses 6 aliases; the limit is 5."
    assert error["extensions"]["limit"] == "maxAliases"
    assert _fetches(subgraphs) == 1  # only the accepted operation was fetched


async def test_many_aliases_are_refused_before_validation_or_any_fetch(
    supergraph: str, subgraphs: dict[str, RecordingSubgraph]
) -> None:
    gateway = _gateway(supergraph, subgraphs)  # the defaults
    query = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(600)) + " }"
    response = await gateway.execute(query)
    assert [e["extensions"] for e in response["errors"]] == [
        {"code": "OPERATION_LIMIT", "limit": "maxAliases", "maximum": 30, "actual": 600},
        {"code": "OPERATION_LIMIT", "limit": "maxRootFields", "maximum": 20, "actual": 600},
    ]
    # the audit's 3000 aliases: more tokens than the parser reads
    query = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(3000)) + " }"
    error = _only_error(await gateway.execute(query))
    assert error["extensions"]["limit"] == "maxTokens"
    assert _fetches(subgraphs) == 0


async def test_root_fields_are_counted_through_fragments(
    supergraph: str, subgraphs: dict[str, RecordingSubgraph]
) -> None:
    gateway = _gateway(supergraph, subgraphs, OperationLimits(max_root_fields=3))
    assert "errors" not in await gateway.execute("{ me { id } ...Q } fragment Q on Query { "
                                                 "users { id } __typename }")
    error = _only_error(await gateway.execute(
        "{ me { id } ...Q ... on Query { warehouseName } } fragment Q on Query { "
        "users { id } __typename }"
    ))
    assert error["message"] == "The operation has 4 root fields; the limit is 3."


async def test_token_limit_stops_the_parser(
    supergraph: str, subgraphs: dict[str, RecordingSubgraph]
) -> None:
    gateway = _gateway(supergraph, subgraphs, OperationLimits(max_tokens=20))
    assert "errors" not in await gateway.execute("{ me { id name username } }")
    # far more than the limit, and not even valid GraphQL after it: the parser stops first
    error = _only_error(await gateway.execute("{ me { " + "id " * 100_000 + "} } }}} oops"))
    assert error["message"] == "The document has more than 20 tokens; the limit is 20."
    assert error["extensions"] == {"code": "OPERATION_LIMIT", "limit": "maxTokens", "maximum": 20}
    # comments are not tokens
    commented = "# a comment\n" * 50 + "{ me { id } }"
    assert "errors" not in await gateway.execute(commented)


async def test_a_document_nested_beyond_the_parser_is_a_request_error(
    supergraph: str, subgraphs: dict[str, RecordingSubgraph]
) -> None:
    gateway = _gateway(supergraph, subgraphs, OperationLimits.off())
    nested = "{ me " + "{ reviews " * 5000 + "}" * 5001 + " }"
    error = _only_error(await gateway.execute(nested))
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert "nested too deeply" in error["message"]
    assert _fetches(subgraphs) == 0


async def test_zero_switches_every_limit_off(
    supergraph: str, subgraphs: dict[str, RecordingSubgraph]
) -> None:
    gateway = _gateway(supergraph, subgraphs, OperationLimits.off())
    many = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(50)) + " }"
    response = await gateway.execute(many)
    assert "errors" not in response and len(response["data"]) == 50
    response = await gateway.execute(_deep(10))
    assert "errors" not in response


async def test_the_verdict_is_cached_with_the_document(
    supergraph: str, subgraphs: dict[str, RecordingSubgraph]
) -> None:
    gateway = _gateway(supergraph, subgraphs, OperationLimits(max_depth=3))
    query = _deep(2)
    first = await gateway.execute(query)
    cached = gateway._documents[query]
    assert isinstance(cached, list) and cached[0]["extensions"]["code"] == "OPERATION_LIMIT"
    assert await gateway.execute(query) == first
    assert gateway._documents[query] is cached  # not measured again


def test_default_limits_admit_the_demo_queries() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text("utf-8")
    queries = [DEFAULT_QUERY, *re.findall(r"```graphql\n(.*?)```", readme, re.DOTALL)]
    assert len(queries) > 1
    for query in queries:
        assert OperationLimits().check(parse(query)) == [], query


async def test_default_limits_admit_the_introspection_query_and_the_benchmark_shape(
    supergraph: str, subgraphs: dict[str, RecordingSubgraph]
) -> None:
    gateway = _gateway(supergraph, subgraphs)
    full = get_introspection_query(
        descriptions=True, specified_by_url=True, directive_is_repeatable=True,
        schema_description=True, input_value_deprecation=True,
    )
    response = await gateway.execute(full)
    assert "errors" not in response and response["data"]["__schema"]["types"]
    bench = """
        fragment User on User { id username }
        fragment Review on Review { id body }
        fragment Product on Product { inStock name price shippingEstimate upc weight }
        query TestQuery {
          users { ...User reviews { ...Review product { ...Product reviews { ...Review
            author { ...User reviews { ...Review product { ...Product } } } } } } }
          topProducts { ...Product reviews { ...Review author { ...User reviews { ...Review
            product { ...Product } } } } }
        }
    """
    response = await gateway.execute(bench)
    assert "errors" not in response, response["errors"][:1]


def test_limits_from_settings_and_bad_values() -> None:
    settings = Settings(max_depth=7, max_aliases=0, max_root_fields=3, max_tokens=99)
    assert OperationLimits.from_settings(settings) == OperationLimits(7, 0, 3, 99)
    assert OperationLimits() == OperationLimits.from_settings(Settings())
    with pytest.raises(ConfigurationError, match="PEK_MAX_DEPTH=-1"):
        OperationLimits.from_settings(Settings(max_depth=-1))
    with pytest.raises(ConfigurationError, match="PEK_MAX_ROOT_FIELDS=-5"):
        OperationLimits.from_settings(Settings.from_env({"PEK_MAX_ROOT_FIELDS": "-5"}))


# -- field suggestions ---------------------------------------------------------------------------

SUGGESTING = [
    ("{ me { nam } }", "Cannot query field 'nam' on type 'User'."),
    ('{ user(idd: "1") { id } }', "Unknown argument 'idd' on field 'Query.user'."),
    ("query($x: Strin) { me { id } }", "Unknown type 'Strin'."),
]


@pytest.mark.parametrize(("query", "without"), SUGGESTING)
async def test_field_suggestions_can_be_switched_off(
    supergraph: str, subgraphs: dict[str, RecordingSubgraph], query: str, without: str
) -> None:
    on = _gateway(supergraph, subgraphs)
    off = _gateway(supergraph, subgraphs, field_suggestions=False)
    shown = [e["message"] for e in (await on.execute(query))["errors"]]
    assert any(m.startswith(without) and "Did you mean" in m for m in shown), shown
    hidden = [e["message"] for e in (await off.execute(query))["errors"]]
    assert without in hidden
    assert not any("Did you mean" in m for m in hidden), hidden


def test_strip_suggestions() -> None:
    assert strip_suggestions("Cannot query field 'usr' on type 'Query'. Did you mean 'user'?") \
        == "Cannot query field 'usr' on type 'Query'."
    assert strip_suggestions(
        "Unknown argument 'x'. Did you mean 'a', 'b', or 'c'?"
    ) == "Unknown argument 'x'."
    assert strip_suggestions("No suggestion here.") == "No suggestion here."


def test_field_suggestions_setting() -> None:
    assert field_suggestions_enabled(Settings()) is True  # auto, introspection on
    assert field_suggestions_enabled(Settings(introspection=False)) is False
    assert field_suggestions_enabled(Settings(introspection=False, field_suggestions="true"))
    assert not field_suggestions_enabled(Settings(field_suggestions="false"))
    with pytest.raises(ConfigurationError, match="PEK_FIELD_SUGGESTIONS='maybe'"):
        field_suggestions_enabled(Settings(field_suggestions="maybe"))
