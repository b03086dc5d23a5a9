"""Federation features end to end: our composition, our router, small data-backed subgraphs.

Each test builds the subgraphs its feature needs (see :mod:`data_subgraphs`) and checks the
client's response (and, where it matters, what the subgraphs were asked).
"""

from __future__ import annotations

from typing import Any

from data_subgraphs import DataSubgraph, gateway_over

USERS = {"1": {"id": "1", "name": "Ada"}, "2": {"id": "2", "name": "Alan"}}


def users_and_reviews() -> tuple[DataSubgraph, DataSubgraph]:
    users = DataSubgraph(
        "users",
        """
        type Query { me: User users: [User!]! }
        type User @key(fields: "id") { id: ID! name: String! }
        """,
        {"me": USERS["1"], "users": list(USERS.values())},
        {"User": lambda rep: USERS.get(rep["id"])},
    )
    reviews = DataSubgraph(
        "reviews",
        """
        type Query { topReview: Review }
        type Review { body: String! author: User! }
        type User @key(fields: "id") { id: ID! reviews: [Review!]! }
        """,
        {"topReview": {"body": "great", "author": {"id": "2"}}},
        {"User": lambda rep: {"id": rep["id"], "reviews": [{"body": f"by {rep['id']}"}]}},
    )
    return users, reviews


async def test_client_alias_equal_to_a_key_field() -> None:
    users, reviews = users_and_reviews()
    gateway = gateway_over(users, reviews)
    result = await gateway.execute("{ me { id: name reviews { id: body } } }")
    assert result == {"data": {"me": {"id": "Ada", "reviews": [{"id": "by 1"}]}}}
    # and the other way round: the client's alias names the key field of an entity call
    result = await gateway.execute("{ topReview { author { name: id id: name } } }")
    assert result == {"data": {"topReview": {"author": {"name": "2", "id": "Alan"}}}}


async def test_skip_and_include_use_variable_defaults() -> None:
    users, reviews = users_and_reviews()
    gateway = gateway_over(users, reviews)
    query = "query ($on: Boolean = true) { me { name @skip(if: $on) id @include(if: $on) } }"
    assert await gateway.execute(query) == {"data": {"me": {"id": "1"}}}
    assert await gateway.execute(query, {"on": False}) == {"data": {"me": {"name": "Ada"}}}


async def test_same_response_key_with_different_types_in_one_subgraph() -> None:
    accounts = DataSubgraph(
        "accounts",
        """
        type Query { accounts: [Account!]! }
        union Account = Person | Robot
        type Person @key(fields: "id") { id: ID! name: String }
        type Robot { id: ID serial: Int }
        """,
        {
            "accounts": [
                {"__typename": "Person", "id": "p1", "name": "Ada"},
                {"__typename": "Robot", "id": None, "serial": 7},
            ]
        },
    )
    people = DataSubgraph(
        "people",
        """
        type Query { people: [Person!]! }
        type Person @key(fields: "id") { id: ID age: Int }
        """,
        {"people": []},
        {"Person": lambda rep: {"id": rep["id"], "age": 36}},
    )
    gateway = gateway_over(accounts, people)
    # Person.id is ID (supergraph) but ID! in "accounts", where Robot.id is ID: under one
    # response key the subgraph would reject the query, so the router aliases one of them
    query = "{ accounts { ... on Person { id age } ... on Robot { id serial } } }"
    assert await gateway.execute(query) == {
        "data": {"accounts": [{"id": "p1", "age": 36}, {"id": None, "serial": 7}]}
    }
    assert "id__pek" in accounts.requests[0].query


PRODUCTS = {"p1": {"upc": "p1", "weight": 2}, "p2": {"upc": "p2", "weight": 5}}
PRICES = {"USD": 1, "EUR": 2}


def shipping_subgraphs() -> tuple[DataSubgraph, DataSubgraph]:
    catalog = DataSubgraph(
        "catalog",
        """
        type Query { products: [Product!]! }
        type Product @key(fields: "upc") {
          upc: String!
          weight: Int! @shareable
          price(currency: String!): Int!
        }
        """,
        {
            "products": [
                dict(p, price=lambda _info, currency: PRICES[currency] * 100)
                for p in PRODUCTS.values()
            ]
        },
        {
            "Product": lambda rep: dict(
                PRODUCTS[rep["upc"]], price=lambda _info, currency: PRICES[currency] * 100
            )
        },
    )
    shipping = DataSubgraph(
        "shipping",
        """
        type Query { shippingZones: [String!]! }
        type Product @key(fields: "upc") {
          upc: String!
          weight: Int! @external
          price(currency: String!): Int! @external
          estimate: Int! @requires(fields: "price(currency: \\"USD\\") weight")
          estimateEur: Int! @requires(fields: "price(currency: \\"EUR\\")")
          label: String! @requires(fields: "weight")
        }
        """,
        {"shippingZones": []},
        {
            "Product": lambda rep: {
                "upc": rep["upc"],
                "estimate": rep.get("price", 0) * rep.get("weight", 0),
                "estimateEur": rep.get("price", 0),
                "label": f"{rep.get('weight')} kg",
            }
        },
    )
    return catalog, shipping


