"""The yardstick: our ``compose`` against Apollo's ``@apollo/composition`` 2.14 (via Node).

For each fixture both composers run; the API schemas must be equal (printed after
lexicographic sorting) and the supergraphs must carry the same join information, compared
structurally (graphs, keys per type and graph, per-field graphs, requires/provides/override...).
Subgraphs that Apollo rejects must be rejected by us too.

Needs Node and ``npm ci --prefix tests/composition/node``; without them the tests fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    DirectiveNode,
    DocumentNode,
    SchemaDefinitionNode,
    build_schema,
    lexicographic_sort_schema,
    parse,
    print_ast,
    print_schema,
)

from pek.router.composition import CompositionError, SubgraphDefinition, api_schema_sdl, compose

HERE = Path(__file__).parent
NODE_DIR = HERE / "node"
FIXTURES = HERE / "fixtures"
INSTALL_HINT = (
    "Apollo's composition is needed for this test: install Node 20+ and run "
    "`npm ci --prefix tests/composition/node`"
)


def apollo_compose(subgraphs: list[SubgraphDefinition]) -> dict[str, Any]:
    """Run tests/composition/node/compose.mjs; fail (never skip) when it cannot run."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not installed. {INSTALL_HINT}")
    if not (NODE_DIR / "node_modules" / "@apollo" / "composition").is_dir():
        pytest.fail(f"@apollo/composition is not installed. {INSTALL_HINT}")
    payload = json.dumps([{"name": s.name, "url": s.url, "sdl": s.sdl} for s in subgraphs])
    completed = subprocess.run(
        [node, str(NODE_DIR / "compose.mjs")],
        input=payload,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(f"compose.mjs failed: {completed.stderr}\n{INSTALL_HINT}")
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def fixture_subgraphs(name: str) -> list[SubgraphDefinition]:
    return [
        SubgraphDefinition(p.stem, f"http://{p.stem}.example:4000/graphql", p.read_text())
        for p in sorted((FIXTURES / name).glob("*.graphql"))
    ]


def strawberry_subgraphs() -> list[SubgraphDefinition]:
    sys.path.insert(0, str(HERE))
    try:
        import strawberry_pair
    finally:
        sys.path.remove(str(HERE))
    return [
        SubgraphDefinition(name, f"http://{name}.example/graphql", sdl)
        for name, sdl in strawberry_pair.subgraph_sdls().items()
    ]


def project_subgraphs() -> list[SubgraphDefinition]:
    """The hub and realm subgraphs of this project, when they exist."""
    try:
        from pek.hub.service import HubSubgraph  # type: ignore[import-not-found,unused-ignore]
        from pek.realm.service import RealmSubgraph  # type: ignore[import-not-found,unused-ignore]
        from pek.settings import Settings
    except ImportError as error:
        pytest.skip(f"hub/realm subgraphs not available yet: {error}")
    settings = Settings(dev=True)
    return [
        SubgraphDefinition("hub", "http://hub.example/graphql", HubSubgraph(settings).sdl()),
        SubgraphDefinition("realm", "http://realm.example/graphql", RealmSubgraph(settings).sdl()),
    ]


# -- structural comparison ------------------------------------------------------------------


def sorted_api(sdl: str) -> str:
    return print_schema(lexicographic_sort_schema(build_schema(sdl)))


def _args(directive: DirectiveNode) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((a.name.value, print_ast(a.value)) for a in directive.arguments or ()))


def join_information(supergraph_sdl: str) -> dict[str, Any]:
    """Everything the router reads from a supergraph, as comparable sets."""
    document: DocumentNode = parse(supergraph_sdl)
    info: dict[str, Any] = {"links": set(), "graphs": {}, "elements": {}}
    for definition in document.definitions:
        if isinstance(definition, SchemaDefinitionNode):
            info["links"] = {_args(d) for d in definition.directives or ()}
            info["roots"] = {
                (o.operation.value, o.type.name.value) for o in definition.operation_types
            }
            continue
        name = getattr(definition, "name", None)
        if name is None or not hasattr(definition, "directives"):
            continue
        type_name = name.value
        if type_name == "join__Graph":
            for value in definition.values:  # type: ignore[attr-defined]
                info["graphs"][value.name.value] = {_args(d) for d in value.directives}
            continue
        elements = info["elements"]
        elements[type_name] = {(d.name.value, _args(d)) for d in definition.directives or ()}
        for child in (
            getattr(definition, "fields", None) or getattr(definition, "values", None) or ()
        ):
            coordinate = f"{type_name}.{child.name.value}"
            elements[coordinate] = {(d.name.value, _args(d)) for d in child.directives or ()}
            for arg in getattr(child, "arguments", None) or ():
                elements[f"{coordinate}({arg.name.value}:)"] = {
                    (d.name.value, _args(d)) for d in arg.directives or ()
                }
    return info


