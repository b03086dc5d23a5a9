"""The executor: runs a :class:`~pek.router.planner.QueryPlan` through a transport and shapes the
response.

It works on plain JSON: every fetch result is deep-merged into one data tree keyed by response keys;
``_entities`` fetches build their representations from the objects at the flatten path (through
lists), send each distinct representation once in one request, and merge the answers back into every
object that produced it. Independent fetches run concurrently. Shaping then walks the client's
operation over that tree: aliases, ``__typename``, field order, removal of planner-added fields, and
null propagation of non-null fields as the GraphQL spec says.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLAbstractType,
    GraphQLEnumType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    is_abstract_type,
    is_leaf_type,
    parse,
)

from pek.router.planner import (
    FetchNode,
    FlattenNode,
    ParallelNode,
    PField,
    PInlineFragment,
    PlanNode,
    PSelection,
    QueryPlan,
    RenameTree,
    SequenceNode,
    directive_included,
)
from pek.router.supergraph import Supergraph
from pek.router.transport import SubgraphRequest, SubgraphUnavailable, Transport

JSON = dict[str, Any]
_BUBBLE = object()  # a non-null field was null: its parent becomes null


class Executor:
    """Executes plans against subgraphs through a :class:`Transport`."""

    def __init__(self, supergraph: Supergraph, transport: Transport) -> None:
        self.supergraph = supergraph
        self.transport = transport
        self.abstract_types = frozenset(
            name for name, t in supergraph.api_schema.type_map.items() if is_abstract_type(t)
        )

    async def execute(
        self,
        plan: QueryPlan,
        variables: Mapping[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
        initial_data: JSON | None = None,
        coerced_variables: Mapping[str, Any] | None = None,
    ) -> JSON:
        """Run ``plan``; ``variables`` are the client's raw JSON variables (forwarded as sent),
        ``initial_data`` root fields answered by the router itself (introspection),
        ``coerced_variables`` the values with defaults applied (for ``@skip``/``@include``)."""
        run = _Run(self, variables, headers or {})
        if initial_data:
            run.data.update(initial_data)
        if plan.node is not None:
            await run.node(plan.node)
        shaper = _Shaper(
            self.supergraph.api_schema,
            plan,
            variables if coerced_variables is None else coerced_variables,
            run.errors,
            run.nulled_by_subgraph,
        )
        data = shaper.shape_root(run.data)
        response: JSON = {"data": data}
        if run.errors:
            response["errors"] = run.errors
        return response


class _Run:
    def __init__(
        self, executor: Executor, variables: Mapping[str, Any], headers: Mapping[str, str]
    ) -> None:
        self.sg = executor.supergraph
        self.transport = executor.transport
        self.variables = variables
        self.headers = dict(headers)
        self.data: JSON = {}
        self.errors: list[JSON] = []
        self.abstract = executor.abstract_types
        # Paths a subgraph answered with ``data: null`` plus errors: the subgraph's own errors
        # explain those nulls, so shaping adds no "Cannot return null" error of its own there.
        self.nulled_by_subgraph: list[tuple[Any, ...]] = []

    async def node(self, node: PlanNode) -> None:
        if isinstance(node, SequenceNode):
            for child in node.nodes:
                await self.node(child)
        elif isinstance(node, ParallelNode):
            await asyncio.gather(*(self.node(child) for child in node.nodes))
        elif isinstance(node, FlattenNode):
            await self.entity_fetch(node.path, node.node)
        else:
            await self.root_fetch(node)

    def _variables(self, fetch: FetchNode) -> dict[str, Any]:
        return {n: self.variables[n] for n in fetch.variable_usages if n in self.variables}

    async def _send(self, fetch: FetchNode, variables: dict[str, Any]) -> JSON | None:
        request = SubgraphRequest(
            query=fetch.operation,
            variables=variables,
            operation_name=fetch.operation_name,
            headers=self.headers,
        )
        try:
            response = await self.transport.fetch(fetch.subgraph, request)
        except SubgraphUnavailable as exc:
            self._unavailable(fetch.subgraph, exc.reason)
            return None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a subgraph bug must not become a router 500
            self._unavailable(fetch.subgraph, f"{type(exc).__name__}: {exc}")
            return None
        if not isinstance(response, dict):
            self._unavailable(fetch.subgraph, "not a GraphQL response")
            return None
        return response

    def _unavailable(self, subgraph: str, reason: str) -> None:
        self.errors.append(
            {
                "message": f"Subgraph '{subgraph}' is unavailable: {reason}",
                "extensions": {"code": "SUBGRAPH_UNAVAILABLE", "subgraph": subgraph},
            }
        )

    def _subgraph_error(self, subgraph: str, error: Any, path: list[Any] | None) -> None:
        if not isinstance(error, dict):
            error = {"message": str(error)}
        out: JSON = {"message": str(error.get("message", "subgraph error"))}
        if path is not None:
            out["path"] = path
        extensions = dict(error.get("extensions") or {})
        extensions.setdefault("serviceName", subgraph)
        out["extensions"] = extensions
        self.errors.append(out)

    async def root_fetch(self, fetch: FetchNode) -> None:
        response = await self._send(fetch, self._variables(fetch))
        if response is None:
            return
        data = response.get("data")
        if isinstance(data, dict):
            if fetch.renames:
                _rename(data, fetch.renames)
            _merge(self.data, data, self.abstract)
        elif response.get("errors"):
            self.nulled_by_subgraph.extend((key,) for key in _root_response_keys(fetch.operation))
        for error in response.get("errors") or ():
            path = error.get("path") if isinstance(error, dict) else None
            self._subgraph_error(fetch.subgraph, error, list(path) if path else None)

    async def entity_fetch(self, path: tuple[str, ...], fetch: FetchNode) -> None:
        assert fetch.requires is not None
        representations: list[JSON] = []
        targets: list[list[tuple[JSON, list[Any]]]] = []
        index: dict[bytes, int] = {}
        for obj, obj_path in _objects_at(self.data, path):
            rep = self._representation(obj, fetch.requires)
            if rep is None:
                continue
            rep_key = orjson.dumps(rep, option=orjson.OPT_SORT_KEYS)
            position = index.get(rep_key)
            if position is None:
                index[rep_key] = position = len(representations)
                representations.append(rep)
                targets.append([])
            targets[position].append((obj, obj_path))
        if not representations:
            return
        variables = self._variables(fetch)
        variables["representations"] = representations
        response = await self._send(fetch, variables)
        if response is None:
            return
        data = response.get("data")
        entities = data.get("_entities") if isinstance(data, dict) else None
        if entities is None and response.get("errors"):
            self.nulled_by_subgraph.extend(
                tuple(obj_path) for target in targets for _, obj_path in target
            )
        if isinstance(entities, list):
            if fetch.renames:
                _rename(entities, fetch.renames)
            for position, entity in enumerate(entities[: len(targets)]):
                if isinstance(entity, dict):
                    for obj, _ in targets[position]:
                        _merge(obj, entity, self.abstract)
        for error in response.get("errors") or ():
            epath = error.get("path") if isinstance(error, dict) else None
            client_path: list[Any] | None = None
            if (
                isinstance(epath, list)
                and len(epath) >= 2
                and epath[0] == "_entities"
                and isinstance(epath[1], int)
                and 0 <= epath[1] < len(targets)
            ):
                client_path = list(targets[epath[1]][0][1]) + list(epath[2:])
            self._subgraph_error(fetch.subgraph, error, client_path)

    def _representation(self, obj: JSON, requires: tuple[PInlineFragment, ...]) -> JSON | None:
        typename = obj.get("__typename")
        if not isinstance(typename, str):
            return None
        for fragment in requires:
            condition = fragment.type_condition
            if condition != typename and typename not in self.sg.possible_types(condition):
                if not (condition in self.sg.types and typename == condition):
                    continue
            rep = _select(obj, fragment.selections, self.sg)
            if rep is None:
                return None
            # entity interfaces and @interfaceObject resolve the interface name, not the object's
            rep["__typename"] = condition if self.sg.is_abstract(condition) else typename
            return rep
        return None


@functools.lru_cache(maxsize=1024)
def _root_response_keys(operation: str) -> tuple[str, ...]:
    """Response keys of an operation's top-level fields (fragments followed one level)."""
    document = parse(operation, no_location=True)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    keys: list[str] = []

    def collect(selection_set: SelectionSetNode) -> None:
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                keys.append(sel.alias.value if sel.alias else sel.name.value)
            elif isinstance(sel, InlineFragmentNode):
                collect(sel.selection_set)
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments:
                collect(fragments[sel.name.value].selection_set)

    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            collect(definition.selection_set)
    return tuple(keys)


