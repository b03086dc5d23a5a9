"""The query planner: a validated operation -> a plan of subgraph fetches (Apollo vocabulary).

The plan is a tree of :class:`SequenceNode`, :class:`ParallelNode`, :class:`FetchNode` and
:class:`FlattenNode`. Planning walks the client's selections with a *current subgraph*: a field is
resolved where we are when that subgraph can resolve it (and everything below it); otherwise the
planner jumps to another subgraph through an entity ``@key``: key fields (and ``__typename``)
are added to the current fetch, and the field goes into an ``_entities`` fetch of the other
subgraph, flattened at the response path. There is one such fetch per (parent fetch, path,
subgraph), so all representations of one hop travel in one batched ``_entities`` call.

Fields the planner adds (key and ``@requires`` fields) travel under internal aliases
(:func:`internal_alias`), so they never clash with a client's alias. Where two fields of one
subgraph operation would share a response key with different types or arguments (possible across
inline fragments), :func:`_resolve_conflicts` aliases one of them and the fetch carries the
renames the executor undoes. When no one subgraph resolves everything below a field (a shared
root or value type), its selections are split over several subgraphs (:meth:`_Builder._split`);
keys whose fields live in other subgraphs are gathered like ``@requires`` before the hop.

``@skip``/``@include`` are evaluated at planning time with the request's variables; the plan cache
key therefore includes the boolean values of the variables those directives use (see
:func:`plan_cache_key`), and subgraph operations never carry those directives.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import OrderedDict, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ArgumentNode,
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    ListValueNode,
    NameNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
    VariableNode,
    print_ast,
)

from pek.router.supergraph import FieldMeta, Key, Supergraph

INTROSPECTION_ROOT_FIELDS = frozenset({"__schema", "__type"})


class PlanningError(Exception):
    """The operation cannot be planned against this supergraph (a composition gap, not a client
    error: the operation was valid against the API schema)."""


# -- selections inside subgraph fetches ------------------------------------------------------


@dataclass(eq=False, slots=True)
class PField:
    """A field in a subgraph fetch (arguments are kept as AST values, variables included)."""

    name: str
    alias: str | None = None
    arguments: tuple[ArgumentNode, ...] = ()
    selections: list[PSelection] | None = None

    @property
    def response_key(self) -> str:
        return self.alias or self.name


@dataclass(eq=False, slots=True)
class PInlineFragment:
    """``... on Type { ... }`` in a subgraph fetch or a representation selection."""

    type_condition: str
    selections: list[PSelection] = field(default_factory=list)


PSelection = PField | PInlineFragment


def _args_text(arguments: tuple[ArgumentNode, ...]) -> str:
    if not arguments:
        return ""
    return "(" + ", ".join(f"{a.name.value}: {print_ast(a.value)}" for a in arguments) + ")"


def add_field(target: list[PSelection], new: PField) -> PField:
    """Add ``new`` to ``target`` unless the same field (key, name, arguments) is there already."""
    args = _args_text(new.arguments)
    for existing in target:
        if (
            isinstance(existing, PField)
            and existing.response_key == new.response_key
            and existing.name == new.name
            and _args_text(existing.arguments) == args
        ):
            if new.selections is not None and existing.selections is None:
                existing.selections = []
            if new.selections:
                assert existing.selections is not None
                merge_selections(existing.selections, new.selections)
            return existing
    target.append(new)
    return new


def add_inline(target: list[PSelection], type_condition: str) -> PInlineFragment:
    for existing in target:
        if isinstance(existing, PInlineFragment) and existing.type_condition == type_condition:
            return existing
    fragment = PInlineFragment(type_condition)
    target.append(fragment)
    return fragment


def merge_selections(target: list[PSelection], source: list[PSelection]) -> None:
    for sel in source:
        if isinstance(sel, PField):
            copy = PField(sel.name, sel.alias, sel.arguments, None)
            merged = add_field(target, copy)
            if sel.selections is not None:
                if merged.selections is None:
                    merged.selections = []
                merge_selections(merged.selections, sel.selections)
        else:
            merge_selections(add_inline(target, sel.type_condition).selections, sel.selections)


INTERNAL_ALIAS_PREFIX = "_pek_"


def internal_alias(name: str, arguments: tuple[ArgumentNode, ...] = ()) -> str:
    """The response key of a field the planner adds (keys, ``@requires``): never a client's key,
    so a client alias (``id: name``) cannot clash with it; arguments get their own key."""
    if not arguments:
        return INTERNAL_ALIAS_PREFIX + name
    digest = hashlib.blake2s(_args_text(arguments).encode(), digest_size=4).hexdigest()
    return f"{INTERNAL_ALIAS_PREFIX}{name}_{digest}"


def internal_selections(selections: list[PSelection]) -> list[PSelection]:
    """``selections`` with their top-level fields under internal aliases (nested fields live in
    objects only the router reads, so they keep their names)."""
    out: list[PSelection] = []
    for sel in selections:
        if isinstance(sel, PField):
            if sel.name == "__typename":
                out.append(sel)
            else:
                out.append(
                    PField(
                        sel.name,
                        internal_alias(sel.name, sel.arguments),
                        sel.arguments,
                        sel.selections,
                    )
                )
        else:
            out.append(PInlineFragment(sel.type_condition, internal_selections(sel.selections)))
    return out


def internal_field_nodes(selection_set: SelectionSetNode) -> tuple[SelectionNode, ...]:
    """A field set's top-level fields as client-like field nodes under internal aliases."""
    out: list[SelectionNode] = []
    for node in selection_set.selections:
        if isinstance(node, FieldNode):
            if node.name.value == "__typename":
                out.append(node)
                continue
            alias = internal_alias(node.name.value, tuple(node.arguments or ()))
            out.append(
                FieldNode(
                    alias=NameNode(value=alias),
                    name=node.name,
                    arguments=node.arguments,
                    directives=node.directives,
                    selection_set=node.selection_set,
                )
            )
        elif isinstance(node, InlineFragmentNode):
            out.append(
                InlineFragmentNode(
                    type_condition=node.type_condition,
                    directives=node.directives,
                    selection_set=SelectionSetNode(
                        selections=internal_field_nodes(node.selection_set)
                    ),
                )
            )
    return tuple(out)


def selections_from_field_set(selection_set: SelectionSetNode) -> list[PSelection]:
    """A ``FieldSet`` (key, requires) as fetch selections."""
    result: list[PSelection] = []
    for node in selection_set.selections:
        if isinstance(node, FieldNode):
            sub = selections_from_field_set(node.selection_set) if node.selection_set else None
            result.append(PField(node.name.value, None, tuple(node.arguments or ()), sub))
        elif isinstance(node, InlineFragmentNode) and node.type_condition:
            result.append(
                PInlineFragment(
                    node.type_condition.name.value, selections_from_field_set(node.selection_set)
                )
            )
    return result