async def test_requires_with_arguments_that_conflict() -> None:
    catalog, shipping = shipping_subgraphs()
    gateway = gateway_over(catalog, shipping)
    result = await gateway.execute(
        '{ products { upc price(currency: "EUR") estimate estimateEur } }'
    )
    assert result == {
        "data": {
            "products": [
                {"upc": "p1", "price": 200, "estimate": 200, "estimateEur": 200},
                {"upc": "p2", "price": 200, "estimate": 500, "estimateEur": 200},
            ]
        }
    }
    # one representation cannot carry price(USD) and price(EUR): two _entities fields (run at
    # the same stage, so batched into one request with one representations variable each)
    assert sum(r.query.count("_entities(") for r in shipping.requests) == 2
    assert len([r for r in shipping.requests if "_entities" in r.query]) == 1


async def test_requires_served_by_the_subgraph_of_the_current_fetch() -> None:
    catalog, shipping = shipping_subgraphs()
    zones = DataSubgraph(
        "zones",
        """
        type Query { cheapest: Product }
        type Product @key(fields: "upc") { upc: String! }
        """,
        {"cheapest": {"upc": "p2"}},
    )
    gateway = gateway_over(catalog, shipping, zones)
    # label lives in shipping, needs weight (external there) from catalog first
    result = await gateway.execute("{ cheapest { label } }")
    assert result == {"data": {"cheapest": {"label": "5 kg"}}}


async def test_inaccessible_enum_value_and_type_become_null() -> None:
    a = DataSubgraph(
        "a",
        """
        type Query { users: [User!]! pet: Pet }
        enum Kind { REGULAR HIDDEN @inaccessible }
        type User { id: ID! kind: Kind }
        union Pet = Cat | Ghost
        type Cat { name: String }
        type Ghost @inaccessible { name: String }
        """,
        {
            "users": [{"id": "1", "kind": "REGULAR"}, {"id": "2", "kind": "HIDDEN"}],
            "pet": {"__typename": "Ghost", "name": "boo"},
        },
    )
    gateway = gateway_over(a)
    result = await gateway.execute("{ users { id kind } pet { ... on Cat { name } } }")
    assert result["data"] == {
        "users": [{"id": "1", "kind": "REGULAR"}, {"id": "2", "kind": None}],
        "pet": None,
    }
    assert result["errors"][0]["path"] == ["users", 1, "kind"]


async def test_shared_root_field_fetched_from_several_subgraphs() -> None:
    shapes = {
        "names": ("name", "Name", "title: String!", {"title": "Chair"}),
        "prices": ("price", "Price", "amount: Int!", {"amount": 10}),
    }
    subgraphs = [
        DataSubgraph(
            graph,
            f"""
            type Query {{ product: Product! @shareable }}
            type Product @shareable {{ id: ID! {field}: {type_}! }}
            type {type_} {{ {fields} }}
            """,
            {"product": {"id": "1", field: value}},
        )
        for graph, (field, type_, fields, value) in shapes.items()
    ]
    gateway = gateway_over(*subgraphs)
    result = await gateway.execute("{ product { id name { title } price { amount } } }")
    assert result == {
        "data": {"product": {"id": "1", "name": {"title": "Chair"}, "price": {"amount": 10}}}
    }
    assert all(len(s.requests) == 1 for s in subgraphs)


async def test_value_type_below_an_entity_completed_from_another_subgraph() -> None:
    # Category has no key in "details": its fields come through Product, an entity there
    products = DataSubgraph(
        "products",
        """
        type Query { products: [Product!]! }
        type Product @key(fields: "id") { id: ID! category: Category @shareable }
        type Category @shareable { id: ID! }
        """,
        {"products": [{"id": "p1", "category": {"id": "c1"}}]},
    )
    details = DataSubgraph(
        "details",
        """
        type Query { nothing: Int }
        type Product @key(fields: "id") { id: ID! category: Category @shareable }
        type Category @shareable { size: Int }
        """,
        {},
        {"Product": lambda rep: {"id": rep["id"], "category": {"size": 3}}},
    )
    gateway = gateway_over(products, details)
    result = await gateway.execute("{ products { id category { id size } } }")
    assert result == {"data": {"products": [{"id": "p1", "category": {"id": "c1", "size": 3}}]}}