def _select(obj: JSON, selections: list[PSelection], sg: Supergraph) -> JSON | None:
    out: JSON = {}
    for sel in selections:
        if isinstance(sel, PField):
            if sel.response_key not in obj:
                if sel.name == "__typename":
                    continue
                return None
            value = obj[sel.response_key]
            if sel.selections is not None and value is not None:
                value = _select_value(value, sel.selections, sg)
            out[sel.name] = value
        else:
            typename = obj.get("__typename")
            if typename == sel.type_condition or (
                isinstance(typename, str) and typename in sg.possible_types(sel.type_condition)
            ):
                inner = _select(obj, sel.selections, sg)
                if inner is None:
                    return None
                out.update(inner)
    return out


def _select_value(value: Any, selections: list[PSelection], sg: Supergraph) -> Any:
    if isinstance(value, list):
        return [_select_value(v, selections, sg) for v in value]
    if isinstance(value, dict):
        return _select(value, selections, sg)
    return value


def _objects_at(data: Any, path: tuple[str, ...]) -> list[tuple[JSON, list[Any]]]:
    current: list[tuple[Any, list[Any]]] = [(data, [])]
    for segment in path:
        following: list[tuple[Any, list[Any]]] = []
        for value, value_path in current:
            if segment == "@":
                if isinstance(value, list):
                    following.extend(
                        (item, value_path + [i]) for i, item in enumerate(value) if item is not None
                    )
            elif isinstance(value, dict):
                child = value.get(segment)
                if child is not None:
                    following.append((child, value_path + [segment]))
        current = following
    return [(v, p) for v, p in current if isinstance(v, dict)]


