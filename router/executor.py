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
import logging
from collections import OrderedDict
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
    VariableNode,
    is_abstract_type,
    is_leaf_type,
    parse,
)

from pek.router.planner import (
    BatchFetchNode,
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
    batch_alias,
    batch_variable,
    directive_included,
)
from pek.router.supergraph import Supergraph
from pek.router.transport import SubgraphRequest, SubgraphUnavailable, Transport

log = logging.getLogger("pek.router")

JSON = dict[str, Any]
_BUBBLE = object()  # a non-null field was null: its parent becomes null


class Executor:
    """Executes plans against subgraphs through a :class:`Transport`."""

    def __init__(
        self, supergraph: Supergraph, transport: Transport, *, service_names: bool = False
    ) -> None:
        self.supergraph = supergraph
        self.transport = transport
        #: Name the subgraph in ``extensions.serviceName`` of its errors (as Apollo Gateway
        #: does): for development only, clients never see the services as separate things.
        self.service_names = service_names
        self.abstract_types = frozenset(
            name for name, t in supergraph.api_schema.type_map.items() if is_abstract_type(t)
        )
        self._types = _TypeCompiler(supergraph.api_schema)
        # plan -> its shaping programs; keyed by id() with the plan kept alive beside it, so an
        # id is never reused while its entry exists
        self._programs: OrderedDict[int, tuple[QueryPlan, _PlanShapes]] = OrderedDict()
        self.programs_max = 1000

    def _shapes(self, plan: QueryPlan) -> _PlanShapes:
        entry = self._programs.get(id(plan))
        if entry is not None and entry[0] is plan:
            self._programs.move_to_end(id(plan))
            return entry[1]
        shapes = _PlanShapes(self._types, plan)
        self._programs[id(plan)] = (plan, shapes)
        while len(self._programs) > self.programs_max:
            self._programs.popitem(last=False)
        return shapes

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
            self._shapes(plan),
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
        self.service_names = executor.service_names
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
        elif isinstance(node, BatchFetchNode):
            await self.batch_fetch(node)
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
        """A fetch got no GraphQL answer. The reason (an exception's text, an address) is for
        the log; clients see which service only where service names are shown (dev mode)."""
        log.warning("subgraph %s unavailable: %s", subgraph, reason)
        if self.service_names:
            self.errors.append({
                "message": f"Subgraph '{subgraph}' is unavailable: {reason}",
                "extensions": {"code": "SUBGRAPH_UNAVAILABLE", "subgraph": subgraph},
            })
        else:
            self.errors.append({
                "message": "Part of the answer is unavailable right now; try again later",
                "extensions": {"code": "SUBGRAPH_UNAVAILABLE"},
            })

    def _subgraph_error(self, subgraph: str, error: Any, path: list[Any] | None) -> None:
        if not isinstance(error, dict):
            error = {"message": str(error)}
        out: JSON = {"message": str(error.get("message", "subgraph error"))}
        if path is not None:
            out["path"] = path
        extensions = dict(error.get("extensions") or {})
        if self.service_names:
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

    def _gather(self, parts: Iterable[tuple[tuple[str, ...], FetchNode]]) -> _Entities:
        """Representations for the objects at the parts' paths, each distinct one once."""
        batch = _Entities()
        index: dict[Any, int] = {}
        representations = batch.representations
        targets = batch.targets
        firsts = batch.firsts
        for part, (path, fetch) in enumerate(parts):
            requires = fetch.requires
            assert requires is not None
            for obj, obj_path in _objects_at(self.data, path):
                rep = self._representation(obj, requires)
                if rep is None:
                    continue
                position = index.get(rep_key := _representation_key(rep))
                if position is None:
                    index[rep_key] = position = len(representations)
                    representations.append(rep)
                    targets.append([])
                    firsts.append([(part, obj_path)])
                elif firsts[position][-1][0] != part:
                    firsts[position].append((part, obj_path))
                targets[position].append((obj, obj_path))
        return batch

    def _apply_entities(
        self, fetch: FetchNode, batch: _Entities, entities: Any, nulled: bool
    ) -> None:
        """Merge one ``_entities`` answer into the objects that produced its representations."""
        targets = batch.targets
        if nulled:
            self.nulled_by_subgraph.extend(
                _path_tuple(obj_path) for target in targets for _, obj_path in target
            )
        if isinstance(entities, list):
            if fetch.renames:
                _rename(entities, fetch.renames)
            abstract = self.abstract
            for position, entity in enumerate(entities[: len(targets)]):
                if isinstance(entity, dict):
                    for obj, _ in targets[position]:
                        _merge(obj, entity, abstract)

    def _entity_error(self, subgraph: str, batch: _Entities, error: Any, epath: Any) -> None:
        """Report an error at ``[<_entities key>, i, ...rest]`` at the client path of the first
        object that sent representation ``i``, once per flatten path that sent it (what separate
        fetches per path would report)."""
        if (
            isinstance(epath, list)
            and len(epath) >= 2
            and isinstance(epath[1], int)
            and not isinstance(epath[1], bool)
            and 0 <= epath[1] < len(batch.targets)
        ):
            rest = list(epath[2:])
            for _, obj_path in batch.firsts[epath[1]]:
                self._subgraph_error(subgraph, error, [*_path_tuple(obj_path), *rest])
            return
        self._subgraph_error(subgraph, error, None)

    async def entity_fetch(self, path: tuple[str, ...], fetch: FetchNode) -> None:
        batch = self._gather(((path, fetch),))
        if not batch.representations:
            return
        variables = self._variables(fetch)
        variables["representations"] = batch.representations
        response = await self._send(fetch, variables)
        if response is None:
            return
        data = response.get("data")
        entities = data.get("_entities") if isinstance(data, dict) else None
        nulled = entities is None and bool(response.get("errors"))
        self._apply_entities(fetch, batch, entities, nulled)
        for error in response.get("errors") or ():
            epath = error.get("path") if isinstance(error, dict) else None
            if isinstance(epath, list) and epath and epath[0] == "_entities":
                self._entity_error(fetch.subgraph, batch, error, epath)
            else:
                self._subgraph_error(fetch.subgraph, error, None)

    async def batch_fetch(self, node: BatchFetchNode) -> None:
        """Several ``_entities`` fields in one request: each alias gets the representations of
        its parts; answers and error paths go back per alias."""
        count = max(node.aliases) + 1 if node.aliases else 0
        batches: list[_Entities] = []
        fetches: list[FetchNode] = []
        for alias in range(count):
            members = [
                (part.path, part.node)
                for part, a in zip(node.parts, node.aliases, strict=True)
                if a == alias
            ]
            batches.append(self._gather(members))
            fetches.append(members[0][1])
        if not any(b.representations for b in batches):
            return
        variables = {n: self.variables[n] for n in node.variable_usages if n in self.variables}
        for alias, batch in enumerate(batches):
            # an alias with nothing to resolve still needs its (non-null) variable: an empty list
            variables[batch_variable(alias)] = batch.representations
        request_fetch = FetchNode(
            subgraph=node.subgraph,
            operation=node.operation,
            operation_kind="query",
            operation_name=node.operation_name,
            variable_usages=node.variable_usages,
            id=node.id,
        )
        response = await self._send(request_fetch, variables)
        if response is None:
            return
        data = response.get("data")
        has_errors = bool(response.get("errors"))
        by_key: dict[str, int] = {}
        for alias, batch in enumerate(batches):
            key = batch_alias(alias)
            by_key[key] = alias
            entities = data.get(key) if isinstance(data, dict) else None
            self._apply_entities(fetches[alias], batch, entities, entities is None and has_errors)
        for error in response.get("errors") or ():
            epath = error.get("path") if isinstance(error, dict) else None
            position = (
                by_key.get(epath[0])
                if isinstance(epath, list) and epath and isinstance(epath[0], str)
                else None
            )
            if position is not None:
                self._entity_error(node.subgraph, batches[position], error, epath)
            else:
                self._subgraph_error(node.subgraph, error, None)

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