async def test_key_gathered_from_two_subgraphs() -> None:
    # "prices" keys Product by "id sku": sku lives in "skus", id in "products"
    products = DataSubgraph(
        "products",
        """
        type Query { products: [Product!]! }
        type Product @key(fields: "id") { id: ID! }
        """,
        {"products": [{"id": "1"}, {"id": "2"}]},
    )
    skus = DataSubgraph(
        "skus",
        """
        type Query { skuCount: Int }
        type Product @key(fields: "id") { id: ID! sku: String! @shareable }
        """,
        {},
        {"Product": lambda rep: {"id": rep["id"], "sku": f"sku-{rep['id']}"}},
    )
    prices = DataSubgraph(
        "prices",
        """
        type Query { currency: String }
        type Product @key(fields: "id sku") { id: ID! sku: String! @shareable price: Int! }
        """,
        {},
        {"Product": lambda rep: {**rep, "price": 10 * int(rep["id"]) + len(rep["sku"])}},
    )
    gateway = gateway_over(products, skus, prices)
    result = await gateway.execute("{ products { id price } }")
    assert result == {"data": {"products": [{"id": "1", "price": 15}, {"id": "2", "price": 25}]}}
    representations = prices.requests[0].variables["representations"]
    assert representations == [
        {"__typename": "Product", "id": "1", "sku": "sku-1"},
        {"__typename": "Product", "id": "2", "sku": "sku-2"},
    ]


ACCOUNTS: dict[str, dict[str, Any]] = {
    "u1": {"__typename": "Admin", "id": "u1", "isMain": True},
    "u2": {"__typename": "Regular", "id": "u2", "isMain": False},
}


async def test_interface_object_answers_get_their_concrete_type() -> None:
    owner = DataSubgraph(
        "owner",
        """
        type Query { firstAccount: Account }
        interface Account @key(fields: "id") { id: ID! }
        type Admin implements Account @key(fields: "id") { id: ID! isMain: Boolean! }
        type Regular implements Account @key(fields: "id") { id: ID! isMain: Boolean! }
        """,
        {"firstAccount": ACCOUNTS["u1"]},
        {
            "Account": lambda rep: ACCOUNTS[rep["id"]],
            "Admin": lambda rep: ACCOUNTS[rep["id"]],
            "Regular": lambda rep: ACCOUNTS[rep["id"]],
        },
    )
    names = DataSubgraph(
        "names",
        """
        type Query { accounts: [Account!]! }
        type Account @key(fields: "id") @interfaceObject { id: ID! name: String! }
        """,
        {"accounts": [{"__typename": "Account", "id": k, "name": k.upper()} for k in ACCOUNTS]},
        {"Account": lambda rep: {"id": rep["id"], "name": rep["id"].upper()}},
    )
    gateway = gateway_over(owner, names)
    # the @interfaceObject subgraph only knows "Account": the router asks the owner
    result = await gateway.execute("{ accounts { __typename id name ... on Admin { isMain } } }")
    assert result == {
        "data": {
            "accounts": [
                {"__typename": "Admin", "id": "u1", "name": "U1", "isMain": True},
                {"__typename": "Regular", "id": "u2", "name": "U2"},
            ]
        }
    }
    # even when the client does not ask for __typename (shaping an interface needs it)
    result = await gateway.execute("{ accounts { id } }")
    assert result == {"data": {"accounts": [{"id": "u1"}, {"id": "u2"}]}}
    # and the other way: from a concrete type to the @interfaceObject's field
    result = await gateway.execute("{ firstAccount { id name } }")
    assert result == {"data": {"firstAccount": {"id": "u1", "name": "U1"}}}


async def test_subgraph_field_with_a_narrower_type_than_the_supergraph() -> None:
    a = DataSubgraph(
        "a",
        """
        type Query { pick: Book @shareable song: Song }
        type Book @key(fields: "id") { id: ID! title: String! @shareable }
        type Song @key(fields: "id") { id: ID! title: String! }
        """,
        {"pick": {"id": "b1", "title": "Dune"}, "song": {"id": "s1", "title": "Hey"}},
    )
    b = DataSubgraph(
        "b",
        """
        type Query { pick: Media @shareable }
        union Media = Book | Movie
        type Book @key(fields: "id") { id: ID! title: String! @shareable }
        type Movie @key(fields: "id") { id: ID! }
        """,
        {"pick": {"__typename": "Book", "id": "b1", "title": "Dune"}},
    )
    gateway = gateway_over(a, b)
    query = "{ pick { ... on Book { title } ... on Movie { id } } }"
    supergraph_field = gateway.supergraph.field("Query", "pick")
    assert supergraph_field is not None and supergraph_field.type_name_in("a") == "Book"
    # in "a" pick returns Book itself: no fragment on Movie may be sent there
    for _ in range(2):
        assert await gateway.execute(query) == {"data": {"pick": {"title": "Dune"}}}
    assert all("Movie" not in r.query for r in a.requests)


