"""The planner alone: plan shapes for known operations, and supergraph features."""

from __future__ import annotations

from graphql import parse, print_schema

from pek.router.plan_format import format_plan
from pek.router.planner import (
    FetchNode,
    FlattenNode,
    PlanCache,
    QueryPlan,
    QueryPlanner,
    SequenceNode,
)
from pek.router.supergraph import Supergraph


def plan(supergraph: Supergraph, query: str, variables: dict | None = None) -> QueryPlan:
    document = parse(query)
    operation = document.definitions[0]
    return QueryPlanner(supergraph).plan(document, operation, variables)  # type: ignore[arg-type]


def test_plan_shape_for_a_known_query(supergraph: str) -> None:
    sg = Supergraph(supergraph)
    result = plan(sg, "query Top { topProducts { name shippingEstimate } }")
    assert isinstance(result.node, SequenceNode)
    root, flatten = result.node.nodes
    assert isinstance(root, FetchNode) and root.subgraph == "products"
    # planner-added key and @requires fields travel under internal aliases
    assert root.operation == (
        "query Top__products__0"
        "{topProducts{name __typename _pek_upc:upc _pek_price:price _pek_weight:weight}}"
    )
    assert isinstance(flatten, FlattenNode) and flatten.path == ("topProducts", "@")
    assert flatten.node.subgraph == "inventory"
    assert flatten.node.operation == (
        "query Top__inventory__1($representations:[_Any!]!)"
        "{_entities(representations:$representations){...on Product{shippingEstimate}}}"
    )
    text = format_plan(result)
    assert text.startswith('QueryPlan {\n  Sequence {\n    Fetch(service: "products")')
    assert 'Flatten(path: "topProducts.@")' in text
    assert "... on Product {\n" in text and "price\n" in text


def test_parallel_root_fetches_and_nested_flatten(supergraph: str) -> None:
    sg = Supergraph(supergraph)
    result = plan(sg, "{ me { reviews { author { name } } } warehouseName }")
    data = result.to_json()["node"]
    assert data["kind"] == "Parallel"
    first, second = data["nodes"]
    assert first["kind"] == "Sequence" and second["serviceName"] == "inventory"
    paths = []

    def walk(node: dict) -> None:
        if node["kind"] == "Flatten":
            paths.append(("/".join(node["path"]), node["node"]["serviceName"]))
        for child in node.get("nodes", []):
            walk(child)
        if "node" in node and node["kind"] == "Flatten":
            walk(node["node"])

    walk(data)
    assert paths == [("me", "reviews"), ("me/reviews/@/author", "accounts")]


def test_skip_include_are_evaluated_at_planning(supergraph: str) -> None:
    sg = Supergraph(supergraph)
    query = "query ($r: Boolean!) { me { name reviews @include(if: $r) { id } } }"
    assert isinstance(plan(sg, query, {"r": False}).node, FetchNode)
    assert isinstance(plan(sg, query, {"r": True}).node, SequenceNode)


def test_plan_cache_is_bounded_lru() -> None:
    cache = PlanCache(2)
    plans = [object() for _ in range(3)]
    for i, p in enumerate(plans):
        cache.put(i, p)  # type: ignore[arg-type]
    assert len(cache) == 2 and cache.get(0) is None and cache.get(2) is plans[2]


