"""Unit tests: routing directives from the supergraph, operation analysis and splitting."""

from __future__ import annotations

import pytest
from graphql import parse, validate
from world import supergraph

from pek.router.realms.operations import Kind, OperationError, analyze
from pek.router.realms.routing import FanoutRouting, OwnerRouting, RealmRouting


@pytest.fixture(scope="module")
def routing() -> RealmRouting:
    return RealmRouting(supergraph())


def test_directives_are_read_from_the_supergraph(routing: RealmRouting) -> None:
    assert routing.rule("Query", "group") == OwnerRouting(("id",))
    assert routing.rule("Query", "realmStats") == OwnerRouting(("realm",))
    assert routing.rule("Mutation", "createGroup") == OwnerRouting(("input", "realm"))
    fanout = routing.rule("Query", "groups")
    assert isinstance(fanout, FanoutRouting) and fanout.order_by == ("name",)
    assert fanout.connection is not None and fanout.connection.first_default == 20
    listed = routing.rule("Query", "searchGroups")
    assert isinstance(listed, FanoutRouting) and listed.connection is None
    assert routing.rule("Query", "groupByName") is None


def test_renamed_imports_are_followed() -> None:
    sdl = supergraph().replace(
        'import: ["@realmOwner", "@realmFanout"]',
        'import: [{name: "@realmOwner", as: "@owner"}, "@realmFanout"]',
    ).replace("@realmOwner(", "@owner(").replace("directive @realmOwner", "directive @owner")
    routing = RealmRouting(sdl)
    assert routing.rule("Query", "group") == OwnerRouting(("id",))


def test_a_bad_declaration_is_reported_for_its_field_only() -> None:
    sdl = supergraph().replace('@realmFanout(orderBy: ["name"])\n  searchGroups',
                               "@realmFanout(orderBy: [\"name\"])\n  searchGroups")
    sdl = sdl.replace('searchGroups(search: String!): [Group!]! @join__field(graph: REALM) '
                      '@realmFanout(orderBy: ["name"])',
                      'searchGroups(search: String!): [Group!]! @join__field(graph: REALM) '
                      '@realmFanout(orderBy: ["nope"])')
    routing = RealmRouting(sdl)
    assert "nope" in routing.errors[("Query", "searchGroups")]
    with pytest.raises(OperationError, match="cannot order by 'nope'"):
        analyze('{ searchGroups(search: "x") { name } }', None, routing)
    assert isinstance(routing.rule("Query", "groups"), FanoutRouting)


QUERY = """
query Q__realm__1($id: ID!, $s: String, $first: Int, $unused: Int) {
  group(id: $id) { ...G }
  groups(first: $first, search: $s) { edges { cursor node { ...G } } pageInfo { endCursor } }
  groupByName(name: "x") { id }
  __typename
}
fragment G on Group { id name }
"""


def test_fields_are_classified_and_rewritten(routing: RealmRouting) -> None:
    analysis = analyze(QUERY, "Q__realm__1", routing)
    kinds = [(f.key, f.kind) for f in analysis.fields]
    assert kinds == [
        ("group", Kind.OWNER),
        ("groups", Kind.FANOUT),
        ("groupByName", Kind.UNIQUE),
        ("__typename", Kind.TYPENAME),
    ]
    groups = analysis.fields[1]
    assert groups.after_variable == "_pekrealm_after_1"
    assert groups.connection_keys is not None
    assert groups.connection_keys.edges == {"edges": frozenset({"cursor"})}
    assert groups.connection_keys.page_info == {"pageInfo": {"endCursor": "endCursor"}}


def _operation_of(text: str) -> tuple[set[str], set[str]]:
    document = parse(text)
    operation = document.definitions[0]
    variables = {v.variable.name.value for v in operation.variable_definitions or ()}  # type: ignore[attr-defined]
    fragments = {d.name.value for d in document.definitions[1:]}  # type: ignore[attr-defined]
    return variables, fragments


def test_each_subset_carries_only_what_it_uses(routing: RealmRouting) -> None:
    analysis = analyze(QUERY, "Q__realm__1", routing)
    only_owner = analysis.sub_operation([0])
    assert _operation_of(only_owner) == ({"id"}, {"G"})
    only_fanout = analysis.sub_operation([1])
    assert _operation_of(only_fanout) == ({"first", "s", "_pekrealm_after_1"}, {"G"})
    assert "_pekrealm_edges: edges" in only_fanout
    assert "_pekrealm_o0: name" in only_fanout
    only_unique = analysis.sub_operation([2])
    assert _operation_of(only_unique) == (set(), set())
    assert analysis.sub_operation([0]) is only_owner  # cached text
    # every sub-operation is valid against the realm subgraph's own schema
    from fixtures import REALM_SCHEMA

    for subset in ([0], [1], [2], [0, 1, 2]):
        text = analysis.sub_operation(subset)
        assert validate(REALM_SCHEMA._schema, parse(text)) == [], text


def test_entities_take_an_internal_variable(routing: RealmRouting) -> None:
    analysis = analyze(
        "query($representations:[_Any!]!){_entities(representations:$representations)"
        "{...on User{memberships{id}}}}",
        None,
        routing,
    )
    (field,) = analysis.fields
    assert field.kind == Kind.ENTITIES
    text = analysis.sub_operation([0])
    assert _operation_of(text) == ({"_pekrealm_representations_0"}, set())


def test_mutations_without_an_owner_are_refused(routing: RealmRouting) -> None:
    with pytest.raises(OperationError) as info:
        analyze("mutation { resetAll }", None, routing)
    assert info.value.code == "REALM_ROUTING_UNSUPPORTED"
    assert analyze(
        'mutation { createGroup(input: {realm: "a", name: "n"}) { id } }', None, routing
    ).fields[0].kind == Kind.OWNER


def test_unparsable_operations_are_errors(routing: RealmRouting) -> None:
    with pytest.raises(OperationError, match="does not parse"):
        analyze("{ group(", None, routing)
