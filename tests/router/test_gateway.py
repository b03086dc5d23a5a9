"""End-to-end behaviour of the Gateway over real strawberry subgraphs in-process."""

from __future__ import annotations

from typing import Any

from subgraphs import MUTATION_LOG, RecordingSubgraph

from pek.router.gateway import Gateway
from pek.router.transport import InProcessTransport

Subgraphs = dict[str, RecordingSubgraph]


def entity_calls(sub: RecordingSubgraph) -> int:
    return sum("_entities" in r.query for r in sub.requests)


async def test_root_fields_from_two_subgraphs(gateway: Gateway, subgraphs: Subgraphs) -> None:
    result = await gateway.execute("{ me { name } warehouseName }")
    assert result == {"data": {"me": {"name": "Ada Lovelace"}, "warehouseName": "Main"}}
    assert len(subgraphs["accounts"].requests) == 1
    assert len(subgraphs["inventory"].requests) == 1


async def test_entity_hops_both_ways_one_batch_per_hop(
    gateway: Gateway, subgraphs: Subgraphs
) -> None:
    # accounts -> reviews -> accounts (author.name) and -> products (product.name);
    # product.reviews stays in reviews (Product.reviews is resolvable there: no extra hop)
    query = "{ users { id reviews { body author { name } product { name reviews { id } } } } }"
    result = await gateway.execute(query)
    assert result["data"]["users"][3]["reviews"][0]["author"] is None  # user 4's name fails
    for sub in subgraphs.values():
        sub.requests.clear()
    result = await gateway.execute(
        '{ user(id: "1") { id reviews { body author { name } product { name reviews { id } } } } }'
    )
    assert "errors" not in result
    assert result["data"]["user"] == {
        "id": "1",
        "reviews": [
            {
                "body": "Love it",
                "author": {"name": "Ada Lovelace"},
                "product": {"name": "Table", "reviews": [{"id": "r1"}]},
            },
            {
                "body": "Comfy",
                "author": {"name": "Ada Lovelace"},
                "product": {"name": "Couch", "reviews": [{"id": "r2"}, {"id": "r3"}]},
            },
        ],
    }
    # per execution: one _entities call per hop, whatever the number of objects
    assert entity_calls(subgraphs["reviews"]) == 1
    assert entity_calls(subgraphs["accounts"]) == 1
    assert entity_calls(subgraphs["products"]) == 1
    last_products = subgraphs["products"].requests[-1].variables
    assert last_products is not None
    assert [r["upc"] for r in last_products["representations"]] == ["p1", "p2"]
    last_accounts = subgraphs["accounts"].requests[-1].variables
    assert last_accounts is not None
    # the same author twice is asked for once: representations are deduplicated
    assert last_accounts["representations"] == [{"__typename": "User", "id": "1"}]


async def test_lists_of_lists(gateway: Gateway, subgraphs: Subgraphs) -> None:
    result = await gateway.execute("{ matrix { upc inStock } }")
    assert result["data"]["matrix"] == [
        [{"upc": "p1", "inStock": True}, {"upc": "p2", "inStock": False}],
        [{"upc": "p3", "inStock": True}, None],
        [],
    ]
    assert entity_calls(subgraphs["inventory"]) == 1


async def test_aliases_on_both_sides_of_a_hop(gateway: Gateway) -> None:
    query = """{ first: user(id: "1") { who: name rs: reviews { text: body } }
                 second: user(id: "2") { name reviews { body } } }"""
    result = await gateway.execute(query)
    assert result == {
        "data": {
            "first": {"who": "Ada Lovelace", "rs": [{"text": "Love it"}, {"text": "Comfy"}]},
            "second": {"name": "Alan Turing", "reviews": [{"body": "Too heavy"}]},
        }
    }


async def test_named_and_inline_fragments_with_field_order(gateway: Gateway) -> None:
    query = """
      query { topProducts(first: 1) { ...Stock ... on Product { name } upc } }
      fragment Stock on Product { inStock reviews { ... on Review { body } } }
    """
    result = await gateway.execute(query)
    product = result["data"]["topProducts"][0]
    assert list(product) == ["inStock", "reviews", "name", "upc"]
    assert product == {
        "inStock": True,
        "reviews": [{"body": "Love it"}],
        "name": "Table",
        "upc": "p1",
    }


async def test_variables_forwarded_only_where_used(gateway: Gateway, subgraphs: Subgraphs) -> None:
    query = """query Q($id: ID!, $n: Int!) { user(id: $id) { name reviews { id } }
               topProducts(first: $n) { upc } }"""
    result = await gateway.execute(query, {"id": "2", "n": 2})
    assert result["data"]["user"] == {"name": "Alan Turing", "reviews": [{"id": "r2"}]}
    assert [p["upc"] for p in result["data"]["topProducts"]] == ["p1", "p2"]
    (accounts,) = subgraphs["accounts"].requests
    assert accounts.variables == {"id": "2"}
    assert "$id: ID!" in accounts.query and "$n" not in accounts.query
    (products,) = subgraphs["products"].requests
    assert products.variables == {"n": 2}