#: a response path as a chain of (parent, segment) pairs, built without copying per object
ConsPath = tuple[Any, Any] | None


def _path_tuple(path: ConsPath) -> tuple[Any, ...]:
    out: list[Any] = []
    while path is not None:
        path, segment = path
        out.append(segment)
    out.reverse()
    return tuple(out)


def _objects_at(data: Any, path: tuple[str, ...]) -> list[tuple[JSON, ConsPath]]:
    current: list[tuple[Any, ConsPath]] = [(data, None)]
    for segment in path:
        following: list[tuple[Any, ConsPath]] = []
        append = following.append
        for value, value_path in current:
            if segment == "@":
                if isinstance(value, list):
                    for i, item in enumerate(value):
                        if item is not None:
                            append((item, (value_path, i)))
            elif isinstance(value, dict):
                child = value.get(segment)
                if child is not None:
                    append((child, (value_path, segment)))
        current = following
    return [(v, p) for v, p in current if isinstance(v, dict)]


class _Entities:
    """The distinct representations of one ``_entities`` field and, for each, the objects (and
    their paths) that produced it."""

    __slots__ = ("representations", "targets", "firsts")

    def __init__(self) -> None:
        self.representations: list[JSON] = []
        self.targets: list[list[tuple[JSON, ConsPath]]] = []
        #: per representation: (part, path of the first object of that part that sent it)
        self.firsts: list[list[tuple[int, ConsPath]]] = []