async def test_provided_fields_make_a_key_available() -> None:
    shelf = DataSubgraph(
        "shelf",
        """
        type Query { shelf: Shelf }
        type Shelf { books: [Book!]! @provides(fields: "isbn") }
        type Book @key(fields: "isbn") { isbn: ID! @external }
        """,
        {"shelf": {"books": [{"isbn": "i1"}]}},
    )
    books = DataSubgraph(
        "books",
        """
        type Query { book(isbn: ID!): Book }
        type Book @key(fields: "isbn") { isbn: ID! @shareable title: String! }
        """,
        {"book": None},
        {"Book": lambda rep: {"isbn": rep["isbn"], "title": f"T-{rep['isbn']}"}},
    )
    gateway = gateway_over(shelf, books)
    result = await gateway.execute("{ shelf { books { title } } }")
    assert result == {"data": {"shelf": {"books": [{"title": "T-i1"}]}}}
    assert books.requests[0].variables["representations"] == [{"__typename": "Book", "isbn": "i1"}]


async def test_union_below_a_shared_path_selects_only_common_members() -> None:
    def side(name: str, only: str) -> DataSubgraph:
        actions = [{"__typename": "Common", "label": "c"}, {"__typename": only, "x": name}]
        return DataSubgraph(
            name,
            f"""
            type Query {{ root{name.upper()}: Container }}
            type Container @key(fields: "id") {{
              id: ID!
              wrapper: Wrapper @shareable
              {name}Wrapper: Wrapper
            }}
            type Wrapper @shareable {{ actions: [Action!]! }}
            union Action = Common | {only}
            type Common @shareable {{ label: String }}
            type {only} {{ x: String }}
            """,
            {f"root{name.upper()}": {"id": "c1", "wrapper": {"actions": actions}}},
            {"Container": lambda rep: {"id": rep["id"], f"{name}Wrapper": {"actions": actions}}},
        )

    gateway = gateway_over(side("a", "OnlyA"), side("b", "OnlyB"))
    selection = (
        "actions { __typename ... on Common { label } ... on OnlyA { x } ... on OnlyB { x } }"
    )
    # wrapper could come from either subgraph: only Common is selected, OnlyA stays a bare type
    result = await gateway.execute(f"{{ rootA {{ wrapper {{ {selection} }} }} }}")
    assert result == {
        "data": {
            "rootA": {
                "wrapper": {
                    "actions": [
                        {"__typename": "Common", "label": "c"},
                        {"__typename": "OnlyA", "x": None},
                    ]
                }
            }
        }
    }
    # bWrapper only exists in "b": all of b's members are selected there
    result = await gateway.execute(f"{{ rootA {{ bWrapper {{ {selection} }} }} }}")
    assert result == {
        "data": {
            "rootA": {
                "bWrapper": {
                    "actions": [
                        {"__typename": "Common", "label": "c"},
                        {"__typename": "OnlyB", "x": "b"},
                    ]
                }
            }
        }
    }


async def test_introspection_inside_root_fragments() -> None:
    users, reviews = users_and_reviews()
    gateway = gateway_over(users, reviews)
    query = """
        query { ...Meta ... on Query { t: __type(name: "User") { name } } me { name } }
        fragment Meta on Query { __schema { queryType { name } } }
    """
    assert await gateway.execute(query) == {
        "data": {
            "__schema": {"queryType": {"name": "Query"}},
            "t": {"name": "User"},
            "me": {"name": "Ada"},
        }
    }


async def test_subgraph_null_propagation_is_not_reported_twice() -> None:
    """A subgraph whose non-null root field fails answers ``data: null``; the sibling root
    fields of that fetch are null because of that error, so the router adds no error of its
    own for them (as Apollo Gateway does)."""

    def fail(*_: Any, **__: Any) -> Any:
        raise ValueError("count must not be negative")

    users = DataSubgraph(
        "users",
        """
        type Query { names: [String!]! count: Int! }
        type User @key(fields: "id") { id: ID! }
        """,
        {"names": ["Ada"], "count": fail},
        {"User": lambda rep: rep},
    )
    gateway = gateway_over(users)
    result = await gateway.execute("{ names count }")
    assert result["data"] is None
    assert [e["message"] for e in result["errors"]] == ["count must not be negative"]
    assert result["errors"][0]["path"] == ["count"]
    # A non-null field that is null with no error to explain it still gets one.
    users_null = DataSubgraph(
        "users",
        "type Query { count: Int! other: Int }\ntype User @key(fields: \"id\") { id: ID! }",
        {"count": None, "other": 1},
        {"User": lambda rep: rep},
    )
    result = await gateway_over(users_null).execute("{ other count }")
    assert result["data"] is None
    assert "Cannot return null for non-nullable field Query.count." in str(result["errors"])
