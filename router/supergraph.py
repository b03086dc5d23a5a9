"""The supergraph: Apollo's join-spec SDL read into planning metadata and an API schema.

Everything the planner knows about subgraphs comes from here: which subgraphs define a type and with
which ``@key``s, which subgraphs resolve a field (with ``@requires``/``@provides``/``@external``/
``@override``), which implementations and union members each subgraph knows. The router never knows
our own subgraphs by name; it only reads this file's model.

Supported: ``@link`` v1.0 with ``join`` v0.2 to v0.5 (directive names follow ``@link(as:)`` and
``import:``), ``@inaccessible`` (removed from the API schema).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ArgumentNode,
    BooleanValueNode,
    DirectiveDefinitionNode,
    DirectiveNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    EnumValueNode,
    FieldDefinitionNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    InputObjectTypeDefinitionNode,
    InterfaceTypeDefinitionNode,
    ListTypeNode,
    ListValueNode,
    NamedTypeNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    ObjectValueNode,
    OperationDefinitionNode,
    ScalarTypeDefinitionNode,
    SchemaDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    TypeNode,
    UnionTypeDefinitionNode,
    build_ast_schema,
    parse,
    print_ast,
)

LINK_SPEC = "https://specs.apollo.dev/link/"
JOIN_SPEC = "https://specs.apollo.dev/join/"
INACCESSIBLE_SPEC = "https://specs.apollo.dev/inaccessible/"
#: Directives the API schema keeps when applied (everything else is supergraph machinery).
API_DIRECTIVES = frozenset({"deprecated", "specifiedBy", "oneOf"})


class SupergraphError(ValueError):
    """The supergraph SDL cannot be read."""


@dataclass(frozen=True, slots=True)
class Subgraph:
    """One subgraph named by ``@join__graph``: ``enum_value`` is its ``join__Graph`` value."""

    name: str
    url: str
    enum_value: str


@dataclass(frozen=True, slots=True)
class Key:
    """One ``@key`` of an entity in one subgraph, its field set parsed."""

    graph: str
    fields: str
    selection_set: SelectionSetNode
    resolvable: bool = True


@dataclass(slots=True)
class FieldInGraph:
    """How one subgraph provides one field (from ``@join__field``)."""

    graph: str
    external: bool = False
    requires: SelectionSetNode | None = None
    provides: SelectionSetNode | None = None
    override: str | None = None
    used_overridden: bool = False
    type: str | None = None


@dataclass(slots=True)
class FieldMeta:
    """A field of a composite type in the supergraph."""

    name: str
    parent: str
    type_name: str  # the named (innermost) type
    graphs: dict[str, FieldInGraph] = field(default_factory=dict)
    #: the supergraph type as written (``[ID!]``)
    type_text: str = ""
    #: ``@join__field`` without a graph: only reachable through an ``@interfaceObject``.
    via_interface_object: bool = False

    def resolvable_in(self, graph: str) -> bool:
        info = self.graphs.get(graph)
        return info is not None and not info.external and not info.used_overridden

    def type_in(self, graph: str) -> str:
        """The field's type as ``graph`` declares it (``@join__field(type:)``) or the
        supergraph's."""
        info = self.graphs.get(graph)
        return info.type if info is not None and info.type else self.type_text

    def type_name_in(self, graph: str) -> str:
        """The named type of the field in ``graph`` (a union member where the subgraph returns
        the member itself, for example)."""
        info = self.graphs.get(graph)
        if info is None or not info.type:
            return self.type_name
        return info.type.strip("[]!")


@dataclass(slots=True)
class TypeMeta:
    """A named type of the supergraph and where it lives."""

    name: str
    kind: str  # "object" | "interface" | "union" | "enum" | "input" | "scalar"
    graphs: list[str] = field(default_factory=list)
    keys: list[Key] = field(default_factory=list)
    interface_object_graphs: set[str] = field(default_factory=set)
    fields: dict[str, FieldMeta] = field(default_factory=dict)
    #: interface name -> graphs where this type implements it (None: wherever both exist)
    implements: dict[str, set[str] | None] = field(default_factory=dict)
    #: union member name -> graphs where it is a member (None: wherever both exist)
    members: dict[str, set[str] | None] = field(default_factory=dict)

    def keys_in(self, graph: str) -> list[Key]:
        return [k for k in self.keys if k.graph == graph]


