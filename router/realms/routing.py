"""Routing directives of the realm subgraph, read from the supergraph SDL.

The realm subgraph declares how each of its root fields reaches the realm instances with two
composed directives of the spec ``https://pek.sch.bme.hu/realmRouting/v0.1`` (kept in the
supergraph by ``@composeDirective``):

* ``@realmOwner(argument: "id")``: the field goes to the one realm named by that argument (a
  realm-qualified global ID, or a realm id when the argument is called ``realm``; a dotted path
  such as ``"input.group"`` reaches into an input object);
* ``@realmFanout(orderBy: ["name"])``: a list or Relay-connection field goes to every realm and
  the answers are merged in that order.

Nothing here is specific to a field of our schema: the router learns every rule from the SDL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    ConstDirectiveNode,
    DocumentNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    ListValueNode,
    ObjectValueNode,
    SchemaDefinitionNode,
    StringValueNode,
    build_ast_schema,
    get_named_type,
    parse,
    print_type,
    value_from_ast_untyped,
)

#: URL prefix of the routing spec in ``@link``; the version follows.
ROUTING_SPEC_PREFIX = "https://pek.sch.bme.hu/realmRouting/"
OWNER_DIRECTIVE = "realmOwner"
FANOUT_DIRECTIVE = "realmFanout"
#: An owner argument with this name holds a realm id rather than a global ID.
REALM_ARGUMENT = "realm"


class RoutingDeclarationError(Exception):
    """A routing directive of the supergraph cannot be applied (a schema-author mistake)."""


@dataclass(frozen=True, slots=True)
class OwnerRouting:
    """``@realmOwner``: the argument path whose value names the owning realm."""

    argument_path: tuple[str, ...]
    #: ``hubIds: true``: an ID naming no realm (a hub object) may be answered by any realm.
    hub_ids: bool = False

    @property
    def by_realm_id(self) -> bool:
        return self.argument_path[-1] == REALM_ARGUMENT


@dataclass(frozen=True, slots=True)
class ConnectionShape:
    """How a Relay connection field is paginated (argument names, types and defaults)."""

    first_argument: str | None
    first_default: int | None
    after_argument: str
    after_type: str
    backward_arguments: tuple[str, ...]
    node_type: GraphQLNamedType


@dataclass(frozen=True, slots=True)
class FanoutRouting:
    """``@realmFanout``: merge order over the items (or the connection's nodes)."""

    order_by: tuple[str, ...]
    item_type: GraphQLNamedType
    #: The item type has an ``id`` field (the last tie-breaker).
    has_id: bool
    connection: ConnectionShape | None


FieldRouting = OwnerRouting | FanoutRouting


def _directive_names(document: DocumentNode) -> tuple[str, str]:
    """The names the supergraph uses for the two directives (``@link`` imports may rename)."""
    for definition in document.definitions:
        if not isinstance(definition, SchemaDefinitionNode):
            continue
        for directive in definition.directives or ():
            if directive.name.value != "link":
                continue
            args = {a.name.value: a.value for a in directive.arguments or ()}
            url = args.get("url")
            if not isinstance(url, StringValueNode) or not url.value.startswith(
                ROUTING_SPEC_PREFIX
            ):
                continue
            alias = args.get("as")
            namespace = (
                alias.value
                if isinstance(alias, StringValueNode)
                else url.value[len("https://pek.sch.bme.hu/") :].split("/")[0]
            )
            names = {
                OWNER_DIRECTIVE: f"{namespace}__{OWNER_DIRECTIVE}",
                FANOUT_DIRECTIVE: f"{namespace}__{FANOUT_DIRECTIVE}",
            }
            imports = args.get("import")
            for item in imports.values if isinstance(imports, ListValueNode) else ():
                if isinstance(item, StringValueNode):
                    original = renamed = item.value
                elif isinstance(item, ObjectValueNode):
                    fields = {
                        f.name.value: f.value.value
                        for f in item.fields
                        if isinstance(f.value, StringValueNode)
                    }
                    original = fields.get("name", "")
                    renamed = fields.get("as", original)
                else:
                    continue
                if original.lstrip("@") in names:
                    names[original.lstrip("@")] = renamed.lstrip("@")
            return names[OWNER_DIRECTIVE], names[FANOUT_DIRECTIVE]
    return OWNER_DIRECTIVE, FANOUT_DIRECTIVE


def _arguments(directive: ConstDirectiveNode) -> dict[str, Any]:
    return {a.name.value: value_from_ast_untyped(a.value) for a in directive.arguments or ()}


def _unwrap_list(type_: GraphQLOutputType) -> GraphQLOutputType | None:
    """The item type of a (possibly non-null) list type, else None."""
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLList):
        return type_.of_type
    return None


def _fields_of(type_: GraphQLNamedType) -> dict[str, GraphQLField]:
    if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
        return dict(type_.fields)
    return {}


def argument_default(field: GraphQLField, name: str) -> Any:
    """The default value of an argument as JSON (None when it has none), from the SDL literal
    (works for both graphql-core 3.2 and 3.3 default representations)."""
    argument = field.args.get(name)
    node = argument.ast_node if argument is not None else None
    if node is None or node.default_value is None:
        return None
    return value_from_ast_untyped(node.default_value)


