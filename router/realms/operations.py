"""Analysis and rewriting of one realm-subgraph operation (graphql-core ASTs).

A subgraph request the executor sends to "the realm subgraph" is split here by root field: each
root field gets its routing (by owner, fan-out, entities, ...) and is rewritten once for the
realm instances:

* a fan-out list gets its order fields (and ``id``) under internal aliases;
* a fan-out connection gets an internal copy of ``edges { cursor node { <order fields> id } }``
  and ``pageInfo { hasNextPage }``, and its ``after`` argument becomes an internal variable, so
  each realm receives its own cursor;
* ``_entities`` takes its representations from an internal variable (each realm gets its part).

:meth:`OperationAnalysis.sub_operation` prints the operation of any subset of root fields with
exactly the variable definitions and fragments that subset uses (subgraphs reject unused ones).
The analysis is cached per query text by the caller; per request only values are computed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ArgumentNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    ListTypeNode,
    ListValueNode,
    NamedTypeNode,
    NameNode,
    NonNullTypeNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    SelectionSetNode,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
    parse,
    print_ast,
)

from pek.router.realms.routing import (
    FanoutRouting,
    OwnerRouting,
    RealmRouting,
    RoutingDeclarationError,
)

#: Prefix of every alias and variable this layer adds (the planner's own prefix is ``_pek_``).
INTERNAL = "_pekrealm_"
EDGES_KEY = INTERNAL + "edges"
PAGE_INFO_KEY = INTERNAL + "pageInfo"
CURSOR_KEY = INTERNAL + "cursor"
NODE_KEY = INTERNAL + "node"
ID_KEY = INTERNAL + "id"


class OperationError(Exception):
    """The subgraph operation cannot be routed; ``code`` goes to ``extensions.code``."""

    def __init__(self, message: str, code: str = "REALM_ROUTING_FAILED") -> None:
        super().__init__(message)
        self.code = code


class Kind(enum.Enum):
    ENTITIES = "entities"
    TYPENAME = "typename"
    SERVICE = "service"
    OWNER = "owner"
    FANOUT = "fanout"
    #: No directive: every realm is asked, exactly one may answer non-null.
    UNIQUE = "unique"


@dataclass(frozen=True, slots=True)
class ConnectionKeys:
    """Where the client's selection on a connection puts what the merge computes."""

    #: response key of an ``edges`` field -> response keys of ``cursor`` inside its edges
    edges: dict[str, frozenset[str]]
    #: response key of ``pageInfo`` -> {response key inside it: field name}
    page_info: dict[str, dict[str, str]]
    total_count: frozenset[str]


@dataclass(slots=True)
class RootField:
    """One root field of the subgraph operation, routed and rewritten."""

    index: int
    key: str
    name: str
    kind: Kind
    node: FieldNode
    variables: frozenset[str] = frozenset()
    fragments: frozenset[str] = frozenset()
    internal_definitions: tuple[VariableDefinitionNode, ...] = ()
    owner: OwnerRouting | None = None
    fanout: FanoutRouting | None = None
    #: original argument values (None when absent), evaluated per request
    arguments: dict[str, ValueNode] = field(default_factory=dict)
    order_keys: tuple[str, ...] = ()
    id_key: str | None = None
    after_variable: str | None = None
    connection_keys: ConnectionKeys | None = None
    representations_variable: str | None = None
    #: the client's selection under ``_entities`` (to answer entities no realm needs to see)
    entity_selection: SelectionSetNode | None = None


