"""Tiny Federation v2 subgraphs from an SDL and plain Python data, for router feature tests.

Each :class:`DataSubgraph` is a real GraphQL server in-process (graphql-core executes the
subgraph schema, with ``_entities`` and ``_Any``): a field resolves from the parent dict (a
callable value is called with the field's arguments), an entity from its ``resolve_reference``.
The supergraph comes from our own composition (:func:`pek.router.composition.compose`), so the
router sees exactly what it would see in production.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    GraphQLObjectType,
    GraphQLSchema,
    InterfaceTypeDefinitionNode,
    ObjectTypeDefinitionNode,
    build_ast_schema,
    graphql,
    parse,
)
from graphql.language import Visitor, visit

from pek.router.composition import SubgraphDefinition, compose
from pek.router.gateway import Gateway
from pek.router.transport import InProcessTransport, SubgraphRequest

FEDERATION_LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", '
    '"@external", "@requires", "@provides", "@shareable", "@interfaceObject", "@inaccessible", '
    '"@override"])\n'
)
ReferenceResolver = Callable[[dict[str, Any]], Any]


class _StripDirectives(Visitor):
    def enter_directive(self, node: DirectiveNode, *_: Any) -> Any:
        return Visitor.REMOVE


def _entity_names(document: DocumentNode) -> list[str]:
    """Object types with a resolvable ``@key`` (``@interfaceObject`` types included)."""
    names: list[str] = []
    for definition in document.definitions:
        if not isinstance(definition, (ObjectTypeDefinitionNode, InterfaceTypeDefinitionNode)):
            continue
        for directive in definition.directives or ():
            if directive.name.value != "key":
                continue
            resolvable = next(
                (a.value for a in directive.arguments or () if a.name.value == "resolvable"), None
            )
            if getattr(resolvable, "value", True) is not False:
                if isinstance(definition, ObjectTypeDefinitionNode):
                    names.append(definition.name.value)
                break
    return names


@dataclass
class DataSubgraph:
    """A LocalSubgraph: ``sdl`` (without the ``@link``), root ``data`` and reference resolvers
    per entity type name. Records the operations it receives."""

    name: str
    sdl: str
    data: Mapping[str, Any] = field(default_factory=dict)
    references: Mapping[str, ReferenceResolver] = field(default_factory=dict)
    requests: list[SubgraphRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        document = parse(self.sdl)
        entities = _entity_names(document)
        plain = visit(document, _StripDirectives())
        extra = "scalar _Any\n"
        if entities:
            extra += f"union _Entity = {' | '.join(entities)}\n"
            extra += "extend type Query { _entities(representations: [_Any!]!): [_Entity]! }\n"
        self.schema: GraphQLSchema = build_ast_schema(
            DocumentNode(definitions=(*plain.definitions, *parse(extra).definitions))
        )
        query = self.schema.query_type
        if entities and isinstance(query, GraphQLObjectType):
            query.fields["_entities"].resolve = self._entities

    def _entities(self, _root: Any, _info: Any, representations: list[dict[str, Any]]) -> Any:
        out: list[Any] = []
        for rep in representations:
            resolver = self.references.get(rep["__typename"])
            value = resolver(dict(rep)) if resolver else dict(rep)
            if isinstance(value, dict) and "__typename" not in value:
                value = {**value, "__typename": rep["__typename"]}
            out.append(value)
        return out

    @property
    def definition(self) -> SubgraphDefinition:
        return SubgraphDefinition(self.name, f"http://{self.name}.test/graphql", self.full_sdl)

    @property
    def full_sdl(self) -> str:
        return FEDERATION_LINK + self.sdl

    async def execute(self, request: SubgraphRequest) -> dict[str, Any]:
        self.requests.append(request)
        result = await graphql(
            self.schema,
            request.query,
            root_value=self.data,
            variable_values=json.loads(json.dumps(dict(request.variables or {}))),
            operation_name=request.operation_name,
        )
        response: dict[str, Any] = {"data": result.data}
        if result.errors:
            response["errors"] = [e.formatted for e in result.errors]
        return response


def gateway_over(*subgraphs: DataSubgraph) -> Gateway:
    """A Gateway over ``subgraphs`` (composed with our composition, called in-process)."""
    supergraph = compose([s.definition for s in subgraphs])
    return Gateway(supergraph, InProcessTransport({s.name: s for s in subgraphs}))