def _representation_key(rep: JSON) -> Any:
    """A dedup key: the items themselves when every value is a string (the usual ``id``/``upc``
    key), canonical JSON otherwise (nested or typed values, where ``1 == True`` must not
    collide)."""
    for value in rep.values():
        if type(value) is not str:
            return orjson.dumps(rep, option=orjson.OPT_SORT_KEYS)
    return tuple(sorted(rep.items()))


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


# -- shaping ----------------------------------------------------------------------------------
#
# Shaping walks the client's operation over the merged data. What that walk needs from the
# operation (collected fields per runtime type, merged sub-selections, unwrapped types, enum
# values) depends only on the plan and the @skip/@include outcomes, so it is compiled once per
# plan (and outcome) and reused by every request; per value only the data is looked at.

_LEAF, _ENUM, _LIST, _OBJECT, _ABSTRACT = range(5)


class _TypeInfo:
    """An output type, unwrapped once: nullability, kind, item type, enum values."""

    __slots__ = ("non_null", "kind", "of", "gtype", "enum_values", "runtimes")

    def __init__(self, non_null: bool, kind: int, gtype: Any) -> None:
        self.non_null = non_null
        self.kind = kind
        self.of: _TypeInfo | None = None
        self.gtype = gtype
        self.enum_values: Any = None
        #: abstract types: ``__typename`` -> the runtime object type (None: not a member)
        self.runtimes: dict[str, Any] = {}


class _TypeCompiler:
    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        self._cache: dict[tuple[bool, Any], _TypeInfo] = {}

    def info(self, type_: GraphQLOutputType) -> _TypeInfo:
        non_null = isinstance(type_, GraphQLNonNull)
        inner: Any = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        key = (non_null, inner if not isinstance(inner, GraphQLList) else id(inner))
        cached = self._cache.get(key)
        if cached is not None and cached.gtype is inner:
            return cached
        if isinstance(inner, GraphQLList):
            info = _TypeInfo(non_null, _LIST, inner)
            info.of = self.info(inner.of_type)
        elif isinstance(inner, GraphQLEnumType):
            info = _TypeInfo(non_null, _ENUM, inner)
            info.enum_values = inner.values
        elif is_leaf_type(inner):
            info = _TypeInfo(non_null, _LEAF, inner)
        elif is_abstract_type(inner):
            info = _TypeInfo(non_null, _ABSTRACT, inner)
        else:
            info = _TypeInfo(non_null, _OBJECT, inner)
        self._cache[key] = info
        return info

    def runtime(self, info: _TypeInfo, typename: Any) -> Any:
        """The object type an abstract value resolves to, or None (spec "ResolveAbstractType")."""
        if not isinstance(typename, str):
            return None
        try:
            return info.runtimes[typename]
        except KeyError:
            pass
        type_ = info.gtype
        runtime = self.schema.get_type(typename)
        if runtime is type_ and isinstance(type_, GraphQLInterfaceType):
            pass  # an @interfaceObject's answer whose concrete type nobody knows
        elif not isinstance(runtime, GraphQLObjectType) or not self.schema.is_sub_type(
            type_, runtime
        ):
            runtime = None
        info.runtimes[typename] = runtime
        return runtime