class OperationAnalysis:
    """A routed subgraph operation; build it with :func:`analyze`."""

    def __init__(
        self,
        operation: OperationDefinitionNode,
        fields: list[RootField],
        fragments: dict[str, FragmentDefinitionNode],
        fragment_usage: dict[str, tuple[frozenset[str], frozenset[str]]],
    ) -> None:
        self.operation = operation
        self.kind = operation.operation.value
        self.name = operation.name.value if operation.name else None
        self.fields = fields
        self.fragments = fragments
        self._fragment_usage = fragment_usage
        self._definitions = {
            d.variable.name.value: d for d in operation.variable_definitions or ()
        }
        self._texts: dict[tuple[int, ...], str] = {}

    def sub_operation(self, indexes: Iterable[int]) -> str:
        """The text of the operation with only the root fields ``indexes`` (cached)."""
        key = tuple(sorted(set(indexes)))
        text = self._texts.get(key)
        if text is None:
            text = self._print(key)
            if len(self._texts) < 256:
                self._texts[key] = text
        return text

    def _print(self, indexes: tuple[int, ...]) -> str:
        chosen = [self.fields[i] for i in indexes]
        variables: set[str] = set()
        fragments: set[str] = set()
        internal: list[VariableDefinitionNode] = []
        for root in chosen:
            variables |= root.variables
            fragments |= root.fragments
            internal.extend(root.internal_definitions)
        definitions = [d for n, d in self._definitions.items() if n in variables] + internal
        operation = OperationDefinitionNode(
            operation=self.operation.operation,
            name=self.operation.name,
            variable_definitions=tuple(definitions),
            directives=self.operation.directives,
            selection_set=SelectionSetNode(selections=tuple(r.node for r in chosen)),
        )
        used = [self.fragments[n] for n in self.fragments if n in fragments]
        return print_ast(DocumentNode(definitions=(operation, *used)))

    def used_variables(self, indexes: Iterable[int]) -> set[str]:
        out: set[str] = set()
        for i in indexes:
            out |= self.fields[i].variables
        return out


# -- AST helpers -----------------------------------------------------------------------------


def _name(value: str) -> NameNode:
    return NameNode(value=value)


def _field(
    name: str, alias: str | None = None, selections: Iterable[SelectionNode] = ()
) -> FieldNode:
    selection_list = tuple(selections)
    return FieldNode(
        alias=_name(alias) if alias else None,
        name=_name(name),
        arguments=(),
        directives=(),
        selection_set=SelectionSetNode(selections=selection_list) if selection_list else None,
    )


def _variable_definition(name: str, type_text: str) -> VariableDefinitionNode:
    nullable = type_text.rstrip("!")
    type_node: Any
    if nullable.startswith("["):
        inner = nullable[1:-1]
        inner_node: Any = NamedTypeNode(name=_name(inner.rstrip("!")))
        if inner.endswith("!"):
            inner_node = NonNullTypeNode(type=inner_node)
        type_node = ListTypeNode(type=inner_node)
    else:
        type_node = NamedTypeNode(name=_name(nullable))
    if type_text.endswith("!"):
        type_node = NonNullTypeNode(type=type_node)
    return VariableDefinitionNode(
        variable=VariableNode(name=_name(name)), type=type_node, directives=()
    )


def _values_variables(value: ValueNode, out: set[str]) -> None:
    if isinstance(value, VariableNode):
        out.add(value.name.value)
    elif isinstance(value, ListValueNode):
        for item in value.values:
            _values_variables(item, out)
    elif isinstance(value, ObjectValueNode):
        for object_field in value.fields:
            _values_variables(object_field.value, out)


def _directives_variables(directives: Iterable[DirectiveNode] | None, out: set[str]) -> None:
    for directive in directives or ():
        for argument in directive.arguments or ():
            _values_variables(argument.value, out)


def _usage(
    selections: Iterable[SelectionNode], variables: set[str], fragments: set[str]
) -> None:
    """Variables and fragment names used directly under ``selections``."""
    for sel in selections:
        _directives_variables(sel.directives, variables)
        if isinstance(sel, FieldNode):
            for argument in sel.arguments or ():
                _values_variables(argument.value, variables)
            if sel.selection_set is not None:
                _usage(sel.selection_set.selections, variables, fragments)
        elif isinstance(sel, InlineFragmentNode):
            _usage(sel.selection_set.selections, variables, fragments)
        elif isinstance(sel, FragmentSpreadNode):
            fragments.add(sel.name.value)