def assert_same_join_information(ours: str, apollo: str) -> None:
    mine, theirs = join_information(ours), join_information(apollo)
    assert mine["links"] == theirs["links"], "schema @link differ"
    assert mine["roots"] == theirs["roots"], "root types differ"
    assert mine["graphs"] == theirs["graphs"], "join__Graph differs"
    assert set(mine["elements"]) == set(theirs["elements"]), "supergraph elements differ"
    for coordinate, directives in theirs["elements"].items():
        assert mine["elements"][coordinate] == directives, f"directives on {coordinate} differ"


def assert_composes_like_apollo(subgraphs: list[SubgraphDefinition]) -> str:
    apollo = apollo_compose(subgraphs)
    assert apollo["errors"] == [], f"the fixture itself does not compose: {apollo['errors']}"
    ours = compose(subgraphs)
    assert sorted_api(api_schema_sdl(ours)) == sorted_api(apollo["apiSchema"])
    assert_same_join_information(ours, apollo["supergraphSdl"])
    return ours


# -- fixtures that compose ------------------------------------------------------------------


def test_benchmark_four_subgraphs() -> None:
    ours = assert_composes_like_apollo(fixture_subgraphs("benchmark"))
    assert '@join__field(graph: INVENTORY, requires: "price weight")' in ours


def test_strawberry_pair() -> None:
    ours = assert_composes_like_apollo(strawberry_subgraphs())
    # The composed routing directive travels to the router with its spec.
    assert '@link(url: "https://pek.example/routing/v0.1", import: ["@routing"])' in ours
    assert '@routing(mode: "fan-out")' in ours


def test_merge_rules() -> None:
    ours = assert_composes_like_apollo(fixture_subgraphs("merge_rules"))
    # Root types take their standard names even when a subgraph renames them.
    assert "RootQuery" not in ours


def test_interface_object() -> None:
    assert_composes_like_apollo(fixture_subgraphs("interface_object"))


def test_project_hub_and_realm() -> None:
    assert_composes_like_apollo(project_subgraphs())


def test_same_text_as_apollo_for_benchmark() -> None:
    """Not required for loading, but a byte-identical supergraph shows the format is Apollo's."""
    subgraphs = fixture_subgraphs("benchmark")
    assert compose(subgraphs) == apollo_compose(subgraphs)["supergraphSdl"] + "\n"


# -- subgraphs that must not compose --------------------------------------------------------

LINK = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: {imports})\n'


def sdl(imports: str, body: str) -> str:
    return LINK.format(imports=imports) + body


ERROR_CASES: dict[str, tuple[list[tuple[str, str]], list[str]]] = {
    "non-shareable field defined twice": (
        [
            (
                "a",
                sdl(
                    '["@key"]',
                    'type Query { a: T } type T @key(fields: "id") { id: ID! name: String }',
                ),
            ),
            (
                "b",
                sdl(
                    '["@key"]',
                    'type Query { b: T } type T @key(fields: "id") { id: ID! name: String }',
                ),
            ),
        ],
        ['"T.name"', "a", "b"],
    ),
    "key on a field that does not exist": (
        [("a", sdl('["@key"]', 'type Query { t: T } type T @key(fields: "uid") { id: ID! }'))],
        ['"T"', "uid"],
    ),
    "requires a field that is not external": (
        [
            (
                "a",
                sdl(
                    '["@key", "@requires"]',
                    'type Query { t: T } type T @key(fields: "id") '
                    '{ id: ID! w: Int x: Int @requires(fields: "w") }',
                ),
            ),
        ],
        ['"T.x"', "T.w"],
    ),
    "incompatible field types": (
        [
            (
                "a",
                sdl(
                    '["@key", "@shareable"]',
                    'type Query { t: T } type T @key(fields: "id") { id: ID! n: Int @shareable }',
                ),
            ),
            (
                "b",
                sdl(
                    '["@key", "@shareable"]',
                    'type T @key(fields: "id") { id: ID! n: String @shareable }',
                ),
            ),
        ],
        ['"T.n"', "a", "b"],
    ),
    "unknown type referenced": (
        [("a", sdl('["@key"]', "type Query { t: Missing }"))],
        ["Missing", "a"],
    ),
    "external field that nothing uses": (
        [
            (
                "a",
                sdl(
                    '["@key", "@external"]',
                    'type Query { t: T } type T @key(fields: "id") { id: ID! x: Int @external }',
                ),
            ),
        ],
        ['"T.x"'],
    ),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_rejects_what_apollo_rejects(case: str) -> None:
    definitions, expected_words = ERROR_CASES[case]
    subgraphs = [
        SubgraphDefinition(name, f"http://{name}/graphql", text) for name, text in definitions
    ]
    apollo = apollo_compose(subgraphs)
    assert apollo["errors"], f"Apollo accepted the {case} case; the fixture is wrong"
    with pytest.raises(CompositionError) as raised:
        compose(subgraphs)
    message = "\n".join(raised.value.errors)
    for word in expected_words:
        assert word in message, f"{word!r} missing from: {message}"