_TYPENAME, _PASSTHROUGH, _FIELD = range(3)


class _Field:
    """One response key of a selection for one runtime type: its field nodes (merged), its
    type, and the collected sub-selections per runtime type (filled as they are met)."""

    __slots__ = ("key", "kind", "name", "type", "nodes", "children")

    def __init__(
        self, key: str, kind: int, name: str, type_: _TypeInfo | None, nodes: list[FieldNode]
    ) -> None:
        self.key = key
        self.kind = kind
        self.name = name
        self.type = type_
        self.nodes = nodes
        self.children: dict[str, list[_Field]] = {}


class _PlanShapes:
    """The compiled shaping of one plan: per @skip/@include outcome, the root's fields."""

    def __init__(self, types: _TypeCompiler, plan: QueryPlan) -> None:
        self.types = types
        self.schema = types.schema
        self.plan = plan
        self.fragments = plan.fragments
        self.conditional = _conditional_variables(plan)
        self._roots: dict[tuple[bool, ...], tuple[_Field, Any]] = {}

    def root(self, variables: Mapping[str, Any]) -> tuple[_Field, Any]:
        """A pseudo field holding the root selection, and the root type."""
        outcome = tuple(variables.get(name) is True for name in self.conditional)
        cached = self._roots.get(outcome)
        if cached is None:
            root_type = self.schema.get_root_type(self.plan.operation.operation)
            assert root_type is not None
            field = _Field("", _FIELD, "", None, [])
            field.children[root_type.name] = self.collect(
                root_type, (self.plan.operation.selection_set,), variables, True
            )
            cached = self._roots[outcome] = (field, root_type)
        return cached

    def children(self, field: _Field, runtime: Any, variables: Mapping[str, Any]) -> list[_Field]:
        fields = field.children.get(runtime.name)
        if fields is None:
            selection_sets = tuple(n.selection_set for n in field.nodes if n.selection_set)
            fields = field.children[runtime.name] = self.collect(
                runtime, selection_sets, variables, False
            )
        return fields

    def collect(
        self,
        runtime: Any,
        selection_sets: tuple[SelectionSetNode, ...],
        variables: Mapping[str, Any],
        is_root: bool,
    ) -> list[_Field]:
        grouped: dict[str, list[FieldNode]] = {}
        for selection_set in selection_sets:
            self._collect(runtime, selection_set, variables, grouped)
        out: list[_Field] = []
        for key, nodes in grouped.items():
            name = nodes[0].name.value
            if name == "__typename":
                out.append(_Field(key, _TYPENAME, name, None, nodes))
                continue
            if is_root and name in ("__schema", "__type"):
                out.append(_Field(key, _PASSTHROUGH, name, None, nodes))
                continue
            field_def = runtime.fields.get(name)
            if field_def is None:
                continue
            out.append(_Field(key, _FIELD, name, self.types.info(field_def.type), nodes))
        return out

    def _collect(
        self,
        runtime: Any,
        selection_set: SelectionSetNode,
        variables: Mapping[str, Any],
        fields: dict[str, list[FieldNode]],
    ) -> None:
        for sel in selection_set.selections:
            if not directive_included(sel, variables):
                continue
            if isinstance(sel, FieldNode):
                key = sel.alias.value if sel.alias else sel.name.value
                fields.setdefault(key, []).append(sel)
            elif isinstance(sel, InlineFragmentNode):
                if sel.type_condition is None or self._applies(
                    sel.type_condition.name.value, runtime
                ):
                    self._collect(runtime, sel.selection_set, variables, fields)
            elif isinstance(sel, FragmentSpreadNode):
                frag = self.fragments.get(sel.name.value)
                if frag is not None and self._applies(frag.type_condition.name.value, runtime):
                    self._collect(runtime, frag.selection_set, variables, fields)

    def _applies(self, condition: str, runtime: Any) -> bool:
        if condition == runtime.name:
            return True
        ctype = self.schema.get_type(condition)
        return isinstance(ctype, GraphQLAbstractType) and self.schema.is_sub_type(ctype, runtime)