def _fragment_closure(
    fragments: Mapping[str, FragmentDefinitionNode],
) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Per fragment: (variables, fragments) used by it and every fragment it spreads."""
    direct: dict[str, tuple[set[str], set[str]]] = {}
    for name, definition in fragments.items():
        variables: set[str] = set()
        spreads: set[str] = set()
        _usage(definition.selection_set.selections, variables, spreads)
        direct[name] = (variables, spreads)
    closure: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for name in fragments:
        seen: set[str] = set()
        variables = set()
        stack = [name]
        while stack:
            current = stack.pop()
            if current in seen or current not in direct:
                continue
            seen.add(current)
            variables |= direct[current][0]
            stack.extend(direct[current][1])
        closure[name] = (frozenset(variables), frozenset(seen))
    return closure


def collect_fields(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]
) -> dict[str, list[FieldNode]]:
    """Fields by response key with fragments expanded (type conditions are not checked: inside
    an object type every fragment that passed validation applies)."""
    out: dict[str, list[FieldNode]] = {}

    def walk(selections: Iterable[SelectionNode], seen: frozenset[str]) -> None:
        for sel in selections:
            if isinstance(sel, FieldNode):
                key = sel.alias.value if sel.alias else sel.name.value
                out.setdefault(key, []).append(sel)
            elif isinstance(sel, InlineFragmentNode):
                walk(sel.selection_set.selections, seen)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                if name in fragments and name not in seen:
                    walk(fragments[name].selection_set.selections, seen | {name})

    if selection_set is not None:
        walk(selection_set.selections, frozenset())
    return out


def _merged_selection(nodes: list[FieldNode]) -> SelectionSetNode | None:
    selections = [s for n in nodes if n.selection_set for s in n.selection_set.selections]
    return SelectionSetNode(selections=tuple(selections)) if selections else None


# -- analysis --------------------------------------------------------------------------------


def analyze(
    query: str, operation_name: str | None, routing: RealmRouting
) -> OperationAnalysis:
    """Parse and route one subgraph operation; :class:`OperationError` if it cannot be."""
    try:
        document = parse(query, no_location=True)
    except GraphQLError as exc:
        raise OperationError(f"the subgraph operation does not parse: {exc.message}") from None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        raise OperationError("the subgraph request must name exactly one operation")
    operation = operations[0]
    if operation.operation == OperationType.SUBSCRIPTION:
        raise OperationError("subscriptions cannot be routed to realms", "OPERATION_NOT_SUPPORTED")
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    closure = _fragment_closure(fragments)
    root_type = routing.root_type(operation.operation.value)
    root_name = root_type.name if root_type is not None else operation.operation.value.title()

    by_key: dict[str, list[FieldNode]] = {}
    for sel in _root_selections(operation.selection_set.selections, fragments):
        by_key.setdefault(sel.alias.value if sel.alias else sel.name.value, []).append(sel)
    fields: list[RootField] = []
    for key, nodes in by_key.items():
        first = nodes[0]
        node = FieldNode(
            alias=first.alias,
            name=first.name,
            arguments=first.arguments,
            directives=first.directives,
            selection_set=_merged_selection(nodes),
        )
        root = _route(len(fields), key, node, root_name, operation, routing, fragments)
        variables: set[str] = set()
        spreads: set[str] = set()
        _usage([root.node], variables, spreads)
        used_fragments: set[str] = set()
        for spread in spreads:
            fragment_variables, fragment_names = closure.get(spread, (frozenset(), frozenset()))
            variables |= fragment_variables
            used_fragments |= fragment_names
        internal = {d.variable.name.value for d in root.internal_definitions}
        root.variables = frozenset(variables - internal)
        root.fragments = frozenset(used_fragments)
        fields.append(root)
    return OperationAnalysis(operation, fields, fragments, closure)


def _root_selections(
    selections: Iterable[SelectionNode], fragments: Mapping[str, FragmentDefinitionNode]
) -> list[FieldNode]:
    out: list[FieldNode] = []
    for sel in selections:
        if isinstance(sel, FieldNode):
            out.append(sel)
            continue
        if sel.directives:
            raise OperationError("directives on root-level fragments cannot be routed to realms")
        if isinstance(sel, InlineFragmentNode):
            out.extend(_root_selections(sel.selection_set.selections, fragments))
        elif isinstance(sel, FragmentSpreadNode):
            definition = fragments.get(sel.name.value)
            if definition is None:
                raise OperationError(f"unknown fragment {sel.name.value}")
            out.extend(_root_selections(definition.selection_set.selections, fragments))
    return out


def _route(
    index: int,
    key: str,
    node: FieldNode,
    root_name: str,
    operation: OperationDefinitionNode,
    routing: RealmRouting,
    fragments: Mapping[str, FragmentDefinitionNode],
) -> RootField:
    name = node.name.value
    arguments = {a.name.value: a.value for a in node.arguments or ()}
    if name == "__typename":
        return RootField(index, key, name, Kind.TYPENAME, node)
    if name == "_service":
        return RootField(index, key, name, Kind.SERVICE, node)
    if name == "_entities":
        variable = f"{INTERNAL}representations_{index}"
        rewritten = _with_arguments(
            node, {"representations": VariableNode(name=_name(variable))}
        )
        return RootField(
            index, key, name, Kind.ENTITIES, rewritten,
            arguments=arguments,
            representations_variable=variable,
            internal_definitions=(_variable_definition(variable, "[_Any!]!"),),
            entity_selection=node.selection_set,
        )
    try:
        rule = routing.rule(root_name, name)
    except RoutingDeclarationError as exc:
        raise OperationError(f"invalid realm routing declaration: {exc}") from None
    is_mutation = operation.operation == OperationType.MUTATION
    if isinstance(rule, OwnerRouting):
        return RootField(index, key, name, Kind.OWNER, node, owner=rule, arguments=arguments)
    if is_mutation:
        raise OperationError(
            f"Mutation field {root_name}.{name} of the realm subgraph has no "
            "@realmOwner: a mutation must name the one realm it changes",
            "REALM_ROUTING_UNSUPPORTED",
        )
    if isinstance(rule, FanoutRouting):
        return _fanout(index, key, node, rule, arguments, fragments)
    return RootField(index, key, name, Kind.UNIQUE, node, arguments=arguments)


def _with_arguments(node: FieldNode, values: Mapping[str, ValueNode]) -> FieldNode:
    kept = [a for a in node.arguments or () if a.name.value not in values]
    added = [ArgumentNode(name=_name(n), value=v) for n, v in values.items()]
    return FieldNode(
        alias=node.alias,
        name=node.name,
        arguments=tuple(kept + added),
        directives=node.directives,
        selection_set=node.selection_set,
    )


def _with_selections(node: FieldNode, extra: Iterable[SelectionNode]) -> FieldNode:
    existing = tuple(node.selection_set.selections) if node.selection_set else ()
    return FieldNode(
        alias=node.alias,
        name=node.name,
        arguments=node.arguments,
        directives=node.directives,
        selection_set=SelectionSetNode(selections=existing + tuple(extra)),
    )


def _order_fields(rule: FanoutRouting) -> tuple[list[FieldNode], tuple[str, ...], str | None]:
    order_keys = tuple(f"{INTERNAL}o{i}" for i in range(len(rule.order_by)))
    extra = [_field(f, k) for f, k in zip(rule.order_by, order_keys, strict=True)]
    id_key = ID_KEY if rule.has_id else None
    if id_key:
        extra.append(_field("id", id_key))
    return extra, order_keys, id_key


def _fanout(
    index: int,
    key: str,
    node: FieldNode,
    rule: FanoutRouting,
    arguments: dict[str, ValueNode],
    fragments: Mapping[str, FragmentDefinitionNode],
) -> RootField:
    extra, order_keys, id_key = _order_fields(rule)
    shape = rule.connection
    if shape is None:
        return RootField(
            index, key, node.name.value, Kind.FANOUT, _with_selections(node, extra),
            fanout=rule, arguments=arguments, order_keys=order_keys, id_key=id_key,
        )
    after_variable = f"{INTERNAL}after_{index}"
    rewritten = _with_arguments(
        node, {shape.after_argument: VariableNode(name=_name(after_variable))}
    )
    node_fields = extra or [_field("__typename")]
    internal_edges = _field(
        "edges", EDGES_KEY, [_field("cursor", CURSOR_KEY), _field("node", NODE_KEY, node_fields)]
    )
    internal_page_info = _field("pageInfo", PAGE_INFO_KEY, [_field("hasNextPage")])
    rewritten = _with_selections(rewritten, [internal_edges, internal_page_info])
    return RootField(
        index, key, node.name.value, Kind.FANOUT, rewritten,
        fanout=rule,
        arguments=arguments,
        order_keys=order_keys,
        id_key=id_key,
        after_variable=after_variable,
        internal_definitions=(_variable_definition(after_variable, shape.after_type),),
        connection_keys=_connection_keys(node.selection_set, fragments),
    )


def _connection_keys(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]
) -> ConnectionKeys:
    edges: dict[str, frozenset[str]] = {}
    page_info: dict[str, dict[str, str]] = {}
    total: set[str] = set()
    for key, nodes in collect_fields(selection_set, fragments).items():
        name = nodes[0].name.value
        if name == "edges":
            inner = collect_fields(_merged_selection(nodes), fragments)
            edges[key] = frozenset(k for k, n in inner.items() if n[0].name.value == "cursor")
        elif name == "pageInfo":
            inner = collect_fields(_merged_selection(nodes), fragments)
            page_info[key] = {k: n[0].name.value for k, n in inner.items()}
        elif name == "totalCount":
            total.add(key)
    return ConnectionKeys(edges, page_info, frozenset(total))