def parse_field_set(text: str) -> SelectionSetNode:
    """Parse a ``FieldSet`` (``"id org { id }"``) into a selection set."""
    try:
        document = parse("{" + text + "}", no_location=True)
    except GraphQLError as exc:
        raise SupergraphError(f"invalid field set {text!r}: {exc.message}") from None
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return operation.selection_set


def named_type(node: TypeNode) -> str:
    while isinstance(node, (NonNullTypeNode, ListTypeNode)):
        node = node.type
    assert isinstance(node, NamedTypeNode)
    return node.name.value


def _value(node: Any) -> Any:
    if isinstance(node, (StringValueNode, EnumValueNode)):
        return node.value
    if isinstance(node, BooleanValueNode):
        return node.value
    if isinstance(node, ListValueNode):
        return [_value(v) for v in node.values]
    if isinstance(node, ObjectValueNode):
        return {f.name.value: _value(f.value) for f in node.fields}
    return None


def _args(directive: DirectiveNode) -> dict[str, Any]:
    return {a.name.value: _value(a.value) for a in directive.arguments or ()}


class _FeatureNames:
    """Maps a spec's canonical element names to the names used in this document (``@link``)."""

    def __init__(self) -> None:
        self.directives: dict[str, str] = {}  # actual name -> canonical ("join__type")
        self.types: set[str] = set()  # actual names of machinery types (join__Graph, ...)
        self.prefixes: dict[str, str] = {}  # feature ("join") -> actual prefix
        self.versions: dict[str, str] = {}
        self.imports: dict[str, dict[str, str]] = {}

    def add(self, url: str, alias: str | None, imports: list[Any] | None) -> None:
        parts = url.rstrip("/").split("/")
        if len(parts) < 2:
            return
        feature, version = parts[-2], parts[-1]
        prefix = alias or feature
        self.prefixes[feature] = prefix
        self.versions[feature] = version
        imported: dict[str, str] = {}
        for item in imports or []:
            if isinstance(item, str):
                imported[item] = item
            elif isinstance(item, dict) and "name" in item:
                imported[item["name"]] = str(item.get("as") or item["name"])
        self.imports[feature] = imported

    def canonical_directive(self, actual: str) -> str | None:
        """``j__type`` (join linked as ``j``) -> ``join__type``; ``inaccessible`` -> itself."""
        for feature, prefix in self.prefixes.items():
            for original, local in self.imports.get(feature, {}).items():
                if local.lstrip("@") == actual and original.startswith("@"):
                    name = original[1:]
                    return feature if name == feature else f"{feature}__{name}"
            if actual == prefix:
                return feature
            if actual.startswith(prefix + "__"):
                return feature + "__" + actual[len(prefix) + 2 :]
        return None

    def is_machinery_type(self, actual: str) -> bool:
        return any(actual.startswith(prefix + "__") for prefix in self.prefixes.values())