def _conditional_variables(plan: QueryPlan) -> tuple[str, ...]:
    """Variables whose values decide a ``@skip``/``@include`` in the operation."""
    names: list[str] = []

    def walk(selection_set: SelectionSetNode | None) -> None:
        if selection_set is None:
            return
        for sel in selection_set.selections:
            for directive in sel.directives or ():
                if directive.name.value in ("skip", "include"):
                    for arg in directive.arguments or ():
                        value = arg.value
                        if isinstance(value, VariableNode) and value.name.value not in names:
                            names.append(value.name.value)
            walk(getattr(sel, "selection_set", None))

    walk(plan.operation.selection_set)
    for fragment in plan.fragments.values():
        walk(fragment.selection_set)
    return tuple(names)


def _path_list(parent: ConsPath, key: Any) -> list[Any]:
    return [*_path_tuple(parent), key]


class _Shaper:
    """Builds the client's response from the merged data (spec "CompleteValue" over JSON)."""

    def __init__(
        self,
        shapes: _PlanShapes,
        variables: Mapping[str, Any],
        errors: list[JSON],
        nulled_by_subgraph: Iterable[tuple[Any, ...]] = (),
    ) -> None:
        self.shapes = shapes
        self.types = shapes.types
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
        field, root = self.shapes.root(self.variables)
        result = self._object(data, root, field.children[root.name], None)
        return None if result is _BUBBLE else result

    def _object(self, data: JSON, runtime: Any, fields: list[_Field], path: ConsPath) -> Any:
        result: JSON = {}
        get = data.get
        for field in fields:
            key = field.key
            kind = field.kind
            if kind == _FIELD:
                value = self._complete(get(key), field.type, field, runtime, path, key)
                if value is _BUBBLE:
                    return _BUBBLE
                result[key] = value
            elif kind == _TYPENAME:
                result[key] = runtime.name
            else:
                result[key] = get(key)
        return result

    def _complete(
        self,
        value: Any,
        info: Any,
        field: _Field,
        parent: Any,
        parent_path: ConsPath,
        key: Any,
    ) -> Any:
        """Complete the value at ``parent_path + [key]``; ``_BUBBLE`` when a null must
        propagate to the parent."""
        if value is None:
            if info.non_null:
                self._null_error(_path_list(parent_path, key), parent, field.name)
                return _BUBBLE
            return None
        kind = info.kind
        if kind == _LEAF:
            return value
        if kind == _OBJECT:
            if not isinstance(value, dict):
                completed: Any = None
            else:
                completed = self._object(
                    value,
                    info.gtype,
                    self.shapes.children(field, info.gtype, self.variables),
                    (parent_path, key),
                )
        elif kind == _LIST:
            if not isinstance(value, list):
                completed = None
            else:
                path = (parent_path, key)
                item_info = info.of
                completed = []
                append = completed.append
                for i, item in enumerate(value):
                    item_value = self._complete(item, item_info, field, parent, path, i)
                    if item_value is _BUBBLE:
                        completed = _BUBBLE
                        break
                    append(item_value)
        elif kind == _ENUM:
            if value in info.enum_values:
                return value
            # an @inaccessible value (or one this API does not know) is not client data
            self._value_error(
                _path_list(parent_path, key),
                f"Enum '{info.gtype.name}' cannot represent value: {value!r}",
            )
            completed = None
        else:
            runtime = (
                self.types.runtime(info, value.get("__typename"))
                if isinstance(value, dict)
                else None
            )
            if runtime is None:
                completed = None
            else:
                completed = self._object(
                    value,
                    runtime,
                    self.shapes.children(field, runtime, self.variables),
                    (parent_path, key),
                )
        if info.non_null:
            if completed is None:
                self._null_error(_path_list(parent_path, key), parent, field.name)
                return _BUBBLE
            return completed
        return None if completed is _BUBBLE else completed

    def _value_error(self, path: list[Any], message: str) -> None:
        full = tuple(path)
        if full in self._error_paths:
            return
        self._error_paths.add(full)
        for i in range(len(full) + 1):
            self._error_prefixes.add(full[:i])
        self.errors.append({"message": message, "path": list(path)})

    def _null_error(self, path: list[Any], parent: Any, field_name: str) -> None:
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