def _rename(value: Any, tree: RenameTree) -> None:
    """Undo the planner's conflict aliases in a subgraph's answer (lists walked through)."""
    if isinstance(value, list):
        for item in value:
            _rename(item, tree)
        return
    if not isinstance(value, dict):
        return
    for key, (original, sub) in tree.items():
        if key not in value:
            continue
        child = value[key]
        if sub:
            _rename(child, sub)
        if original is not None:
            del value[key]
            existing = value.get(original)
            if isinstance(existing, dict) and isinstance(child, dict):
                existing.update(child)
            else:
                value[original] = child


def _merge(target: JSON, source: JSON, abstract: frozenset[str]) -> None:
    """Deep-merge ``source`` into ``target``. An ``@interfaceObject`` subgraph answers
    ``__typename`` with the interface name: that never replaces a concrete type name."""
    for key, value in source.items():
        existing = target.get(key)
        if isinstance(existing, dict) and isinstance(value, dict):
            _merge(existing, value, abstract)
        elif isinstance(existing, list) and isinstance(value, list) and len(existing) == len(value):
            for i, item in enumerate(value):
                if isinstance(existing[i], dict) and isinstance(item, dict):
                    _merge(existing[i], item, abstract)
                else:
                    existing[i] = item
        elif key == "__typename" and isinstance(existing, str) and value in abstract:
            continue
        else:
            target[key] = value