class Supergraph:
    """A supergraph SDL read into metadata (:attr:`types`, :attr:`subgraphs`) and an API schema."""

    def __init__(self, sdl: str) -> None:
        try:
            self.document: DocumentNode = parse(sdl, no_location=True)
        except GraphQLError as exc:
            raise SupergraphError(f"supergraph SDL does not parse: {exc.message}") from None
        self._names = _FeatureNames()
        self._read_links()
        if "join" not in self._names.prefixes:
            raise SupergraphError("not a supergraph: no @link to the join spec")
        self.subgraphs: dict[str, Subgraph] = {}
        self._graph_by_enum: dict[str, str] = {}
        self.types: dict[str, TypeMeta] = {}
        self.root_types: dict[str, str] = {"query": "Query"}
        self._read_graphs()
        self._read_types()
        self.api_schema: GraphQLSchema = self._build_api_schema()
        self._possible: dict[tuple[str, str], list[str]] = {}

    # -- reading -------------------------------------------------------------------------------

    def _canonical(self, directive: DirectiveNode) -> str | None:
        return self._names.canonical_directive(directive.name.value)

    def _read_links(self) -> None:
        for definition in self.document.definitions:
            if isinstance(definition, SchemaDefinitionNode):
                for directive in definition.directives or ():
                    args = _args(directive)
                    url = args.get("url")
                    if directive.name.value in ("link", "core") and isinstance(url, str):
                        self._names.add(url, args.get("as"), args.get("import"))
                # the link spec itself may be renamed; re-scan with any alias it declared
                link_prefix = self._names.prefixes.get("link", "link")
                for directive in definition.directives or ():
                    args = _args(directive)
                    url = args.get("url") or args.get("feature")
                    if directive.name.value == link_prefix and isinstance(url, str):
                        self._names.add(url, args.get("as"), args.get("import"))

    def _read_graphs(self) -> None:
        for definition in self.document.definitions:
            if isinstance(definition, SchemaDefinitionNode):
                for op in definition.operation_types or ():
                    self.root_types[op.operation.value] = op.type.name.value
            if isinstance(definition, EnumTypeDefinitionNode) and self._is_join_graph_enum(
                definition
            ):
                for value in definition.values or ():
                    for directive in value.directives or ():
                        if self._canonical(directive) == "join__graph":
                            args = _args(directive)
                            sub = Subgraph(args["name"], args.get("url") or "", value.name.value)
                            self.subgraphs[sub.name] = sub
                            self._graph_by_enum[value.name.value] = sub.name
        if not self.subgraphs:
            raise SupergraphError("the supergraph declares no subgraph (@join__graph)")

    def _is_join_graph_enum(self, definition: EnumTypeDefinitionNode) -> bool:
        return definition.name.value == self._names.prefixes["join"] + "__Graph"

    def _graph(self, enum_value: Any) -> str:
        if enum_value not in self._graph_by_enum:
            raise SupergraphError(f"unknown join__Graph value {enum_value!r}")
        return self._graph_by_enum[enum_value]

    def _read_types(self) -> None:
        kinds: dict[type, str] = {
            ObjectTypeDefinitionNode: "object",
            InterfaceTypeDefinitionNode: "interface",
            UnionTypeDefinitionNode: "union",
            EnumTypeDefinitionNode: "enum",
            InputObjectTypeDefinitionNode: "input",
            ScalarTypeDefinitionNode: "scalar",
        }
        for definition in self.document.definitions:
            kind = kinds.get(type(definition))
            if kind is None:
                continue
            name = definition.name.value  # type: ignore[attr-defined]
            if self._names.is_machinery_type(name):
                continue
            meta = TypeMeta(name=name, kind=kind)
            self.types[name] = meta
            explicit_implements = False
            explicit_members = False
            for directive in definition.directives or ():  # type: ignore[attr-defined]
                canonical = self._canonical(directive)
                args = _args(directive)
                if canonical == "join__type":
                    graph = self._graph(args["graph"])
                    if graph not in meta.graphs:
                        meta.graphs.append(graph)
                    if args.get("isInterfaceObject"):
                        meta.interface_object_graphs.add(graph)
                    if args.get("key"):
                        meta.keys.append(
                            Key(
                                graph,
                                args["key"],
                                parse_field_set(args["key"]),
                                args.get("resolvable", True) is not False,
                            )
                        )
                elif canonical == "join__implements":
                    explicit_implements = True
                    graphs = meta.implements.setdefault(args["interface"], set())
                    assert graphs is not None
                    graphs.add(self._graph(args["graph"]))
                elif canonical == "join__unionMember":
                    explicit_members = True
                    graphs = meta.members.setdefault(args["member"], set())
                    assert graphs is not None
                    graphs.add(self._graph(args["graph"]))
            if kind in ("object", "interface") and not explicit_implements:
                for iface in definition.interfaces or ():  # type: ignore[attr-defined]
                    meta.implements[iface.name.value] = None
            if kind == "union" and not explicit_members:
                for member in definition.types or ():  # type: ignore[attr-defined]
                    meta.members[member.name.value] = None
            if kind in ("object", "interface"):
                for fdef in definition.fields or ():  # type: ignore[attr-defined]
                    meta.fields[fdef.name.value] = self._read_field(meta, fdef)

    def _read_field(self, parent: TypeMeta, fdef: FieldDefinitionNode) -> FieldMeta:
        fmeta = FieldMeta(
            fdef.name.value, parent.name, named_type(fdef.type), type_text=print_ast(fdef.type)
        )
        join_fields = [d for d in fdef.directives or () if self._canonical(d) == "join__field"]
        if not join_fields:
            for graph in parent.graphs:
                fmeta.graphs[graph] = FieldInGraph(graph)
            return fmeta
        for directive in join_fields:
            args = _args(directive)
            if args.get("graph") is None:
                fmeta.via_interface_object = True
                continue
            graph = self._graph(args["graph"])
            fmeta.graphs[graph] = FieldInGraph(
                graph,
                external=bool(args.get("external")),
                requires=parse_field_set(args["requires"]) if args.get("requires") else None,
                provides=parse_field_set(args["provides"]) if args.get("provides") else None,
                override=args.get("override"),
                used_overridden=bool(args.get("usedOverridden")),
                type=args.get("type"),
            )
        return fmeta

    # -- API schema ----------------------------------------------------------------------------

    def _inaccessible(self, node: Any) -> bool:
        return any(
            self._canonical(d) == "inaccessible" for d in getattr(node, "directives", None) or ()
        )

    def _strip(self, directives: Iterable[DirectiveNode] | None) -> tuple[Any, ...]:
        return tuple(d for d in directives or () if d.name.value in API_DIRECTIVES)

    def _build_api_schema(self) -> GraphQLSchema:
        hidden_types = {
            name
            for d in self.document.definitions
            if not isinstance(d, DirectiveDefinitionNode)
            and (name := _name_of(d)) is not None
            and (self._inaccessible(d) or self._names.is_machinery_type(name))
        }
        machinery_directives = {
            d.name.value
            for d in self.document.definitions
            if isinstance(d, DirectiveDefinitionNode)
            and (
                self._names.canonical_directive(d.name.value) is not None
                or d.name.value in ("link", "core")
            )
        }

        def keep_type(node: TypeNode) -> bool:
            return named_type(node) not in hidden_types

        definitions: list[Any] = []
        for d in self.document.definitions:
            if isinstance(d, SchemaDefinitionNode):
                definitions.append(
                    SchemaDefinitionNode(
                        description=d.description,
                        directives=(),
                        operation_types=tuple(
                            o
                            for o in d.operation_types or ()
                            if o.type.name.value not in hidden_types
                        ),
                    )
                )
                continue
            if isinstance(d, DirectiveDefinitionNode):
                if d.name.value not in machinery_directives:
                    definitions.append(d)
                continue
            name = getattr(d, "name", None)
            if name is None or name.value in hidden_types:
                continue
            changes: dict[str, Any] = {"directives": self._strip(getattr(d, "directives", ()))}
            if isinstance(d, (ObjectTypeDefinitionNode, InterfaceTypeDefinitionNode)):
                changes["fields"] = tuple(
                    f.__class__(
                        description=f.description,
                        name=f.name,
                        type=f.type,
                        directives=self._strip(f.directives),
                        arguments=tuple(
                            a.__class__(
                                description=a.description,
                                name=a.name,
                                type=a.type,
                                default_value=a.default_value,
                                directives=self._strip(a.directives),
                            )
                            for a in f.arguments or ()
                            if not self._inaccessible(a) and keep_type(a.type)
                        ),
                    )
                    for f in d.fields or ()
                    if not self._inaccessible(f) and keep_type(f.type)
                )
                changes["interfaces"] = tuple(
                    i for i in d.interfaces or () if i.name.value not in hidden_types
                )
            elif isinstance(d, UnionTypeDefinitionNode):
                changes["types"] = tuple(
                    t for t in d.types or () if t.name.value not in hidden_types
                )
            elif isinstance(d, EnumTypeDefinitionNode):
                changes["values"] = tuple(
                    v.__class__(
                        description=v.description, name=v.name, directives=self._strip(v.directives)
                    )
                    for v in d.values or ()
                    if not self._inaccessible(v)
                )
            elif isinstance(d, InputObjectTypeDefinitionNode):
                changes["fields"] = tuple(
                    f.__class__(
                        description=f.description,
                        name=f.name,
                        type=f.type,
                        default_value=f.default_value,
                        directives=self._strip(f.directives),
                    )
                    for f in d.fields or ()
                    if not self._inaccessible(f) and keep_type(f.type)
                )
            kwargs = {k: getattr(d, k) for k in d.keys if k != "loc"}
            kwargs.update(changes)
            definitions.append(d.__class__(**kwargs))
        try:
            return build_ast_schema(DocumentNode(definitions=tuple(definitions)))
        except (GraphQLError, TypeError) as exc:
            raise SupergraphError(f"cannot build the API schema: {exc}") from None

    # -- queries used by the planner -----------------------------------------------------------

    @property
    def join_version(self) -> str:
        return self._names.versions.get("join", "")

    def subgraph_urls(self) -> dict[str, str]:
        return {name: sub.url for name, sub in self.subgraphs.items()}

    def type(self, name: str) -> TypeMeta:
        return self.types[name]

    def field(self, parent: str, name: str) -> FieldMeta | None:
        meta = self.types.get(parent)
        return meta.fields.get(name) if meta else None

    def is_abstract(self, name: str) -> bool:
        meta = self.types.get(name)
        return meta is not None and meta.kind in ("interface", "union")

    def is_composite(self, name: str) -> bool:
        meta = self.types.get(name)
        return meta is not None and meta.kind in ("object", "interface", "union")

    def possible_types(self, name: str, graph: str | None = None) -> list[str]:
        """Object types that may appear where ``name`` is expected (in ``graph`` if given).
        ``@inaccessible`` types are included: subgraphs may return them (the response shaping
        turns them into null) and ``@requires`` may select them."""
        cache_key = (name, graph or "")
        cached = self._possible.get(cache_key)
        if cached is not None:
            return cached
        meta = self.types.get(name)
        result: list[str] = []
        if meta is not None:
            if meta.kind == "object":
                result = [name] if graph is None or graph in meta.graphs else []
            elif meta.kind == "union":
                for member, graphs in meta.members.items():
                    member_meta = self.types.get(member)
                    if member_meta is None:
                        continue
                    if graph is None or (
                        graph in member_meta.graphs and (graphs is None or graph in graphs)
                    ):
                        result.append(member)
            elif meta.kind == "interface":
                for candidate in self.types.values():
                    if candidate.kind != "object" or name not in candidate.implements:
                        continue
                    graphs = candidate.implements[name]
                    if graph is None or (
                        graph in candidate.graphs and (graphs is None or graph in graphs)
                    ):
                        result.append(candidate.name)
        self._possible[cache_key] = result
        return result

    def _api_has(self, name: str) -> bool:
        return self.api_schema.get_type(name) is not None

    def interface_objects_for(self, type_name: str, field_name: str) -> list[tuple[str, str]]:
        """(interface, graph) pairs where ``type_name.field_name`` is resolved by an
        ``@interfaceObject`` of one of the type's interfaces."""
        meta = self.types.get(type_name)
        found: list[tuple[str, str]] = []
        if meta is None:
            return found
        for iface in meta.implements:
            imeta = self.types.get(iface)
            if imeta is None:
                continue
            ifield = imeta.fields.get(field_name)
            for graph in imeta.interface_object_graphs:
                if ifield is not None and ifield.resolvable_in(graph):
                    found.append((iface, graph))
        return found


def _name_of(definition: Any) -> str | None:
    name = getattr(definition, "name", None)
    return name.value if name is not None else None


def field_node_key(node: FieldNode) -> str:
    """The response key of a field (its alias or its name)."""
    return node.alias.value if node.alias else node.name.value


__all__ = [
    "ArgumentNode",
    "FieldInGraph",
    "FieldMeta",
    "Key",
    "Subgraph",
    "Supergraph",
    "SupergraphError",
    "TypeMeta",
    "field_node_key",
    "named_type",
    "parse_field_set",
]