async def test_skip_and_include(gateway: Gateway, subgraphs: Subgraphs) -> None:
    query = """query ($withReviews: Boolean!, $skipName: Boolean!) {
      me { name @skip(if: $skipName) reviews @include(if: $withReviews) { id } } }"""
    on = await gateway.execute(query, {"withReviews": True, "skipName": True})
    assert on == {"data": {"me": {"reviews": [{"id": "r1"}, {"id": "r3"}]}}}
    assert len(subgraphs["reviews"].requests) == 1
    off = await gateway.execute(query, {"withReviews": False, "skipName": False})
    assert off == {"data": {"me": {"name": "Ada Lovelace"}}}
    assert len(subgraphs["reviews"].requests) == 1  # the second plan has no reviews fetch


async def test_requires_sends_required_fields(gateway: Gateway, subgraphs: Subgraphs) -> None:
    result = await gateway.execute("{ topProducts { upc shippingEstimate } }")
    assert result["data"]["topProducts"] == [
        {"upc": "p1", "shippingEstimate": 5},
        {"upc": "p2", "shippingEstimate": 0},
        {"upc": "p3", "shippingEstimate": 2},
    ]
    (request,) = subgraphs["inventory"].requests
    assert request.variables is not None
    assert request.variables["representations"][0] == {
        "__typename": "Product",
        "upc": "p1",
        "price": 100,
        "weight": 10,
    }


async def test_provides_avoids_a_hop(gateway: Gateway, subgraphs: Subgraphs) -> None:
    result = await gateway.execute('{ review(id: "r1") { author { username } } }')
    assert result == {"data": {"review": {"author": {"username": "ada"}}}}
    assert subgraphs["accounts"].requests == []
    result = await gateway.execute('{ review(id: "r1") { author { name } } }')
    assert result == {"data": {"review": {"author": {"name": "Ada Lovelace"}}}}
    assert entity_calls(subgraphs["accounts"]) == 1


async def test_interface_across_subgraphs(gateway: Gateway) -> None:
    query = """{ merch { __typename upc name
                 ... on Product { inStock reviews { body } } ... on Furniture { material } } }"""
    result = await gateway.execute(query)
    assert result == {
        "data": {
            "merch": [
                {
                    "__typename": "Product",
                    "upc": "p1",
                    "name": "Table",
                    "inStock": True,
                    "reviews": [{"body": "Love it"}],
                },
                {"__typename": "Furniture", "upc": "f1", "name": "Lamp", "material": "brass"},
            ]
        }
    }


async def test_union_across_subgraphs(gateway: Gateway, subgraphs: Subgraphs) -> None:
    query = """{ feed { __typename ... on Review { body author { name } }
                          ... on Product { name inStock } } }"""
    result = await gateway.execute(query)
    assert result["data"]["feed"] == [
        {"__typename": "Review", "body": "Love it", "author": {"name": "Ada Lovelace"}},
        {"__typename": "Product", "name": "Chair", "inStock": True},
        {"__typename": "Review", "body": "Too heavy", "author": {"name": "Alan Turing"}},
    ]
    assert entity_calls(subgraphs["products"]) == 1
    assert entity_calls(subgraphs["inventory"]) == 1


async def test_null_propagation_and_error_path(gateway: Gateway) -> None:
    # User 4's name (String!) fails in accounts: author (nullable) becomes null
    result = await gateway.execute('{ review(id: "r4") { body author { id name } } }')
    assert result["data"] == {"review": {"body": "Mystery", "author": None}}
    (error,) = result["errors"]
    assert error["path"] == ["review", "author", "name"]
    assert error["message"] == "name is unavailable for this user"


async def test_null_propagates_through_non_null_parents(gateway: Gateway) -> None:
    # users: [User!]! -> one null user nulls the whole list, then data (users is non-null)
    result = await gateway.execute("{ users { name } }")
    assert result["data"] is None
    assert [e["path"] for e in result["errors"]] == [["users", 3, "name"]]


async def test_subgraph_down(supergraph: str, subgraphs: Subgraphs) -> None:
    subgraphs["inventory"].down = True
    gateway = Gateway(supergraph, InProcessTransport(subgraphs), service_names=True)
    result = await gateway.execute("{ topProducts(first: 1) { name inStock } warehouseName }")
    assert "data" in result
    codes = {e["extensions"]["code"] for e in result["errors"] if "extensions" in e}
    assert "SUBGRAPH_UNAVAILABLE" in codes
    down = [
        e for e in result["errors"] if e.get("extensions", {}).get("code") == "SUBGRAPH_UNAVAILABLE"
    ]
    assert {e["extensions"]["subgraph"] for e in down} == {"inventory"}
    # inStock is Boolean! so the product is nulled; topProducts is [Product!]!, warehouseName
    # is String!: data is null but the response is still a GraphQL response
    assert result["data"] is None