class _Shaper:
    """Builds the client's response from the merged data (spec "CompleteValue" over JSON)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        plan: QueryPlan,
        variables: Mapping[str, Any],
        errors: list[JSON],
        nulled_by_subgraph: Iterable[tuple[Any, ...]] = (),
    ) -> None:
        self.schema = schema
        self.plan = plan
        self.variables = variables
        self.errors = errors
        self._error_paths: set[tuple[Any, ...]] = set()
        self._error_prefixes: set[tuple[Any, ...]] = set()
        explained = [tuple(e["path"]) for e in errors if isinstance(e.get("path"), list)]
        for full in [*explained, *nulled_by_subgraph]:
            self._error_paths.add(full)
            for i in range(len(full) + 1):
                self._error_prefixes.add(full[:i])

    def shape_root(self, data: JSON) -> JSON | None:
        root = self.schema.get_root_type(self.plan.operation.operation)
        assert root is not None
        result = self._object(data, root, self.plan.operation.selection_set, [])
        return None if result is _BUBBLE else result

    def _collect(
        self,
        runtime: GraphQLObjectType | GraphQLInterfaceType,
        selection_set: SelectionSetNode,
        fields: dict[str, list[FieldNode]],
    ) -> None:
        for sel in selection_set.selections:
            if not directive_included(sel, self.variables):
                continue
            if isinstance(sel, FieldNode):
                key = sel.alias.value if sel.alias else sel.name.value
                fields.setdefault(key, []).append(sel)
            elif isinstance(sel, InlineFragmentNode):
                if sel.type_condition is None or self._applies(
                    sel.type_condition.name.value, runtime
                ):
                    self._collect(runtime, sel.selection_set, fields)
            elif isinstance(sel, FragmentSpreadNode):
                frag = self.plan.fragments.get(sel.name.value)
                if frag is not None and self._applies(frag.type_condition.name.value, runtime):
                    self._collect(runtime, frag.selection_set, fields)

    def _applies(self, condition: str, runtime: GraphQLObjectType | GraphQLInterfaceType) -> bool:
        if condition == runtime.name:
            return True
        ctype = self.schema.get_type(condition)
        return isinstance(ctype, GraphQLAbstractType) and self.schema.is_sub_type(ctype, runtime)

    def _object(
        self,
        data: JSON,
        runtime: GraphQLObjectType | GraphQLInterfaceType,
        selection_set: SelectionSetNode,
        path: list[Any],
    ) -> Any:
        fields: dict[str, list[FieldNode]] = {}
        self._collect(runtime, selection_set, fields)
        result: JSON = {}
        is_root = not path
        for key, nodes in fields.items():
            name = nodes[0].name.value
            if name == "__typename":
                result[key] = runtime.name
                continue
            if is_root and name in ("__schema", "__type"):
                result[key] = data.get(key)
                continue
            field_def = runtime.fields.get(name)
            if field_def is None:
                continue
            value = self._complete(
                data.get(key), field_def.type, nodes, path + [key], runtime, name
            )
            if value is _BUBBLE:
                return _BUBBLE
            result[key] = value
        return result

    def _complete(
        self,
        value: Any,
        type_: GraphQLOutputType,
        nodes: list[FieldNode],
        path: list[Any],
        parent: GraphQLObjectType | GraphQLInterfaceType,
        field_name: str,
    ) -> Any:
        """Complete a value; returns ``_BUBBLE`` when a null must propagate to the parent."""
        if isinstance(type_, GraphQLNonNull):
            completed = self._complete_nullable(
                value, type_.of_type, nodes, path, parent, field_name
            )
            if completed is None:
                self._null_error(path, parent, field_name)
                return _BUBBLE
            return completed
        completed = self._complete_nullable(value, type_, nodes, path, parent, field_name)
        return None if completed is _BUBBLE else completed

    def _complete_nullable(
        self,
        value: Any,
        type_: GraphQLOutputType,
        nodes: list[FieldNode],
        path: list[Any],
        parent: GraphQLObjectType | GraphQLInterfaceType,
        field_name: str,
    ) -> Any:
        if value is None:
            return None
        if isinstance(type_, GraphQLList):
            if not isinstance(value, list):
                return None
            items: list[Any] = []
            for i, item in enumerate(value):
                completed = self._complete(
                    item, type_.of_type, nodes, path + [i], parent, field_name
                )
                if completed is _BUBBLE:
                    return _BUBBLE
                items.append(completed)
            return items
        if is_leaf_type(type_):
            if isinstance(type_, GraphQLEnumType) and value not in type_.values:
                # an @inaccessible value (or one this API does not know) is not client data
                self._value_error(path, f"Enum '{type_.name}' cannot represent value: {value!r}")
                return None
            return value
        if not isinstance(value, dict):
            return None
        runtime: Any = type_
        if is_abstract_type(type_):
            typename = value.get("__typename")
            runtime = self.schema.get_type(typename) if isinstance(typename, str) else None
            if runtime is type_ and isinstance(type_, GraphQLInterfaceType):
                pass  # an @interfaceObject's answer whose concrete type nobody knows
            elif not isinstance(runtime, GraphQLObjectType) or not self.schema.is_sub_type(
                type_, runtime
            ):
                return None
        merged = SelectionSetNode(
            selections=tuple(
                s for n in nodes if n.selection_set for s in n.selection_set.selections
            )
        )
        return self._object(value, runtime, merged, path)

    def _value_error(self, path: list[Any], message: str) -> None:
        full = tuple(path)
        if full in self._error_paths:
            return
        self._error_paths.add(full)
        for i in range(len(full) + 1):
            self._error_prefixes.add(full[:i])
        self.errors.append({"message": message, "path": list(path)})

    def _null_error(
        self, path: list[Any], parent: GraphQLObjectType | GraphQLInterfaceType, field_name: str
    ) -> None:
        full = tuple(path)
        if full in self._error_prefixes:
            return
        if any(full[:i] in self._error_paths for i in range(len(full))):
            return
        self._error_paths.add(full)
        for i in range(len(full) + 1):
            self._error_prefixes.add(full[:i])
        self.errors.append(
            {
                "message": f"Cannot return null for non-nullable field {parent.name}.{field_name}.",
                "path": list(path),
            }
        )