HAND_WRITTEN = """
schema
  @link(url: "https://specs.apollo.dev/link/v1.0")
  @link(url: "https://specs.apollo.dev/join/v0.5", as: "j", for: EXECUTION)
  @link(url: "https://specs.apollo.dev/inaccessible/v0.2", as: "hidden", for: SECURITY)
{ query: Query }

directive @j__field(graph: j__Graph, requires: j__FieldSet, provides: j__FieldSet, type: String,
  external: Boolean, override: String, usedOverridden: Boolean, overrideLabel: String,
  contextArguments: [j__ContextArgument!]) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION
directive @j__graph(name: String!, url: String!) on ENUM_VALUE
directive @j__implements(graph: j__Graph!, interface: String!) repeatable on OBJECT | INTERFACE
directive @j__type(graph: j__Graph!, key: j__FieldSet, extension: Boolean! = false,
  resolvable: Boolean! = true, isInterfaceObject: Boolean! = false) repeatable
  on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR
directive @link(url: String, as: String, for: link__Purpose, import: [link__Import])
  repeatable on SCHEMA
directive @hidden on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR
  | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION

input j__ContextArgument { name: String! type: String! context: String! selection: j__FieldValue! }
scalar j__FieldSet
scalar j__FieldValue
enum j__Graph {
  OLD @j__graph(name: "old", url: "http://old")
  NEW @j__graph(name: "new", url: "http://new")
  IO @j__graph(name: "io", url: "http://io")
}
scalar link__Import
enum link__Purpose { SECURITY EXECUTION }

type Query @j__type(graph: OLD) @j__type(graph: NEW) @j__type(graph: IO) {
  thing(id: ID!): Thing @j__field(graph: OLD)
  secret: String @j__field(graph: OLD) @hidden
  node: Node @j__field(graph: OLD)
  nodes: [Node] @j__field(graph: IO)
}

type Thing @j__type(graph: OLD, key: "id") @j__type(graph: NEW, key: "id") {
  id: ID!
  label: String @j__field(graph: OLD, usedOverridden: true) @j__field(graph: NEW, override: "old")
  internal: Int @j__field(graph: OLD) @hidden
}

interface Node @j__type(graph: OLD, key: "id")
  @j__type(graph: IO, key: "id", isInterfaceObject: true) {
  id: ID!
  extra: String @j__field(graph: IO)
}

type Widget implements Node @j__implements(graph: OLD, interface: "Node")
  @j__type(graph: OLD, key: "id") {
  id: ID!
  size: Int @j__field(graph: OLD)
  extra: String @j__field
}

type Hidden @j__type(graph: OLD) @hidden { x: Int }
"""


def test_renamed_join_and_inaccessible_in_the_api_schema() -> None:
    sg = Supergraph(HAND_WRITTEN)
    assert sg.subgraph_urls() == {"old": "http://old", "new": "http://new", "io": "http://io"}
    printed = print_schema(sg.api_schema)
    assert "secret" not in printed and "internal" not in printed and "Hidden" not in printed
    assert "j__" not in printed and "link" not in printed and "hidden" not in printed
    assert "label: String" in printed


def test_override_routes_to_the_new_subgraph() -> None:
    sg = Supergraph(HAND_WRITTEN)
    result = plan(sg, '{ thing(id: "1") { label } }')
    assert isinstance(result.node, SequenceNode)
    root, flatten = result.node.nodes
    assert isinstance(root, FetchNode) and root.subgraph == "old"
    assert "label" not in root.operation
    assert isinstance(flatten, FlattenNode) and flatten.node.subgraph == "new"
    assert "...on Thing{label}" in flatten.node.operation


def test_interface_object_hops_with_the_interface_name() -> None:
    sg = Supergraph(HAND_WRITTEN)
    # from a concrete type in "old" to the @interfaceObject subgraph "io"
    result = plan(sg, "{ node { id ... on Widget { size extra } } }")
    assert isinstance(result.node, SequenceNode)
    flatten = result.node.nodes[1]
    assert isinstance(flatten, FlattenNode) and flatten.node.subgraph == "io"
    assert "...on Node{extra}" in flatten.node.operation
    assert flatten.node.requires is not None
    assert [f.type_condition for f in flatten.node.requires] == ["Node"]
    # from "io" (which cannot know concrete types) to "old" for __typename and fragments
    result = plan(sg, "{ nodes { id extra ... on Widget { size } } }")
    assert isinstance(result.node, SequenceNode)
    root, flatten = result.node.nodes
    assert isinstance(root, FetchNode) and root.subgraph == "io"
    assert isinstance(flatten, FlattenNode) and flatten.node.subgraph == "old"
    assert "...on Widget{size}" in flatten.node.operation
    assert "__typename" in flatten.node.operation