def print_selections(selections: list[PSelection]) -> str:
    """Compact text of a selection set (``{a b{c}}``); empty composites get ``__typename``."""
    parts: list[str] = []
    for sel in selections:
        if isinstance(sel, PField):
            text = (f"{sel.alias}:" if sel.alias else "") + sel.name + _args_text(sel.arguments)
            if sel.selections is not None:
                text += print_selections(sel.selections)
            parts.append(text)
        elif sel.selections:
            parts.append(f"...on {sel.type_condition}{print_selections(sel.selections)}")
    if not parts:
        return "{__typename}"
    return "{" + " ".join(parts) + "}"


def selections_to_json(selections: list[PSelection]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for sel in selections:
        if isinstance(sel, PField):
            item: dict[str, Any] = {"kind": "Field", "name": sel.name}
            if sel.alias:
                item["alias"] = sel.alias
            if sel.selections is not None:
                item["selections"] = selections_to_json(sel.selections)
            out.append(item)
        else:
            out.append(
                {
                    "kind": "InlineFragment",
                    "typeCondition": sel.type_condition,
                    "selections": selections_to_json(sel.selections),
                }
            )
    return out


def _variables_in(value: Any, found: list[str]) -> None:
    if isinstance(value, VariableNode):
        if value.name.value not in found:
            found.append(value.name.value)
    elif isinstance(value, ListValueNode):
        for item in value.values:
            _variables_in(item, found)
    elif isinstance(value, ObjectValueNode):
        for object_field in value.fields:
            _variables_in(object_field.value, found)


def variables_used(selections: list[PSelection], found: list[str] | None = None) -> list[str]:
    found = [] if found is None else found
    for sel in selections:
        if isinstance(sel, PField):
            for arg in sel.arguments:
                _variables_in(arg.value, found)
        if sel.selections:
            variables_used(sel.selections, found)
    return found


# -- plan nodes ------------------------------------------------------------------------------

#: response key in a subgraph's answer -> (response key it stands for or None, nested renames)
RenameTree = dict[str, tuple[str | None, "RenameTree"]]


@dataclass(frozen=True, slots=True)
class FetchNode:
    """One request to one subgraph. ``requires`` is set for ``_entities`` fetches: the selection
    that builds each representation from the data at the flatten path."""

    subgraph: str
    operation: str
    operation_kind: str
    operation_name: str | None
    variable_usages: tuple[str, ...]
    requires: tuple[PInlineFragment, ...] | None = None
    id: int = 0
    #: fields the planner aliased to keep the subgraph operation valid (two fields with one
    #: response key but different types or arguments): the executor renames them back
    renames: RenameTree | None = None


@dataclass(frozen=True, slots=True)
class FlattenNode:
    """Runs ``node`` for the objects found at ``path`` (``@`` walks into lists)."""

    path: tuple[str, ...]
    node: FetchNode


@dataclass(frozen=True, slots=True)
class BatchFetchNode:
    """Several ``_entities`` fetches of one subgraph that run at the same point, sent as one
    request: each part travels in the aliased field ``_e<aliases[i]>`` whose representations
    are in the variable ``$_pek_representations<aliases[i]>``. Each part keeps its own flatten
    path, representation selection (``requires``) and renames, so answers and error paths map
    back exactly as if the parts had been sent one by one."""

    subgraph: str
    operation: str
    operation_name: str | None
    variable_usages: tuple[str, ...]
    parts: tuple[FlattenNode, ...]
    #: for each part, the index of the ``_entities`` field it travels in: parts with the same
    #: selections and representations share one (their representations deduplicated together)
    aliases: tuple[int, ...] = ()
    id: int = 0


def batch_alias(index: int) -> str:
    """Response key of part ``index`` of a :class:`BatchFetchNode`."""
    return f"_e{index}"


def batch_variable(index: int) -> str:
    """Name of the representations variable of part ``index`` of a :class:`BatchFetchNode`."""
    return f"{INTERNAL_ALIAS_PREFIX}representations{index}"


@dataclass(frozen=True, slots=True)
class SequenceNode:
    nodes: tuple[PlanNode, ...]


@dataclass(frozen=True, slots=True)
class ParallelNode:
    nodes: tuple[PlanNode, ...]


PlanNode = FetchNode | FlattenNode | BatchFetchNode | SequenceNode | ParallelNode


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """The plan of one operation plus what the executor needs to shape the response."""

    node: PlanNode | None
    operation: OperationDefinitionNode
    fragments: Mapping[str, FragmentDefinitionNode]
    root_type: str
    has_introspection: bool = False

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON, in the shape of Apollo's ``extensions.queryPlan``."""
        return {"kind": "QueryPlan", "node": node_to_json(self.node) if self.node else None}


def node_to_json(node: PlanNode) -> dict[str, Any]:
    if isinstance(node, SequenceNode):
        return {"kind": "Sequence", "nodes": [node_to_json(n) for n in node.nodes]}
    if isinstance(node, ParallelNode):
        return {"kind": "Parallel", "nodes": [node_to_json(n) for n in node.nodes]}
    if isinstance(node, FlattenNode):
        return {"kind": "Flatten", "path": list(node.path), "node": node_to_json(node.node)}
    if isinstance(node, BatchFetchNode):
        # Apollo's plans have no batch node; this follows the Flatten/Fetch vocabulary
        batch: dict[str, Any] = {
            "kind": "BatchFetch",
            "serviceName": node.subgraph,
            "variableUsages": list(node.variable_usages),
            "operation": node.operation,
            "operationKind": "query",
        }
        if node.operation_name:
            batch["operationName"] = node.operation_name
        batch["entityBatch"] = [
            {
                "alias": batch_alias(alias),
                "representationsVariable": batch_variable(alias),
                "path": list(part.path),
                "requires": selections_to_json(list(part.node.requires or ())),
            }
            for alias, part in zip(node.aliases, node.parts, strict=True)
        ]
        return batch
    out: dict[str, Any] = {
        "kind": "Fetch",
        "serviceName": node.subgraph,
        "variableUsages": list(node.variable_usages),
        "operation": node.operation,
        "operationKind": node.operation_kind,
    }
    if node.operation_name:
        out["operationName"] = node.operation_name
    if node.requires is not None:
        out["requires"] = selections_to_json(list(node.requires))
    return out


# -- fetch groups: the planner's working state -----------------------------------------------


@dataclass(eq=False)
class _FetchGroup:
    id: int
    subgraph: str
    merge_at: tuple[str, ...]
    is_entity: bool
    parent: _FetchGroup | None
    selections: list[PSelection] = field(default_factory=list)
    requires: list[PSelection] = field(default_factory=list)
    deps: list[_FetchGroup] = field(default_factory=list)
    children: dict[tuple[tuple[str, ...], str], _FetchGroup] = field(default_factory=dict)


def directive_included(node: Any, variables: Mapping[str, Any]) -> bool:
    """Evaluate ``@skip``/``@include`` on a selection with the request's variables."""
    for directive in node.directives or ():
        name = directive.name.value
        if name not in ("skip", "include"):
            continue
        value: Any = None
        for arg in directive.arguments or ():
            if arg.name.value == "if":
                if isinstance(arg.value, VariableNode):
                    value = variables.get(arg.value.name.value)
                elif isinstance(arg.value, BooleanValueNode):
                    value = arg.value.value
        if name == "skip" and value is True:
            return False
        if name == "include" and value is not True:
            return False
    return True


def conditional_variables(document: DocumentNode) -> tuple[str, ...]:
    """Names of the variables used by ``@skip``/``@include`` anywhere in the document."""
    names: list[str] = []

    def walk(selection_set: SelectionSetNode | None) -> None:
        if selection_set is None:
            return
        for sel in selection_set.selections:
            for directive in sel.directives or ():
                if directive.name.value in ("skip", "include"):
                    for arg in directive.arguments or ():
                        if (
                            isinstance(arg.value, VariableNode)
                            and arg.value.name.value not in names
                        ):
                            names.append(arg.value.name.value)
            walk(getattr(sel, "selection_set", None))

    for definition in document.definitions:
        walk(getattr(definition, "selection_set", None))
    return tuple(names)


class _Builder:
    """Plans one operation into fetch groups."""

    def __init__(
        self,
        supergraph: Supergraph,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self.sg = supergraph
        self.schema = supergraph.api_schema
        self.fragments = fragments
        self.variables = variables
        self.groups: list[_FetchGroup] = []
        self.roots: list[_FetchGroup] = []
        self._touched: list[set[int]] = []
        self._excluded: list[_FetchGroup] = []
        self._obtainable: dict[tuple[str, str, str, str], bool] = {}
        self._gathering: list[Key] = []  # keys whose fields are being planned
        #: object path -> subgraphs that could equally have resolved the objects there
        self._alternatives: dict[tuple[str, ...], frozenset[str]] = {}

    # groups

    def _new_group(
        self, subgraph: str, merge_at: tuple[str, ...], parent: _FetchGroup | None
    ) -> _FetchGroup:
        group = _FetchGroup(len(self.groups), subgraph, merge_at, parent is not None, parent)
        if parent is not None:
            group.deps.append(parent)
        self.groups.append(group)
        return group

    def root_group(self, subgraph: str) -> _FetchGroup:
        for group in self.roots:
            if group.subgraph == subgraph:
                return group
        group = self._new_group(subgraph, (), None)
        self.roots.append(group)
        return group

    def _entity_group(
        self, parent: _FetchGroup, path: tuple[str, ...], subgraph: str, fresh: bool = False
    ) -> _FetchGroup:
        key = (path, subgraph)
        group = parent.children.get(key)
        if group is None or fresh or any(group is g for g in self._excluded):
            # a group whose @requires are being planned cannot fetch its own requirements
            group = self._new_group(subgraph, path, parent)
            if key in parent.children:
                key = (path, f"{subgraph}#{group.id}")
            parent.children[key] = group
        return group

    # type helpers

    def _applies(self, condition: str, runtime: str) -> bool:
        return condition == runtime or runtime in self.sg.possible_types(condition)

    def _is_interface_object(self, type_name: str, graph: str) -> bool:
        meta = self.sg.types.get(type_name)
        return meta is not None and graph in meta.interface_object_graphs

    # resolvability

    def _local(self, graph: str, type_name: str, meta: FieldMeta, provided: set[str]) -> bool:
        if meta.resolvable_in(graph):
            return True
        return meta.name in provided and meta.name in _graph_fields(meta, graph)

    def _key_available(
        self,
        graph: str,
        type_name: str,
        selection_set: SelectionSetNode,
        provided: Mapping[str, Any] | None = None,
    ) -> bool:
        """Are the key's fields resolvable in ``graph`` (or ``@provides``d there)?"""
        for node in selection_set.selections:
            if not isinstance(node, FieldNode):
                return False
            name = node.name.value
            if name == "__typename":
                continue
            meta = self.sg.field(type_name, name)
            if meta is None:
                return False
            is_provided = provided is not None and name in provided
            if not meta.resolvable_in(graph) and not is_provided:
                return False
            if node.selection_set and not self._key_available(
                graph,
                meta.type_name,
                node.selection_set,
                provided.get(name) if provided is not None and is_provided else None,
            ):
                return False
        return True

    def _key_obtainable(self, graph: str, type_name: str, key: Key) -> bool:
        """Can the key's fields be gathered from ``graph``, some of them through other entity
        calls (a key made of fields from several subgraphs)?"""
        cache_key = (graph, type_name, key.graph, key.fields)
        cached = self._obtainable.get(cache_key)
        if cached is not None:
            return cached
        self._obtainable[cache_key] = False  # a key that needs itself is not obtainable
        result = True
        for node in key.selection_set.selections:
            if not isinstance(node, FieldNode):
                result = False
                break
            if node.name.value == "__typename":
                continue
            meta = self.sg.field(type_name, node.name.value)
            if meta is None:
                result = False
                break
            if meta.resolvable_in(graph):
                if not self._feasible(graph, meta, node, {}):
                    result = False
                    break
            elif not self._reachable(graph, type_name, meta):
                result = False
                break
        self._obtainable[cache_key] = result
        return result

    def _edges(
        self, graph: str, cond: str, origin: str, provided: Mapping[str, Any] | None = None
    ) -> list[tuple[str, str, Key]]:
        """Hops from (graph, cond): (next graph, next type condition, key used)."""
        edges: list[tuple[str, str, Key]] = []
        meta = self.sg.types.get(cond)
        if meta is None:
            return edges
        for key in meta.keys:
            if key.graph == graph or not key.resolvable:
                continue
            if self._key_available(graph, cond, key.selection_set, provided):
                edges.append((key.graph, cond, key))
            elif key not in self._gathering and self._key_obtainable(graph, cond, key):
                edges.append((key.graph, cond, key))
        origin_meta = self.sg.types.get(origin)
        if cond == origin and origin_meta is not None and origin_meta.kind == "object":
            for iface in origin_meta.implements:
                imeta = self.sg.types.get(iface)
                if imeta is None or not imeta.interface_object_graphs:
                    continue
                for key in imeta.keys:
                    if key.graph in imeta.interface_object_graphs and key.graph != graph:
                        if key.resolvable and self._key_available(
                            graph, cond, key.selection_set, provided
                        ):
                            edges.append((key.graph, iface, key))
        return edges

    def _targets(self, type_name: str, meta: FieldMeta, graph: str, cond: str) -> bool:
        if cond == type_name:
            return meta.resolvable_in(graph)
        imeta = self.sg.field(cond, meta.name)
        return imeta is not None and imeta.resolvable_in(graph)

    def _routes(
        self,
        group: _FetchGroup,
        type_name: str,
        meta: FieldMeta,
        provided: Mapping[str, Any] | None = None,
    ) -> list[tuple[int, str, str, tuple[str, str, Key]]]:
        """Every subgraph that resolves the field and can be reached through keys from the
        group's subgraph: (hops, subgraph, type condition there, first hop), nearest first."""
        start = (group.subgraph, type_name)
        first: dict[tuple[str, str], tuple[str, str, Key] | None] = {start: None}
        queue: deque[tuple[tuple[str, str], int]] = deque([(start, 0)])
        found: list[tuple[int, str, str, tuple[str, str, Key]]] = []
        while queue:
            state, depth = queue.popleft()
            edges = self._edges(state[0], state[1], type_name, provided if depth == 0 else None)
            for next_graph, next_cond, key in edges:
                nxt = (next_graph, next_cond)
                if nxt in first:
                    continue
                hop = first[state] or (next_graph, next_cond, key)
                first[nxt] = hop
                if self._targets(type_name, meta, next_graph, next_cond):
                    found.append((depth + 1, next_graph, next_cond, hop))
                queue.append((nxt, depth + 1))
        order = list(self.sg.subgraphs)
        found.sort(key=lambda r: (r[0], order.index(r[1])))
        return found

    def _best_route(
        self,
        group: _FetchGroup,
        path: tuple[str, ...],
        routes: list[tuple[int, str, str, tuple[str, str, Key]]],
    ) -> tuple[str, str, Key]:
        shortest = routes[0][0]
        order = list(self.sg.subgraphs)

        def score(hop: tuple[str, str, Key]) -> tuple[int, int, int]:
            existing = (path, hop[0]) in group.children
            direct = self._key_available(group.subgraph, hop[1], hop[2].selection_set)
            return (0 if direct else 1, 0 if existing else 1, order.index(hop[0]))

        return min((r[3] for r in routes if r[0] == shortest), key=score)

    # walking the client's selections

    def visit(
        self,
        group: _FetchGroup,
        type_name: str,
        path: tuple[str, ...],
        selections: tuple[SelectionNode, ...],
        target: list[PSelection],
        provided: Mapping[str, Any],
    ) -> None:
        graph = group.subgraph
        if (
            self.sg.is_abstract(type_name)
            and not self._is_interface_object(type_name, graph)
            and self.sg.possible_types(type_name)
        ):
            add_field(target, PField("__typename"))
            runtimes = self.sg.possible_types(type_name, graph)
            alternatives = self._alternatives.get(path)
            if alternatives and self.sg.types[type_name].kind == "union":
                # a shared path another subgraph could have resolved: only the members all of
                # them know are safe to select (as Apollo's planner does)
                for other in alternatives - {graph}:
                    members = self.sg.possible_types(type_name, other)
                    runtimes = [r for r in runtimes if r in members]
            for runtime in runtimes:
                fragment = add_inline(target, runtime)
                self.visit(group, runtime, path, selections, fragment.selections, provided)
            return
        for sel in selections:
            if not directive_included(sel, self.variables):
                continue
            if isinstance(sel, FieldNode):
                if sel.name.value == "__typename":
                    if self._is_interface_object(type_name, graph):
                        self._jump_for_typename(group, type_name, path, (sel,), target)
                    else:
                        add_field(
                            target, PField("__typename", sel.alias.value if sel.alias else None)
                        )
                    continue
                self.handle_field(group, type_name, path, sel, target, provided)
                continue
            if isinstance(sel, InlineFragmentNode):
                condition = sel.type_condition.name.value if sel.type_condition else type_name
                sub = sel.selection_set.selections
            else:
                assert isinstance(sel, FragmentSpreadNode)
                fragment_def = self.fragments[sel.name.value]
                condition = fragment_def.type_condition.name.value
                sub = fragment_def.selection_set.selections
            if condition == type_name or self._applies(condition, type_name):
                self.visit(group, type_name, path, sub, target, provided)
            elif self._is_interface_object(type_name, graph) and self._applies(
                type_name, condition
            ):
                self._jump_for_typename(group, type_name, path, (sel,), target)

    def _jump_for_typename(
        self,
        group: _FetchGroup,
        type_name: str,
        path: tuple[str, ...],
        selections: tuple[SelectionNode, ...],
        target: list[PSelection],
    ) -> None:
        """In an ``@interfaceObject`` subgraph the concrete type is unknown: ask a subgraph that
        has the real interface (through the interface's key)."""
        meta = self.sg.types[type_name]
        for key in meta.keys:
            if key.graph in meta.interface_object_graphs or not key.resolvable:
                continue
            if not self._key_available(group.subgraph, type_name, key.selection_set):
                continue
            dep = self._hop(group, type_name, path, key, type_name, target)
            fragment = add_inline(dep.selections, type_name)
            add_field(fragment.selections, PField("__typename"))
            self.visit(dep, type_name, path, selections, fragment.selections, {})
            return
        raise PlanningError(f"no subgraph can resolve the concrete type of {type_name}")

    def _hop(
        self,
        group: _FetchGroup,
        type_name: str,
        path: tuple[str, ...],
        key: Key,
        condition: str,
        target: list[PSelection],
        fresh: bool = False,
        provided: Mapping[str, Any] | None = None,
    ) -> _FetchGroup:
        dep = self._entity_group(group, path, key.graph, fresh)
        add_field(target, PField("__typename"))
        if not self._key_available(group.subgraph, type_name, key.selection_set, provided):
            # some key fields live elsewhere: plan them like @requires before this hop
            representation = add_inline(dep.requires, condition)
            add_field(representation.selections, PField("__typename"))
            self._gathering.append(key)
            try:
                self._plan_requires(
                    group, type_name, path, key.selection_set, target, dep, condition
                )
            finally:
                self._gathering.pop()
            return dep
        key_fields = internal_selections(self._field_set_selections(type_name, key.selection_set))
        merge_selections(target, key_fields)
        self._mark(group)
        representation = add_inline(dep.requires, condition)
        add_field(representation.selections, PField("__typename"))
        merge_selections(representation.selections, key_fields)
        return dep

    def _field_set_selections(
        self, type_name: str, selection_set: SelectionSetNode
    ) -> list[PSelection]:
        """A field set (key, requires) as selections; objects of abstract types also carry
        ``__typename`` (subgraphs need it to read an interface value in a representation)."""
        result: list[PSelection] = []
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                sub: list[PSelection] | None = None
                if node.selection_set:
                    meta = self.sg.field(type_name, node.name.value)
                    child = meta.type_name if meta else type_name
                    sub = []
                    if self.sg.is_abstract(child):
                        sub.append(PField("__typename"))
                    sub.extend(self._field_set_selections(child, node.selection_set))
                result.append(PField(node.name.value, None, tuple(node.arguments or ()), sub))
            elif isinstance(node, InlineFragmentNode) and node.type_condition:
                condition = node.type_condition.name.value
                result.append(
                    PInlineFragment(
                        condition, self._field_set_selections(condition, node.selection_set)
                    )
                )
        return result

    def _mark(self, group: _FetchGroup) -> None:
        for touched in self._touched:
            touched.add(group.id)

    def handle_field(
        self,
        group: _FetchGroup,
        type_name: str,
        path: tuple[str, ...],
        node: FieldNode,
        target: list[PSelection],
        provided: Mapping[str, Any],
    ) -> None:
        name = node.name.value
        meta = self.sg.field(type_name, name)
        if meta is None:
            raise PlanningError(f"unknown field {type_name}.{name}")
        graph = group.subgraph
        local = self._local(graph, type_name, meta, set(provided))
        in_current = meta.graphs.get(graph)
        if local and in_current is not None and in_current.requires is not None:
            # @requires fields are external here: fetch them, then come back with an entity call
            for key in self.sg.types[type_name].keys_in(graph):
                if key.resolvable and self._key_available(graph, type_name, key.selection_set):
                    self._fetch_with_requires(
                        group, type_name, path, node, target, key, type_name, in_current.requires
                    )
                    return
        if local and (node.selection_set is None or self._feasible(graph, meta, node, provided)):
            self._add_local(group, type_name, path, node, target, provided, meta)
            return
        routes = self._routes(group, type_name, meta, provided)
        if node.selection_set is not None and routes:
            feasible = [r for r in routes if self._route_feasible(r, type_name, node)]
            if feasible:
                routes = feasible
            elif self._plan_split(group, type_name, path, node, target, provided, local, routes):
                return
        if not routes:
            if local:
                self._add_local(group, type_name, path, node, target, provided, meta)
                return
            raise PlanningError(f"no subgraph can resolve {type_name}.{name} from {graph!r}")
        if self._hop_depth(group, path) > 2 * len(self.sg.subgraphs):
            raise PlanningError(f"no subgraph can resolve all of {type_name}.{name}")
        route = self._best_route(group, path, routes)
        self._follow(group, type_name, path, node, target, route, provided)

    def _route_feasible(
        self, route: tuple[int, str, str, tuple[str, str, Key]], type_name: str, node: FieldNode
    ) -> bool:
        _, graph, condition, _ = route
        meta = self.sg.field(condition, node.name.value)
        return meta is not None and self._feasible(graph, meta, node, {})

    def _hop_depth(self, group: _FetchGroup, path: tuple[str, ...]) -> int:
        depth = 0
        current: _FetchGroup | None = group
        while current is not None and current.is_entity and current.merge_at == path:
            depth += 1
            current = current.parent
        return depth

    def _plan_split(
        self,
        group: _FetchGroup,
        type_name: str,
        path: tuple[str, ...],
        node: FieldNode,
        target: list[PSelection],
        provided: Mapping[str, Any],
        local: bool,
        routes: list[tuple[int, str, str, tuple[str, str, Key]]],
    ) -> bool:
        """No one subgraph resolves everything below ``node``: fetch the field from several
        (this one and others reached through keys), each with the part it can resolve."""
        graphs = ([group.subgraph] if local else []) + [
            r[1] for r in routes if r[2] == type_name and r[1] != group.subgraph
        ]
        parts = self._split(type_name, node, list(dict.fromkeys(graphs)))
        if not parts or len(parts) < 2:
            return False
        meta = self.sg.field(type_name, node.name.value)
        assert meta is not None
        for graph, part in parts.items():
            if graph == group.subgraph:
                self._add_local(group, type_name, path, part, target, provided, meta)
                continue
            route = self._best_route(group, path, [r for r in routes if r[1] == graph])
            self._follow(group, type_name, path, part, target, route, provided)
        return True

    def _follow(
        self,
        group: _FetchGroup,
        type_name: str,
        path: tuple[str, ...],
        node: FieldNode,
        target: list[PSelection],
        route: tuple[str, str, Key],
        provided: Mapping[str, Any] | None = None,
    ) -> None:
        """Plan ``node`` one key hop away (in the route's first subgraph)."""
        meta = self.sg.field(type_name, node.name.value)
        assert meta is not None
        next_graph, condition, key = route
        in_graph = meta.graphs.get(next_graph) if condition == type_name else None
        requires = (
            in_graph.requires if in_graph is not None and meta.resolvable_in(next_graph) else None
        )
        if requires is not None:
            self._fetch_with_requires(
                group, type_name, path, node, target, key, condition, requires
            )
            return
        dep = self._hop(group, type_name, path, key, condition, target, provided=provided)
        fragment = add_inline(dep.selections, condition)
        self.handle_field(dep, condition, path, node, fragment.selections, {})

    def _fetch_with_requires(
        self,
        group: _FetchGroup,
        type_name: str,
        path: tuple[str, ...],
        node: FieldNode,
        target: list[PSelection],
        key: Key,
        condition: str,
        requires: SelectionSetNode,
    ) -> None:
        """Plan ``node`` in an entity fetch whose representations carry its ``@requires``."""
        next_graph = key.graph
        existing = group.children.get((path, next_graph))
        fresh = False
        if existing is not None:
            wanted = internal_selections(self._field_set_selections(type_name, requires))
            have = [
                f
                for f in existing.requires
                if isinstance(f, PInlineFragment) and f.type_condition == condition
            ]
            # one representation cannot carry a field with two argument sets
            fresh = any(_representation_conflict(f.selections, wanted) for f in have)
        dep = self._hop(group, type_name, path, key, condition, target, fresh)
        self._plan_requires(group, type_name, path, requires, target, dep, condition)
        fragment = add_inline(dep.selections, condition)
        meta = self.sg.field(condition, node.name.value)
        assert meta is not None
        self._add_local(dep, condition, path, node, fragment.selections, {}, meta)

    def _add_local(
        self,
        group: _FetchGroup,
        type_name: str,
        path: tuple[str, ...],
        node: FieldNode,
        target: list[PSelection],
        provided: Mapping[str, Any],
        meta: FieldMeta,
    ) -> None:
        name = node.name.value
        alias = node.alias.value if node.alias else None
        pfield = add_field(
            target,
            PField(name, alias, tuple(node.arguments or ()), [] if node.selection_set else None),
        )
        self._mark(group)
        if node.selection_set is None:
            return
        assert pfield.selections is not None
        child_path = path + (alias or name,) + ("@",) * meta.type_text.count("[")
        child_provided = dict(provided.get(name) or {})
        in_graph = meta.graphs.get(group.subgraph)
        if in_graph is not None and in_graph.provides is not None:
            _merge_tree(child_provided, _field_set_tree(in_graph.provides))
        # the subgraph may declare a narrower type (a union member instead of the union)
        child_type = meta.type_name_in(group.subgraph)
        self._alternatives[child_path] = self._alternatives_for(group, type_name, path, meta)
        if self.sg.is_abstract(meta.type_name):
            # shaping needs the concrete type, even where the subgraph's type is narrower
            add_field(pfield.selections, PField("__typename"))
        if self._is_interface_object(child_type, group.subgraph) and self.sg.possible_types(
            child_type
        ):
            # this subgraph only knows the interface: the concrete type comes from another
            self._jump_for_typename(group, child_type, child_path, (), pfield.selections)
        self.visit(
            group,
            child_type,
            child_path,
            node.selection_set.selections,
            pfield.selections,
            child_provided,
        )

    def _alternatives_for(
        self, group: _FetchGroup, type_name: str, path: tuple[str, ...], meta: FieldMeta
    ) -> frozenset[str]:
        """Subgraphs that could resolve ``meta`` for the objects at ``path``: those that could
        resolve the parent objects, plus those reaching them by a key, that resolve the field."""
        parent = self._alternatives.get(path)
        if parent is None:
            graphs = set(self.sg.subgraphs) if not path else {group.subgraph}
        else:
            graphs = set(parent) | {group.subgraph}
        type_meta = self.sg.types.get(type_name)
        if type_meta is not None:
            graphs |= {k.graph for k in type_meta.keys if k.resolvable}
        return frozenset(g for g in graphs if meta.resolvable_in(g)) | {group.subgraph}

    def _plan_requires(
        self,
        group: _FetchGroup,
        type_name: str,
        path: tuple[str, ...],
        requires: SelectionSetNode,
        target: list[PSelection],
        dep: _FetchGroup,
        condition: str,
    ) -> None:
        self._touched.append(set())
        self._excluded.append(dep)
        self.visit(group, type_name, path, internal_field_nodes(requires), target, {})
        self._excluded.pop()
        touched = self._touched.pop()
        for group_id in sorted(touched):
            other = self.groups[group_id]
            if other is not dep and other not in dep.deps:
                dep.deps.append(other)
        representation = add_inline(dep.requires, condition)
        merge_selections(
            representation.selections,
            internal_selections(self._field_set_selections(type_name, requires)),
        )

    def _feasible(
        self,
        graph: str,
        meta: FieldMeta,
        node: FieldNode,
        provided: Mapping[str, Any],
        depth: int = 0,
    ) -> bool:
        """Can everything below ``node`` be fetched from ``graph`` (entity hops allowed)?"""
        if node.selection_set is None or depth > 20:
            return True
        child_provided = dict(provided.get(meta.name) or {})
        in_graph = meta.graphs.get(graph)
        if in_graph is not None and in_graph.provides is not None:
            _merge_tree(child_provided, _field_set_tree(in_graph.provides))
        child_type = meta.type_name_in(graph)
        if self.sg.is_abstract(child_type) and not self._is_interface_object(child_type, graph):
            runtimes = self.sg.possible_types(child_type, graph)
        else:
            runtimes = [child_type]
        for runtime in runtimes:
            for sub in self._fields_for(runtime, node.selection_set.selections):
                if sub.name.value == "__typename":
                    continue
                sub_meta = self.sg.field(runtime, sub.name.value)
                if sub_meta is None:
                    continue
                if self._local(graph, runtime, sub_meta, set(child_provided)):
                    if not self._feasible(graph, sub_meta, sub, child_provided, depth + 1):
                        return False
                    continue
                if not self._reachable(graph, runtime, sub_meta, child_provided):
                    return False
        return True

    def _reachable(
        self,
        graph: str,
        type_name: str,
        meta: FieldMeta,
        provided: Mapping[str, Any] | None = None,
    ) -> bool:
        seen = {(graph, type_name)}
        queue = deque([(graph, type_name)])
        while queue:
            state = queue.popleft()
            for next_graph, cond, _key in self._edges(
                state[0], state[1], type_name, provided if state == (graph, type_name) else None
            ):
                if self._targets(type_name, meta, next_graph, cond):
                    return True
                if (next_graph, cond) not in seen:
                    seen.add((next_graph, cond))
                    queue.append((next_graph, cond))
        return False

    def _fields_for(self, runtime: str, selections: tuple[SelectionNode, ...]) -> list[FieldNode]:
        out: list[FieldNode] = []
        for sel in selections:
            if not directive_included(sel, self.variables):
                continue
            if isinstance(sel, FieldNode):
                out.append(sel)
            elif isinstance(sel, InlineFragmentNode):
                cond = sel.type_condition.name.value if sel.type_condition else runtime
                if self._applies(cond, runtime):
                    out.extend(self._fields_for(runtime, sel.selection_set.selections))
            elif isinstance(sel, FragmentSpreadNode):
                frag = self.fragments.get(sel.name.value)
                if frag and self._applies(frag.type_condition.name.value, runtime):
                    out.extend(self._fields_for(runtime, frag.selection_set.selections))
        return out

    # root

    def plan_root_field(self, root_type: str, node: FieldNode, group: _FetchGroup | None) -> None:
        """Plan one root field; ``group`` forces the fetch group (mutations)."""
        meta = self.sg.field(root_type, node.name.value)
        if meta is None:
            raise PlanningError(f"unknown root field {root_type}.{node.name.value}")
        if group is None:
            candidates = [g for g in self.sg.subgraphs if meta.resolvable_in(g)]
            if len(candidates) > 1 and not any(
                self._feasible(g, meta, node, {}) for g in candidates
            ):
                # no one subgraph has it all: fetch the shared root field from several
                parts = self._split(root_type, node, candidates)
                if parts:
                    for graph, part in parts.items():
                        group = self.root_group(graph)
                        self.handle_field(group, root_type, (), part, group.selections, {})
                    return
            group = self.root_group(self.choose_root_graph(root_type, node, meta))
        self.handle_field(group, root_type, (), node, group.selections, {})

    def _split(
        self, parent_type: str, node: FieldNode, graphs: list[str]
    ) -> dict[str, FieldNode] | None:
        """Partition a field's selections over ``graphs`` (each part feasible in its subgraph);
        ``None`` when some selection fits none of them."""
        meta = self.sg.field(parent_type, node.name.value)
        if meta is None:
            return None
        candidates = [g for g in graphs if meta.resolvable_in(g)]
        for graph in candidates:
            if self._feasible(graph, meta, node, {}):
                return {graph: node}
        for graph in graphs:
            if graph not in candidates and self._reachable(graph, parent_type, meta):
                if self._feasible(graph, meta, node, {}):
                    return {graph: node}
        child_type = meta.type_name
        if node.selection_set is None or not candidates or self.sg.is_abstract(child_type):
            return None
        parts: dict[str, list[SelectionNode]] = {}
        typenames: list[SelectionNode] = []
        for child in self._fields_for(child_type, node.selection_set.selections):
            if child.name.value == "__typename":
                typenames.append(child)
                continue
            sub = self._split(child_type, child, candidates)
            if sub is None:
                return None
            for graph, part in sub.items():
                parts.setdefault(graph, []).append(part)
        if not parts:
            parts[candidates[0]] = []
        return {
            graph: FieldNode(
                alias=node.alias,
                name=node.name,
                arguments=node.arguments,
                directives=(),
                selection_set=SelectionSetNode(selections=tuple(typenames + selections)),
            )
            for graph, selections in parts.items()
        }

    def choose_root_graph(self, root_type: str, node: FieldNode, meta: FieldMeta) -> str:
        candidates = [g for g in self.sg.subgraphs if meta.resolvable_in(g)]
        if not candidates:
            raise PlanningError(f"no subgraph resolves {root_type}.{meta.name}")
        if len(candidates) == 1:
            return candidates[0]
        existing = {g.subgraph for g in self.roots}

        def cost(graph: str) -> tuple[int, int, int, int]:
            trial = _Builder(self.sg, self.fragments, self.variables)
            trial.variable_definitions = self.variable_definitions
            try:
                trial.plan_root_field(root_type, node, trial.root_group(graph))
                fetches = len(trial.groups)
                # then the least data fetched through entity calls
                moved = sum(_count_fields(g.selections) for g in trial.groups if g.is_entity)
            except PlanningError:
                fetches, moved = 1_000, 0
            return (fetches, moved, 0 if graph in existing else 1, candidates.index(graph))

        return min(candidates, key=cost)

    # output

    def to_plan_node(self, operation_name: str | None, kind: str) -> PlanNode | None:
        if not self.groups:
            return None
        fetches = {g.id: self._fetch_node(g, operation_name, kind) for g in self.groups}

        def wrapped(g: _FetchGroup) -> PlanNode:
            fetch = fetches[g.id]
            return FlattenNode(g.merge_at, fetch) if g.is_entity else fetch

        levels = self._levels()
        batches = self._batches(levels)
        tree_shaped = all(len(g.deps) == (1 if g.parent else 0) for g in self.groups)
        if not batches and tree_shaped:

            def subtree(g: _FetchGroup) -> PlanNode:
                children = [c for c in self.groups if c.parent is g]
                if not children:
                    return wrapped(g)
                return SequenceNode((wrapped(g), _parallel([subtree(c) for c in children])))

            return _parallel([subtree(r) for r in self.roots])
        by_level: dict[int, list[PlanNode]] = {}
        batched = {g.id for batch in batches for g in batch}
        for g in self.groups:
            if g.id not in batched:
                by_level.setdefault(levels[g.id], []).append(wrapped(g))
        for batch in batches:
            node = self._batch_node(batch, fetches, operation_name)
            by_level.setdefault(levels[batch[0].id], []).append(node)
        stages = [_parallel(by_level[i]) for i in sorted(by_level)]
        return stages[0] if len(stages) == 1 else SequenceNode(tuple(stages))

    merge_entity_fetches = True

    def _levels(self) -> dict[int, int]:
        """Stage of each group: one after its latest dependency; then an entity group that
        nothing needs early moves to a later stage where a fetch of its subgraph runs anyway
        (one request less, no stage more)."""
        levels: dict[int, int] = {}

        def level(g: _FetchGroup) -> int:
            if g.id not in levels:
                levels[g.id] = 0
                levels[g.id] = 1 + max((level(d) for d in g.deps), default=-1)
            return levels[g.id]

        for g in self.groups:
            level(g)
        last = max(levels.values())
        dependents: dict[int, list[_FetchGroup]] = {}
        for g in self.groups:
            for d in g.deps:
                dependents.setdefault(d.id, []).append(g)
        for g in sorted(self.groups, key=lambda g: (-levels[g.id], g.id)):
            if not g.is_entity or not self.merge_entity_fetches:
                continue
            after = dependents.get(g.id)
            latest = min(levels[h.id] for h in after) - 1 if after else last
            for candidate in range(latest, levels[g.id], -1):
                if any(
                    o is not g
                    and o.is_entity
                    and o.subgraph == g.subgraph
                    and levels[o.id] == candidate
                    for o in self.groups
                ):
                    levels[g.id] = candidate
                    break
        return levels

    def _batches(self, levels: Mapping[int, int]) -> list[list[_FetchGroup]]:
        """Entity groups of one subgraph in one stage, in plan order (two or more each)."""
        buckets: dict[tuple[int, str], list[_FetchGroup]] = {}
        if not self.merge_entity_fetches:
            return []
        for g in self.groups:
            if g.is_entity:
                buckets.setdefault((levels[g.id], g.subgraph), []).append(g)
        return [b for b in buckets.values() if len(b) > 1]

    def _batch_node(
        self,
        groups: list[_FetchGroup],
        fetches: Mapping[int, FetchNode],
        operation_name: str | None,
    ) -> BatchFetchNode:
        """One request for several entity groups of one subgraph (their fetch nodes are built
        first: conflict aliases are set on the selections by then)."""
        subgraph = groups[0].subgraph
        fields: list[str] = []
        usages: list[str] = []
        by_shape: dict[tuple[str, str], int] = {}
        aliases: list[int] = []
        for g in groups:
            selections = print_selections(g.selections)
            requires = print_selections(g.requires)
            alias = by_shape.get((selections, requires))
            if alias is None:
                alias = by_shape[(selections, requires)] = len(fields)
                fields.append(
                    f"{batch_alias(alias)}:_entities(representations:${batch_variable(alias)})"
                    + selections
                )
                variables_used(g.selections, usages)
            aliases.append(alias)
        definitions = [f"${batch_variable(i)}:[_Any!]!" for i in range(len(fields))]
        definitions += self._definitions(usages)
        name = f"{operation_name}__{subgraph}__{groups[0].id}" if operation_name else None
        header = "query" + (f" {name}" if name else "") + "(" + ",".join(definitions) + ")"
        return BatchFetchNode(
            subgraph=subgraph,
            operation=header + "{" + " ".join(fields) + "}",
            operation_name=name,
            variable_usages=tuple(usages),
            parts=tuple(FlattenNode(g.merge_at, fetches[g.id]) for g in groups),
            aliases=tuple(aliases),
            id=groups[0].id,
        )

    def _fetch_node(self, group: _FetchGroup, operation_name: str | None, kind: str) -> FetchNode:
        root_type = self.sg.root_types.get(kind, "Query")
        renames = _resolve_conflicts(
            self.sg, group.subgraph, [(root_type, group.selections)], itertools.count(1)
        )
        name = f"{operation_name}__{group.subgraph}__{group.id}" if operation_name else None
        if group.is_entity:
            body = (
                "{_entities(representations:$representations)"
                + print_selections(group.selections)
                + "}"
            )
            usages = variables_used(group.selections)
            definitions = ["$representations:[_Any!]!"] + self._definitions(usages)
            op_kind = "query"
        else:
            body = print_selections(group.selections)
            usages = variables_used(group.selections)
            definitions = self._definitions(usages)
            op_kind = kind
        header = op_kind + (f" {name}" if name else "")
        if definitions:
            header += "(" + ",".join(definitions) + ")"
        requires = (
            tuple(s for s in group.requires if isinstance(s, PInlineFragment))
            if group.is_entity
            else None
        )
        return FetchNode(
            subgraph=group.subgraph,
            operation=header + body if (name or definitions or op_kind != "query") else body,
            operation_kind=op_kind,
            operation_name=name,
            variable_usages=tuple(usages),
            requires=requires,
            id=group.id,
            renames=renames or None,
        )

    variable_definitions: Mapping[str, str] = {}

    def _definitions(self, usages: list[str]) -> list[str]:
        return [self.variable_definitions[u] for u in usages if u in self.variable_definitions]


def _resolve_conflicts(
    sg: Supergraph,
    graph: str,
    items: list[tuple[str, list[PSelection]]],
    counter: Iterator[int],
) -> RenameTree:
    """Alias fields that would make the subgraph operation invalid ("fields conflict": one
    response key, different names, arguments or types in this subgraph, as can happen across
    inline fragments of different object types). ``items`` are the selection sets that merge into
    one (parent type, selections); returns what the executor must rename back."""
    tree: RenameTree = {}
    seen: dict[str, tuple[str, str, str]] = {}
    groups: dict[str, list[tuple[str, PField]]] = {}

    def walk(type_name: str, selections: list[PSelection]) -> None:
        for sel in selections:
            if isinstance(sel, PInlineFragment):
                walk(sel.type_condition, sel.selections)
                continue
            meta = sg.field(type_name, sel.name)
            type_text = (
                "String!"
                if sel.name == "__typename"
                else (meta.type_in(graph) if meta is not None else "")
            )
            signature = (sel.name, _args_text(sel.arguments), type_text)
            key = sel.response_key
            first = seen.get(key)
            if first is not None and first != signature:
                original = key
                key = f"{original}__pek{next(counter)}"
                sel.alias = key
                tree[key] = (original, {})
                seen[key] = signature
            elif first is None:
                seen[key] = signature
            child = meta.type_name_in(graph) if meta is not None else type_name
            groups.setdefault(key, []).append((child, sel))

    for type_name, selections in items:
        walk(type_name, selections)
    for key, fields in groups.items():
        children = [(t, f.selections) for t, f in fields if f.selections]
        if not children:
            continue
        sub = _resolve_conflicts(sg, graph, children, counter)
        if sub:
            original = tree[key][0] if key in tree else None
            tree[key] = (original, sub)
    return tree


def _representation_conflict(have: list[PSelection], wanted: list[PSelection]) -> bool:
    """Would merging ``wanted`` into a representation selection put two different fields (other
    arguments) under one representation key?"""
    by_name = {s.name: s for s in have if isinstance(s, PField)}
    for sel in wanted:
        if isinstance(sel, PField):
            other = by_name.get(sel.name)
            if other is None:
                continue
            if _args_text(other.arguments) != _args_text(sel.arguments):
                return True
            if other.selections and sel.selections:
                if _representation_conflict(other.selections, sel.selections):
                    return True
        else:
            for fragment in have:
                if (
                    isinstance(fragment, PInlineFragment)
                    and fragment.type_condition == sel.type_condition
                    and _representation_conflict(fragment.selections, sel.selections)
                ):
                    return True
    return False


def _count_fields(selections: list[PSelection]) -> int:
    return sum(
        (1 if isinstance(sel, PField) else 0) + _count_fields(sel.selections or [])
        for sel in selections
    )


def _parallel(nodes: list[PlanNode]) -> PlanNode:
    return nodes[0] if len(nodes) == 1 else ParallelNode(tuple(nodes))


def _graph_fields(meta: FieldMeta, graph: str) -> set[str]:
    return {meta.name} if graph in meta.graphs else set()


def _field_set_tree(selection_set: SelectionSetNode) -> dict[str, Any]:
    """``@provides`` field set as a tree of names (fragments flattened)."""
    tree: dict[str, Any] = {}
    for node in selection_set.selections:
        if isinstance(node, FieldNode):
            sub = _field_set_tree(node.selection_set) if node.selection_set else {}
            _merge_tree(tree.setdefault(node.name.value, {}), sub)
        elif isinstance(node, InlineFragmentNode):
            _merge_tree(tree, _field_set_tree(node.selection_set))
    return tree


def _merge_tree(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    for name, sub in source.items():
        _merge_tree(target.setdefault(name, {}), sub)


class QueryPlanner:
    """Plans operations against one supergraph."""

    def __init__(self, supergraph: Supergraph, *, merge_entity_fetches: bool = True) -> None:
        self.supergraph = supergraph
        #: batch the ``_entities`` fetches of one subgraph that run at the same stage
        self.merge_entity_fetches = merge_entity_fetches

    def plan(
        self,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any] | None = None,
    ) -> QueryPlan:
        """Plan ``operation`` (validated against the API schema) for the given variable values
        (only those of ``@skip``/``@include`` matter)."""
        variables = variables or {}
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        kind = operation.operation.value
        root_type = self.supergraph.root_types.get(kind)
        if root_type is None:
            raise PlanningError(f"the supergraph has no {kind} type")
        builder = _Builder(self.supergraph, fragments, variables)
        builder.merge_entity_fetches = self.merge_entity_fetches
        builder.variable_definitions = {
            v.variable.name.value: print_ast(v) for v in operation.variable_definitions or ()
        }
        root_fields = _root_fields(operation.selection_set, fragments, variables, root_type, self)
        has_introspection = any(f.name.value in INTROSPECTION_ROOT_FIELDS for f in root_fields)
        planned = [f for f in root_fields if not f.name.value.startswith("__")]
        if kind == "mutation":
            node = self._plan_mutation(builder, root_type, planned, operation)
        else:
            for f in planned:
                builder.plan_root_field(root_type, f, None)
            op_name = operation.name.value if operation.name else None
            node = builder.to_plan_node(op_name, kind)
        return QueryPlan(node, operation, fragments, root_type, has_introspection)

    def _plan_mutation(
        self,
        builder: _Builder,
        root_type: str,
        fields: list[FieldNode],
        operation: OperationDefinitionNode,
    ) -> PlanNode | None:
        """Mutation root fields run in order: consecutive fields of one subgraph share a fetch
        (the subgraph runs them serially), each step waits for the previous one."""
        steps: list[PlanNode] = []
        op_name = operation.name.value if operation.name else None
        current: _Builder | None = None
        for f in fields:
            meta = self.supergraph.field(root_type, f.name.value)
            if meta is None:
                raise PlanningError(f"unknown mutation field {f.name.value}")
            graph = builder.choose_root_graph(root_type, f, meta)
            if current is None or current.roots[0].subgraph != graph:
                if current is not None:
                    node = current.to_plan_node(op_name, "mutation")
                    if node:
                        steps.append(node)
                current = _Builder(self.supergraph, builder.fragments, builder.variables)
                current.variable_definitions = builder.variable_definitions
                current.merge_entity_fetches = builder.merge_entity_fetches
                current.root_group(graph)
            current.plan_root_field(root_type, f, current.roots[0])
        if current is not None:
            node = current.to_plan_node(op_name, "mutation")
            if node:
                steps.append(node)
        if not steps:
            return None
        return steps[0] if len(steps) == 1 else SequenceNode(tuple(steps))


def _root_fields(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    root_type: str,
    planner: QueryPlanner,
) -> list[FieldNode]:
    """Root fields in order, fragments expanded (root types are object types)."""
    fields: list[FieldNode] = []
    for sel in selection_set.selections:
        if not directive_included(sel, variables):
            continue
        if isinstance(sel, FieldNode):
            fields.append(sel)
        elif isinstance(sel, InlineFragmentNode):
            fields.extend(_root_fields(sel.selection_set, fragments, variables, root_type, planner))
        elif isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments:
            fields.extend(
                _root_fields(
                    fragments[sel.name.value].selection_set,
                    fragments,
                    variables,
                    root_type,
                    planner,
                )
            )
    return fields


class PlanCache:
    """A bounded LRU cache of query plans."""

    def __init__(self, max_size: int = 1000) -> None:
        self.max_size = max(0, max_size)
        self._plans: OrderedDict[Any, QueryPlan] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Any) -> QueryPlan | None:
        plan = self._plans.get(key)
        if plan is None:
            self.misses += 1
            return None
        self._plans.move_to_end(key)
        self.hits += 1
        return plan

    def put(self, key: Any, plan: QueryPlan) -> None:
        if self.max_size == 0:
            return
        self._plans[key] = plan
        self._plans.move_to_end(key)
        while len(self._plans) > self.max_size:
            self._plans.popitem(last=False)

    def __len__(self) -> int:
        return len(self._plans)


def plan_cache_key(
    normalized_query: str,
    operation_name: str | None,
    conditional_vars: tuple[str, ...],
    variables: Mapping[str, Any],
) -> tuple[Any, ...]:
    """Plans depend on the operation text and the values of the ``@skip``/``@include`` variables."""
    return (
        normalized_query,
        operation_name,
        tuple(variables.get(name) is True for name in conditional_vars),
    )