def _int_default(field: GraphQLField, name: str | None) -> int | None:
    if name is None:
        return None
    value = argument_default(field, name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class RealmRouting:
    """The routing rules of one subgraph of a supergraph, by root type and field."""

    def __init__(self, supergraph_sdl: str, subgraph: str = "realm") -> None:
        document = parse(supergraph_sdl, no_location=True)
        self.subgraph = subgraph
        self.schema: GraphQLSchema = build_ast_schema(
            document, assume_valid=True, assume_valid_sdl=True
        )
        self.owner_directive, self.fanout_directive = _directive_names(document)
        self._rules: dict[tuple[str, str], FieldRouting] = {}
        self.errors: dict[tuple[str, str], str] = {}
        for root in (self.schema.query_type, self.schema.mutation_type):
            if root is None:
                continue
            for name, field in root.fields.items():
                try:
                    rule = self._rule(root.name, name, field)
                except RoutingDeclarationError as exc:
                    self.errors[(root.name, name)] = str(exc)
                    continue
                if rule is not None:
                    self._rules[(root.name, name)] = rule

    @property
    def query_type(self) -> str:
        return self.schema.query_type.name if self.schema.query_type else "Query"

    @property
    def mutation_type(self) -> str:
        return self.schema.mutation_type.name if self.schema.mutation_type else "Mutation"

    def root_type(self, operation: str) -> GraphQLObjectType | None:
        if operation == "mutation":
            return self.schema.mutation_type
        if operation == "query":
            return self.schema.query_type
        return None

    def rule(self, root_type: str, field_name: str) -> FieldRouting | None:
        """The routing of a root field; None when it declares none.

        Raises :class:`RoutingDeclarationError` when the declaration is unusable."""
        error = self.errors.get((root_type, field_name))
        if error is not None:
            raise RoutingDeclarationError(error)
        return self._rules.get((root_type, field_name))

    def named_type(self, name: str) -> GraphQLNamedType | None:
        return self.schema.type_map.get(name)

    def _rule(self, root: str, name: str, field: GraphQLField) -> FieldRouting | None:
        node = field.ast_node
        directives = list(node.directives or ()) if node is not None else []
        owner = [d for d in directives if d.name.value == self.owner_directive]
        fanout = [d for d in directives if d.name.value == self.fanout_directive]
        where = f"{root}.{name}"
        if owner and fanout:
            raise RoutingDeclarationError(
                f"{where} declares both @{self.owner_directive} and @{self.fanout_directive}"
            )
        if owner:
            return self._owner(where, field, _arguments(owner[0]))
        if fanout:
            return self._fanout(where, field, _arguments(fanout[0]))
        return None

    def _owner(self, where: str, field: GraphQLField, args: dict[str, Any]) -> OwnerRouting:
        argument = args.get("argument")
        if not isinstance(argument, str) or not argument:
            raise RoutingDeclarationError(f"{where}: @{self.owner_directive} needs `argument`")
        path = tuple(argument.split("."))
        if path[0] not in field.args:
            raise RoutingDeclarationError(f"{where} has no argument {path[0]!r} to route by")
        return OwnerRouting(path, hub_ids=args.get("hubIds") is True)

    def _fanout(self, where: str, field: GraphQLField, args: dict[str, Any]) -> FanoutRouting:
        order_by = args.get("orderBy")
        if not isinstance(order_by, list) or not all(isinstance(o, str) for o in order_by):
            raise RoutingDeclarationError(f"{where}: @{self.fanout_directive} needs `orderBy`")
        item = _unwrap_list(field.type)
        connection: ConnectionShape | None = None
        if item is None:
            connection = self._connection(where, field)
            item_type = connection.node_type
        else:
            item_type = get_named_type(item)
        fields = _fields_of(item_type)
        for order_field in order_by:
            if order_field not in fields:
                raise RoutingDeclarationError(
                    f"{where}: cannot order by {order_field!r}, {item_type.name} has no such field"
                )
        return FanoutRouting(tuple(order_by), item_type, "id" in fields, connection)

    def _connection(self, where: str, field: GraphQLField) -> ConnectionShape:
        connection_type = get_named_type(field.type)
        fields = _fields_of(connection_type)
        edges = fields.get("edges")
        edge_item = _unwrap_list(edges.type) if edges is not None else None
        if edge_item is None or "pageInfo" not in fields:
            raise RoutingDeclarationError(
                f"{where}: @{self.fanout_directive} needs a list or a Relay connection "
                f"(edges and pageInfo), not {print_type(connection_type).splitlines()[0]}"
            )
        edge_fields = _fields_of(get_named_type(edge_item))
        if "node" not in edge_fields or "cursor" not in edge_fields:
            raise RoutingDeclarationError(f"{where}: the connection's edges need node and cursor")
        if "after" not in field.args:
            raise RoutingDeclarationError(f"{where}: a fanned-out connection needs `after`")
        after_type = get_named_type(field.args["after"].type).name
        first = "first" if "first" in field.args else None
        return ConnectionShape(
            first_argument=first,
            first_default=_int_default(field, first),
            after_argument="after",
            after_type=after_type,
            backward_arguments=tuple(a for a in ("last", "before") if a in field.args),
            node_type=get_named_type(edge_fields["node"].type),
        )

    def field_type(self, type_name: str, field_name: str) -> GraphQLOutputType | None:
        """The type of ``type_name.field_name`` in the supergraph, if both exist."""
        type_ = self.schema.type_map.get(type_name)
        field = _fields_of(type_).get(field_name) if type_ is not None else None
        return field.type if field is not None else None

    def implements(self, type_name: str, condition: str) -> bool:
        """Whether a fragment on ``condition`` applies to an object of type ``type_name``."""
        if type_name == condition:
            return True
        runtime = self.schema.type_map.get(type_name)
        abstract = self.schema.type_map.get(condition)
        if not isinstance(runtime, GraphQLObjectType) or abstract is None:
            return False
        if isinstance(abstract, GraphQLInterfaceType | GraphQLObjectType):
            return abstract in runtime.interfaces
        return self.schema.is_sub_type(abstract, runtime)  # type: ignore[arg-type]