async def test_subgraph_down_nullable_part(supergraph: str, subgraphs: Subgraphs) -> None:
    """Clients are not told which service failed, nor why, unless service names are shown
    (dev mode); the reason goes to the log."""
    subgraphs["accounts"].down = True
    query = '{ review(id: "r1") { body author { name } } }'
    result = await Gateway(supergraph, InProcessTransport(subgraphs)).execute(query)
    assert result["data"] == {"review": {"body": "Love it", "author": None}}
    assert result["errors"][0]["extensions"] == {"code": "SUBGRAPH_UNAVAILABLE"}
    assert "accounts" not in str(result["errors"])
    shown = await Gateway(supergraph, InProcessTransport(subgraphs),
                          service_names=True).execute(query)
    assert shown["errors"][0]["extensions"] == {
        "code": "SUBGRAPH_UNAVAILABLE",
        "subgraph": "accounts",
    }


async def test_mutations_run_in_order(gateway: Gateway, subgraphs: Subgraphs) -> None:
    before = len(MUTATION_LOG)
    query = """mutation { a: createUser(name: "Zed") { name }
                 addProduct(upc: "p7", name: "Stool") { name inStock }
                 logSize }"""
    result = await gateway.execute(query)
    assert "errors" not in result
    assert result["data"]["a"] == {"name": "Zed"}
    assert result["data"]["addProduct"] == {"name": "Stool", "inStock": True}
    # logSize ran last although it lives in the same subgraph as createUser
    assert result["data"]["logSize"] == before + 2
    assert MUTATION_LOG[before:] == ["create:Zed", "product:p7"]
    assert [r.query.startswith("mutation") for r in subgraphs["accounts"].requests] == [True, True]


async def test_introspection(gateway: Gateway, subgraphs: Subgraphs) -> None:
    result = await gateway.execute(
        '{ __typename __type(name: "User") { fields { name } } me { __typename name } }'
    )
    assert result["data"]["__typename"] == "Query"
    names = {f["name"] for f in result["data"]["__type"]["fields"]}
    assert names == {"id", "username", "name", "reviews"}
    assert result["data"]["me"] == {"__typename": "User", "name": "Ada Lovelace"}
    schema = await gateway.execute("{ __schema { types { name } } }")
    type_names = {t["name"] for t in schema["data"]["__schema"]["types"]}
    assert "Product" in type_names
    assert not any(n.startswith(("join__", "link__", "_")) for n in type_names if n[:2] != "__")
    assert "__type" not in subgraphs["accounts"].requests[-1].query.replace("__typename", "")


async def test_introspection_disabled(supergraph: str, subgraphs: Subgraphs) -> None:
    from pek.router.transport import InProcessTransport

    gw = Gateway(supergraph, InProcessTransport(subgraphs), introspection=False)
    result = await gw.execute("{ __schema { queryType { name } } }")
    assert "data" not in result
    assert result["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED"
    assert (await gw.execute("{ __typename }")) == {"data": {"__typename": "Query"}}


async def test_request_errors_have_no_data(gateway: Gateway) -> None:
    cases: list[tuple[str, Any, str | None, str]] = [
        ("{ me { nope } }", None, None, "GRAPHQL_VALIDATION_FAILED"),
        ("{ me { name ", None, None, "GRAPHQL_PARSE_FAILED"),
        ("query A { me { id } } query B { me { id } }", None, None, "GRAPHQL_VALIDATION_FAILED"),
        ("query A { me { id } }", None, "C", "GRAPHQL_VALIDATION_FAILED"),
        ("query ($id: ID!) { user(id: $id) { id } }", {}, None, "BAD_USER_INPUT"),
        ("query ($n: Int!) { topProducts(first: $n) { upc } }", {"n": "x"}, None, "BAD_USER_INPUT"),
        ("{ me { id } }", ["not", "an", "object"], None, "BAD_USER_INPUT"),
    ]
    for query, variables, name, code in cases:
        result = await gateway.execute(query, variables, name)
        assert "data" not in result, query
        assert result["errors"][0]["extensions"]["code"] == code, query


async def test_headers_forwarded_and_plan_included(gateway: Gateway, subgraphs: Subgraphs) -> None:
    result = await gateway.execute(
        "{ me { reviews { id } } }", headers={"authorization": "Bearer t"}, include_plan=True
    )
    plan = result["extensions"]["queryPlan"]
    assert plan["node"]["kind"] == "Sequence"
    assert plan["node"]["nodes"][1]["kind"] == "Flatten"
    for sub in subgraphs.values():
        for request in sub.requests:
            assert request.headers == {"authorization": "Bearer t"}


async def test_plan_cache(gateway: Gateway) -> None:
    query = "query ($a: Boolean!) { me { name @include(if: $a) } }"
    await gateway.execute(query, {"a": True})
    await gateway.execute(query, {"a": True})
    await gateway.execute(query, {"a": False})
    assert gateway.plan_cache.hits == 1
    assert len(gateway.plan_cache) == 2
