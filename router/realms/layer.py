"""The realm-routing layer: N realm instances that look like one subgraph to the executor.

:class:`RealmRoutingTransport` implements the :class:`~pek.router.transport.Transport`
protocol and wraps the router's transport. A fetch for any other subgraph passes straight
through; a fetch for the realm subgraph is routed root field by root field (see
:mod:`pek.router.realms.operations`), sent to the realm instances concurrently (one request per
realm carrying every root field that realm must answer), and merged into ONE GraphQL response
whose error paths are relative to the original subgraph request. The executor maps it back
exactly as if one subgraph had answered.

Rules (declared in the realm subgraph's schema, read from the supergraph):

* ``@realmOwner``: the one realm its argument names; an unknown realm (after a registry
  refresh) is ``REALM_NOT_FOUND``, a forged ID ``BAD_USER_INPUT``; neither reaches any realm.
* ``@realmFanout``: every enabled realm, merged in the declared order (connections paginate
  across realms with composite cursors).
* ``_entities``: each representation goes to the realm in its ID; representations of hub
  entities (no realm in the ID) go to the realms the federation index names for ``User``, or to
  every realm, and are merged per entity.
* No directive on a query field: every realm is asked and exactly one realm may answer non-null;
  null everywhere gives null; several non-null answers give null and ``REALM_ROUTING_AMBIGUOUS``
  (the schema should declare ``@realmOwner`` or ``@realmFanout`` on such a field).
* Mutations: only ``@realmOwner`` fields; fields run in order, consecutive fields of one realm in
  one request.
* A realm that fails or exceeds its timeout yields null / no items for its part and an error
  ``REALM_UNAVAILABLE`` naming it (with ``reason: "TIMEOUT"`` and ``timeoutMs`` when it did
  not answer in time); every other realm's data is still returned.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    InlineFragmentNode,
    SelectionSetNode,
    value_from_ast_untyped,
)

from pek.router.metrics import RouterMetrics
from pek.router.realms.index import FederationIndex
from pek.router.realms.instances import RealmInstances
from pek.router.realms.merge import (
    InvalidCursor,
    RealmConnection,
    Sorted,
    decode_cursor,
    merge_connection,
    merge_entity,
    merge_order,
    order_key,
    strip_internal,
)
from pek.router.realms.operations import (
    CURSOR_KEY,
    EDGES_KEY,
    INTERNAL,
    NODE_KEY,
    PAGE_INFO_KEY,
    Kind,
    OperationAnalysis,
    OperationError,
    RootField,
    analyze,
    collect_fields,
)
from pek.router.realms.registry import (
    RealmInfo,
    RealmRegistry,
    RegistrySnapshot,
    RegistryUnavailable,
)
from pek.router.realms.routing import RealmRouting, argument_default
from pek.router.transport import SubgraphRequest, SubgraphUnavailable, Transport
from pek.schema import ids
from pek.schema.context import invalid_id_message

JSON = dict[str, Any]
log = logging.getLogger("pek.router.realms")

REALM_UNAVAILABLE = "REALM_UNAVAILABLE"
REALM_NOT_FOUND = "REALM_NOT_FOUND"
BAD_USER_INPUT = "BAD_USER_INPUT"
REALM_ROUTING_AMBIGUOUS = "REALM_ROUTING_AMBIGUOUS"


class RealmRoutingTransport:
    """A :class:`Transport` that makes the realm instances one subgraph (see module doc)."""

    def __init__(
        self,
        inner: Transport,
        supergraph_sdl: str,
        registry: RealmRegistry,
        instances: RealmInstances,
        *,
        index: FederationIndex | None = None,
        subgraph: str = "realm",
        index_types: Iterable[str] = ("User",),
        cache_size: int = 1000,
        metrics: RouterMetrics | None = None,
    ) -> None:
        """``inner`` carries every other subgraph's fetches; ``subgraph`` is the realm
        subgraph's name in the supergraph; ``index_types`` are the hub entity types whose
        representations the federation ``index`` routes (by their ``id``); ``metrics``
        counts each realm request's outcome (``pek_realm_requests_total``)."""
        self.inner = inner
        self.routing = RealmRouting(supergraph_sdl, subgraph)
        self.registry = registry
        self.instances = instances
        self.index = index
        self.subgraph = subgraph
        self.index_types = frozenset(index_types)
        self.metrics = metrics
        self._analyses: OrderedDict[tuple[str, str | None], OperationAnalysis | OperationError]
        self._analyses = OrderedDict()
        self._cache_size = max(1, cache_size)
        self._tasks: set[asyncio.Task[None]] = set()
        registry.on_change(self._registry_changed)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the realm registry and start polling it (run before serving requests)."""
        await self.registry.start()

    async def aclose(self) -> None:
        await self.registry.aclose()
        for task in list(self._tasks):
            await task
        await self.instances.aclose()
        if self.index is not None:
            await self.index.aclose()
        await self.inner.aclose()

    def _registry_changed(self, snapshot: RegistrySnapshot) -> None:
        task = asyncio.get_running_loop().create_task(self.instances.sync(snapshot))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- Transport ---------------------------------------------------------------------------

    async def fetch(self, subgraph: str, request: SubgraphRequest) -> JSON:
        if subgraph != self.subgraph:
            return await self.inner.fetch(subgraph, request)
        try:
            analysis = self.analysis(request.query, request.operation_name)
        except OperationError as exc:
            return {"data": None, "errors": [_error(str(exc), exc.code)]}
        try:
            snapshot = await self.registry.current()
        except RegistryUnavailable:
            return {
                "data": None,
                "errors": [
                    _error("The realm registry is unavailable", "REALM_REGISTRY_UNAVAILABLE")
                ],
            }
        try:
            return await _Routed(self, analysis, request, snapshot).run()
        except asyncio.CancelledError:
            raise
        except Exception:  # a defect here must not become a router 500
            log.exception("realm routing failed")
            return {
                "data": None,
                "errors": [_error("Internal router error in realm routing",
                                  "INTERNAL_SERVER_ERROR")],
            }

    def analysis(self, query: str, operation_name: str | None) -> OperationAnalysis:
        """The routing analysis of one subgraph operation (cached by text and name)."""
        key = (query, operation_name)
        cached = self._analyses.get(key)
        if cached is None:
            try:
                cached = analyze(query, operation_name, self.routing)
            except OperationError as exc:
                cached = exc
            self._analyses[key] = cached
            if len(self._analyses) > self._cache_size:
                self._analyses.popitem(last=False)
        else:
            self._analyses.move_to_end(key)
        if isinstance(cached, OperationError):
            raise cached
        return cached


def _error(
    message: str, code: str, path: Sequence[Any] | None = None, **extensions: Any
) -> JSON:
    out: JSON = {"message": message}
    if path is not None:
        out["path"] = list(path)
    out["extensions"] = {"code": code, **extensions}
    return out


def _unavailable(realm: RealmInfo, path: Sequence[Any], *, timed_out: bool = False) -> JSON:
    """``REALM_UNAVAILABLE`` naming the realm; a realm that was asked but did not answer in
    time says so (``reason: "TIMEOUT"``): it may be up but overloaded, or the request too
    costly for its time budget."""
    message = f"Realm {realm.name} is unavailable"
    if timed_out:
        return _error(
            message, REALM_UNAVAILABLE, path, realm=realm.id, reason="TIMEOUT",
            timeoutMs=realm.timeout_ms,
        )
    return _error(message, REALM_UNAVAILABLE, path, realm=realm.id)


@dataclass(slots=True)
class _Answer:
    """One realm's answer to its part of the request."""

    realm: RealmInfo
    data: JSON | None
    #: errors by root field index (path[0] names one of the fields sent), others under -1
    errors: dict[int, list[JSON]] = field(default_factory=dict)
    unavailable: bool = False
    #: unavailable because it did not answer within its timeout
    timed_out: bool = False

    def unavailable_error(self, path: Sequence[Any]) -> JSON:
        return _unavailable(self.realm, path, timed_out=self.timed_out)


@dataclass(slots=True)
class _Part:
    """What one realm is asked: root field indexes and internal variable values."""

    indexes: list[int] = field(default_factory=list)
    variables: JSON = field(default_factory=dict)


@dataclass(slots=True)
class _EntityPlan:
    """Where each representation of one ``_entities`` field goes."""

    representations: list[Any]
    #: representation index -> realm ids asked (in registry order); absent: answered here
    targets: dict[int, list[str]] = field(default_factory=dict)
    #: representation index -> answer computed without any realm
    local: dict[int, Any] = field(default_factory=dict)


class _Routed:
    """One subgraph request routed to realms and merged back."""

    def __init__(
        self,
        layer: RealmRoutingTransport,
        analysis: OperationAnalysis,
        request: SubgraphRequest,
        snapshot: RegistrySnapshot,
    ) -> None:
        self.layer = layer
        self.analysis = analysis
        self.request = request
        self.variables: dict[str, Any] = dict(request.variables or {})
        self.snapshot = snapshot
        self.data: JSON = {}
        self.errors: list[JSON] = []
        self.parts: dict[str, _Part] = {}
        #: field index -> realm ids asked for it, in registry order
        self.asked: dict[int, list[str]] = {}
        self.after: dict[int, dict[str, str]] = {}
        self.first: dict[int, int | None] = {}
        self.entities: dict[int, _EntityPlan] = {}
        #: ``_entities`` field index -> realm id -> representation indexes sent to it
        self.entity_parts: dict[int, dict[str, list[int]]] = {}
        #: every realm this request uses (some from a registry refreshed on demand)
        self.realms: dict[str, RealmInfo] = {r.id: r for r in snapshot.realms}

    # -- routing -----------------------------------------------------------------------------

    def _assign(self, realm: str, index: int, variables: Mapping[str, Any] | None = None) -> None:
        part = self.parts.setdefault(realm, _Part())
        part.indexes.append(index)
        if variables:
            part.variables.update(variables)
        self.asked.setdefault(index, []).append(realm)

    def _fail(self, root: RootField, message: str, code: str, **extensions: Any) -> None:
        self.data[root.key] = None
        self.errors.append(_error(message, code, [root.key], **extensions))

    async def run(self) -> JSON:
        fields = self.analysis.fields
        for root in fields:
            self.data[root.key] = None
        for root in fields:
            await self._route(root)
        if self.analysis.kind == "mutation":
            answers = await self._run_serially()
        else:
            answers = await asyncio.gather(
                *(self._ask(realm, part) for realm, part in self.parts.items())
            )
        by_realm = {a.realm.id: a for a in answers}
        for root in fields:
            realms = [by_realm[r] for r in self.asked.get(root.index, ())]
            if root.kind == Kind.FANOUT:
                self._merge_fanout(root, realms)
            elif root.kind == Kind.ENTITIES:
                self._merge_entities(root, by_realm)
            elif root.kind == Kind.UNIQUE:
                self._merge_unique(root, realms)
            elif realms:
                self._merge_single(root, realms[0])
        for answer in answers:
            self.errors.extend(answer.errors.get(-1, ()))
        # Every realm asked answered ``data: null`` (a non-null root field failed in each):
        # so does this request, as one subgraph would, and the realms' errors explain it.
        nulled = bool(answers) and all(a.data is None and not a.unavailable for a in answers)
        response: JSON = {"data": None if nulled and self.errors else self.data}
        if self.errors:
            response["errors"] = _dedupe(self.errors)
        return response

    async def _route(self, root: RootField) -> None:
        enabled = self.snapshot.enabled()
        if root.kind == Kind.TYPENAME:
            root_type = self.layer.routing.root_type(self.analysis.kind)
            self.data[root.key] = root_type.name if root_type else None
        elif root.kind == Kind.SERVICE:
            if enabled:
                self._assign(enabled[0].id, root.index)
        elif root.kind == Kind.OWNER:
            realm = await self._owner(root)
            if realm is not None:
                self._assign(realm.id, root.index)
        elif root.kind == Kind.ENTITIES:
            await self._route_entities(root)
        elif root.kind == Kind.FANOUT and root.after_variable is not None:
            self._route_connection(root, enabled)
        else:
            for realm in enabled:
                self._assign(realm.id, root.index)
            if root.kind == Kind.FANOUT and not enabled:
                self.data[root.key] = []

    def _argument(self, root: RootField, name: str) -> Any:
        node = root.arguments.get(name)
        if node is not None:
            return value_from_ast_untyped(node, self.variables)
        root_type = self.layer.routing.root_type(self.analysis.kind)
        definition = root_type.fields.get(root.name) if root_type else None
        return argument_default(definition, name) if definition is not None else None

    async def _owner(self, root: RootField) -> RealmInfo | None:
        assert root.owner is not None
        path = root.owner.argument_path
        value = self._argument(root, path[0])
        for segment in path[1:]:
            value = value.get(segment) if isinstance(value, dict) else None
        values = value if isinstance(value, list) else [value]
        if not values or any(not isinstance(v, str) for v in values):
            self._fail(root, f"`{'.'.join(path)}` must name the realm of {root.name}",
                       BAD_USER_INPUT)
            return None
        realm_ids: set[str] = set()
        hub_objects = False
        for item in values:
            if root.owner.by_realm_id:
                if not ids.REALM_ID_RE.match(item):
                    self._fail(root, f"Unknown realm {item[:64]!r}", REALM_NOT_FOUND,
                               realm=item[:64])
                    return None
                realm_ids.add(item)
                continue
            try:
                gid = ids.decode(item)
            except ids.InvalidGlobalId as exc:
                self._fail(
                    root, invalid_id_message(str(exc), ".".join(path)), BAD_USER_INPUT
                )
                return None
            if gid.realm is None:
                if root.owner.hub_ids:
                    hub_objects = True  # any realm answers with the hub entity's reference
                    continue
                self._fail(root, invalid_id_message(
                    "Invalid ID: it does not name an object of a realm", ".".join(path)),
                    BAD_USER_INPUT)
                return None
            realm_ids.add(gid.realm)
        if hub_objects and not realm_ids:
            answering = next((r for r in self.snapshot.enabled() if r.reachable), None)
            if answering is None:
                self._fail(root, "No realm is available to resolve this ID", REALM_UNAVAILABLE)
                return None
            self.realms[answering.id] = answering
            return answering
        if len(realm_ids) != 1:
            self._fail(root, f"{root.name} takes IDs of one realm at a time", BAD_USER_INPUT)
            return None
        realm_id = realm_ids.pop()
        snapshot = await self.layer.registry.lookup([realm_id])
        realm = snapshot.get(realm_id)
        if realm is not None:
            self.realms[realm.id] = realm
        if realm is None:
            self._fail(root, f"Unknown realm {realm_id!r}", REALM_NOT_FOUND, realm=realm_id)
            return None
        if not realm.enabled:
            self._fail(root, f"Realm {realm.name} is disabled", REALM_UNAVAILABLE,
                       realm=realm.id)
            return None
        return realm

    def _route_connection(self, root: RootField, enabled: Sequence[RealmInfo]) -> None:
        assert root.fanout is not None and root.fanout.connection is not None
        shape = root.fanout.connection
        for name in shape.backward_arguments:
            if self._argument(root, name) is not None:
                self._fail(root, f"`{name}` is not supported on {root.name}: it is merged "
                           "across realms and paginates forward only (`first`/`after`)",
                           BAD_USER_INPUT)
                return
        try:
            after = decode_cursor(self._argument(root, shape.after_argument))
        except InvalidCursor:
            self._fail(root, "Invalid cursor", BAD_USER_INPUT)
            return
        first = self._argument(root, shape.first_argument) if shape.first_argument else None
        if first is None:
            first = shape.first_default
        if first is not None and (not isinstance(first, int) or isinstance(first, bool)):
            first = None
        self.after[root.index] = after
        self.first[root.index] = first
        assert root.after_variable is not None
        for realm in enabled:
            self._assign(realm.id, root.index, {root.after_variable: after.get(realm.id)})
        if not enabled:
            self.data[root.key] = None

    async def _route_entities(self, root: RootField) -> None:
        node = root.arguments.get("representations")
        representations = value_from_ast_untyped(node, self.variables) if node else None
        if not isinstance(representations, list):
            self._fail(root, "_entities needs a list of representations", BAD_USER_INPUT)
            return
        plan = _EntityPlan(representations)
        self.entities[root.index] = plan
        enabled = self.snapshot.enabled()
        by_index_user: dict[int, str] = {}
        owners: dict[int, str] = {}
        for i, rep in enumerate(representations):
            typename = rep.get("__typename") if isinstance(rep, dict) else None
            rep_id = rep.get("id") if isinstance(rep, dict) else None
            if not isinstance(typename, str):
                plan.local[i] = None
                self.errors.append(_error("Invalid representation", BAD_USER_INPUT,
                                          [root.key, i]))
                continue
            if not isinstance(rep_id, str):
                plan.targets[i] = [r.id for r in enabled]
                continue
            try:
                gid = ids.decode(rep_id)
            except ids.InvalidGlobalId as exc:
                plan.local[i] = None
                self.errors.append(_error(str(exc), BAD_USER_INPUT, [root.key, i]))
                continue
            if gid.realm is not None:
                owners[i] = gid.realm
            elif typename in self.layer.index_types and self.layer.index is not None:
                by_index_user[i] = rep_id
            else:
                plan.targets[i] = [r.id for r in enabled]
        if owners:
            snapshot = await self.layer.registry.lookup(sorted(set(owners.values())))
            for i, realm_id in owners.items():
                realm = snapshot.get(realm_id)
                if realm is not None:
                    self.realms[realm.id] = realm
                if realm is None or not realm.enabled:
                    plan.local[i] = None
                    message = (f"Unknown realm {realm_id!r}" if realm is None
                               else f"Realm {realm.name} is disabled")
                    code = REALM_NOT_FOUND if realm is None else REALM_UNAVAILABLE
                    self.errors.append(_error(message, code, [root.key, i], realm=realm_id))
                else:
                    plan.targets[i] = [realm_id]
        if by_index_user:
            assert self.layer.index is not None
            known = await self.layer.index.realms_for(
                list(by_index_user.values()), [r.id for r in enabled]
            )
            for i, user in by_index_user.items():
                realms = known.get(user)
                if realms is None:  # not in the index (or it failed): ask every realm
                    plan.targets[i] = [r.id for r in enabled]
                    continue
                # the index's realms of the user, and the realms it cannot vouch for
                chosen = [r.id for r in enabled if r.id in realms]
                if chosen:
                    plan.targets[i] = chosen
                    continue
                typename = representations[i]["__typename"]
                empty = self._empty_entity(root, typename)
                if empty is not None:
                    plan.local[i] = empty
                elif enabled:  # no realm knows the user, but the answer needs a realm
                    plan.targets[i] = [enabled[0].id]
                else:
                    plan.local[i] = None
        per_realm: dict[str, list[int]] = {}
        for i in sorted(plan.targets):
            for realm_id in plan.targets[i]:
                per_realm.setdefault(realm_id, []).append(i)
        assert root.representations_variable is not None
        for realm_id, indexes in per_realm.items():
            self._assign(
                realm_id,
                root.index,
                # a copy per realm: an in-process subgraph may consume what it is given
                # (strawberry pops ``__typename`` off each representation)
                {root.representations_variable: [dict(representations[i]) for i in indexes]},
            )
            self.entity_parts.setdefault(root.index, {})[realm_id] = indexes
        for i in range(len(representations)):
            if i not in plan.targets and i not in plan.local:
                plan.local[i] = None

    def _empty_entity(self, root: RootField, typename: str) -> JSON | None:
        """The answer of a realm that has nothing for this entity (lists empty, nullable
        fields null), or None when some selected field cannot be empty (ask a realm)."""
        routing = self.layer.routing
        out: JSON = {}
        fragments = self.analysis.fragments
        selection = root.entity_selection
        if selection is None:
            return None
        for sel in selection.selections:
            inner: SelectionSetNode | None
            if isinstance(sel, FieldNode):
                inner, condition = SelectionSetNode(selections=(sel,)), None
            elif isinstance(sel, InlineFragmentNode):
                inner = sel.selection_set
                condition = sel.type_condition.name.value if sel.type_condition else None
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments:
                definition = fragments[sel.name.value]
                inner, condition = definition.selection_set, definition.type_condition.name.value
            else:
                return None
            if condition is not None and not routing.implements(typename, condition):
                continue
            for key, nodes in collect_fields(inner, fragments).items():
                name = nodes[0].name.value
                if name == "__typename":
                    out[key] = typename
                    continue
                type_ = routing.field_type(typename, name)
                if type_ is None:
                    return None
                nullable = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
                if isinstance(nullable, GraphQLList):
                    out[key] = []
                elif not isinstance(type_, GraphQLNonNull):
                    out[key] = None
                else:
                    return None
        return out

    # -- sending -----------------------------------------------------------------------------

    async def _run_serially(self) -> list[_Answer]:
        """Mutation fields in order; consecutive fields of one realm share a request."""
        owner_of = {i: realms[0] for i, realms in self.asked.items()}
        answers: list[_Answer] = []
        group: list[int] = []
        group_realm: str | None = None

        async def flush() -> None:
            if group_realm is not None and group:
                part = _Part(list(group), dict(self.parts[group_realm].variables))
                answers.append(await self._ask(group_realm, part))

        for root in self.analysis.fields:
            realm_id = owner_of.get(root.index)
            if realm_id is None:
                continue
            if realm_id != group_realm:
                await flush()
                group, group_realm = [], realm_id
            group.append(root.index)
        await flush()
        if answers and self.layer.index is not None:
            await self.layer.index.invalidate()
        # one answer per realm for the merge: later groups of a realm extend the first
        merged: dict[str, _Answer] = {}
        for answer in answers:
            first = merged.get(answer.realm.id)
            if first is None:
                merged[answer.realm.id] = answer
                continue
            if answer.data is not None:
                first.data = {**(first.data or {}), **answer.data}
            for key, errors in answer.errors.items():
                first.errors.setdefault(key, []).extend(errors)
        return list(merged.values())

    async def _ask(self, realm_id: str, part: _Part) -> _Answer:
        realm = self.realms[realm_id]
        analysis = self.analysis
        used = analysis.used_variables(part.indexes)
        variables = {k: v for k, v in self.variables.items() if k in used}
        variables.update(part.variables)
        request = SubgraphRequest(
            query=analysis.sub_operation(part.indexes),
            variables=variables,
            operation_name=self.request.operation_name,
            headers=self.request.headers,
        )
        answer = await self._send(realm, part, request)
        metrics = self.layer.metrics
        if metrics is not None:
            metrics.realm_request(
                realm.id,
                "timeout" if answer.timed_out else "unavailable" if answer.unavailable else "ok",
            )
        return answer

    async def _send(self, realm: RealmInfo, part: _Part, request: SubgraphRequest) -> _Answer:
        analysis = self.analysis
        answer = _Answer(realm, None)
        try:
            async with asyncio.timeout(realm.timeout):
                response = await self.layer.instances.fetch(realm, request)
        except TimeoutError:
            log.warning("realm %s timed out after %d ms", realm.id, realm.timeout_ms)
            answer.unavailable = answer.timed_out = True
            return answer
        except SubgraphUnavailable as exc:
            log.warning("realm %s unavailable: %s", realm.id, exc.reason)
            answer.unavailable = True
            return answer
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("realm %s failed", realm.id)
            answer.unavailable = True
            return answer
        if not isinstance(response, dict):
            answer.unavailable = True
            return answer
        data = response.get("data")
        answer.data = data if isinstance(data, dict) else None
        keys = {analysis.fields[i].key: i for i in part.indexes}
        for error in response.get("errors") or ():
            if not isinstance(error, dict):
                error = {"message": str(error)}
            error = dict(error)
            extensions = dict(error.get("extensions") or {})
            extensions.setdefault("realm", realm.id)
            error["extensions"] = extensions
            path = error.get("path")
            target = keys.get(path[0], -1) if isinstance(path, list) and path else -1
            answer.errors.setdefault(target, []).append(error)
        return answer

    # -- merging -----------------------------------------------------------------------------

    def _field_value(self, answer: _Answer, root: RootField) -> Any:
        return answer.data.get(root.key) if answer.data is not None else None

    def _merge_single(self, root: RootField, answer: _Answer) -> None:
        if answer.unavailable:
            self.errors.append(answer.unavailable_error([root.key]))
            return
        self.data[root.key] = self._field_value(answer, root)
        self.errors.extend(answer.errors.get(root.index, ()))

    def _merge_unique(self, root: RootField, answers: Sequence[_Answer]) -> None:
        found = [
            a for a in answers if not a.unavailable and self._field_value(a, root) is not None
        ]
        for answer in answers:
            if answer.unavailable:
                self.errors.append(answer.unavailable_error([root.key]))
        if len(found) == 1:
            self.data[root.key] = self._field_value(found[0], root)
            self.errors.extend(found[0].errors.get(root.index, ()))
            return
        if len(found) > 1:
            realms = ", ".join(a.realm.id for a in found)
            self.errors.append(_error(
                f"{root.name} has no realm routing and several realms answered it ({realms}); "
                "the realm subgraph must declare @realmOwner or @realmFanout on it",
                REALM_ROUTING_AMBIGUOUS, [root.key],
            ))
            return
        for answer in answers:
            self.errors.extend(answer.errors.get(root.index, ()))

    def _merge_fanout(self, root: RootField, answers: Sequence[_Answer]) -> None:
        for answer in answers:
            if answer.unavailable:
                self.errors.append(answer.unavailable_error([root.key]))
        if root.after_variable is not None:
            self._merge_connection(root, answers)
            return
        lists: dict[str, list[Any]] = {}
        sources: list[Sorted] = []
        for answer in answers:
            items = self._field_value(answer, root)
            if answer.unavailable or not isinstance(items, list):
                continue
            realm_id = answer.realm.id
            lists[realm_id] = items
            sources.append(Sorted(realm_id, [self._item_key(root, item, realm_id)
                                             for item in items]))
        if not sources:
            if answers:
                self.data[root.key] = None
            for answer in answers:
                self.errors.extend(answer.errors.get(root.index, ()))
            return
        order = merge_order(sources)
        position = {entry: n for n, entry in enumerate(order)}
        self.data[root.key] = [strip_internal(lists[r][i], INTERNAL) for r, i in order]
        for answer in answers:
            for error in answer.errors.get(root.index, ()):
                path = error.get("path")
                if isinstance(path, list) and len(path) > 1 and isinstance(path[1], int):
                    new = position.get((answer.realm.id, path[1]))
                    if new is None:
                        continue
                    error = {**error, "path": [path[0], new, *path[2:]]}
                self.errors.append(error)

    def _item_key(self, root: RootField, item: Any, realm_id: str) -> tuple[Any, ...]:
        if not isinstance(item, dict):
            return order_key([None] * len(root.order_keys), realm_id, None)
        return order_key(
            [item.get(k) for k in root.order_keys],
            realm_id,
            item.get(root.id_key) if root.id_key else None,
        )

    def _merge_connection(self, root: RootField, answers: Sequence[_Answer]) -> None:
        keys = root.connection_keys
        assert keys is not None
        pages: list[RealmConnection] = []
        objects: dict[str, JSON] = {}
        for answer in answers:
            value = self._field_value(answer, root)
            if answer.unavailable or not isinstance(value, dict):
                continue
            edges = value.get(EDGES_KEY)
            page_info = value.get(PAGE_INFO_KEY)
            if not isinstance(edges, list) or not all(isinstance(e, dict) for e in edges):
                continue
            realm_id = answer.realm.id
            objects[realm_id] = value
            pages.append(RealmConnection(
                realm=realm_id,
                keys=[self._item_key(root, e.get(NODE_KEY), realm_id) for e in edges],
                cursors=[str(e.get(CURSOR_KEY)) for e in edges],
                has_next_page=bool(isinstance(page_info, dict) and page_info.get("hasNextPage")),
            ))
        if not pages:
            for answer in answers:
                self.errors.extend(answer.errors.get(root.index, ()))
            return
        after = self.after.get(root.index, {})
        page = merge_connection(pages, after, self.first.get(root.index))
        template = objects[pages[0].realm]
        merged: JSON = {}
        cursors = [cursor for _, _, cursor in page.edges]
        new_position = {(r, i): n for n, (r, i, _) in enumerate(page.edges)}
        for key, value in template.items():
            if key.startswith(INTERNAL):
                continue
            if key in keys.edges:
                merged[key] = self._merged_edges(key, keys.edges[key], page.edges, objects)
            elif key in keys.page_info:
                merged[key] = self._page_info(value, keys.page_info[key], page, cursors)
            elif key in keys.total_count:
                counts = [o.get(key) for o in objects.values()]
                ints = [c for c in counts if isinstance(c, int)]
                merged[key] = sum(ints) if ints else None
            else:
                merged[key] = next(
                    (o[key] for o in objects.values() if o.get(key) is not None), value
                )
        self.data[root.key] = merged
        for answer in answers:
            for error in answer.errors.get(root.index, ()):
                path = error.get("path")
                if isinstance(path, list) and len(path) > 1:
                    if isinstance(path[1], str) and path[1].startswith(INTERNAL):
                        continue
                    if path[1] in keys.edges and len(path) > 2 and isinstance(path[2], int):
                        new = new_position.get((answer.realm.id, path[2]))
                        if new is None:
                            continue
                        error = {**error, "path": [path[0], path[1], new, *path[3:]]}
                self.errors.append(error)

    @staticmethod
    def _merged_edges(
        key: str,
        cursor_keys: frozenset[str],
        edges: Sequence[tuple[str, int, str]],
        objects: Mapping[str, JSON],
    ) -> list[Any] | None:
        out: list[Any] = []
        for realm_id, index, cursor in edges:
            realm_edges = objects[realm_id].get(key)
            if not isinstance(realm_edges, list) or index >= len(realm_edges):
                return None
            edge = realm_edges[index]
            if isinstance(edge, dict) and cursor_keys:
                edge = {**edge, **dict.fromkeys(cursor_keys, cursor)}
            out.append(edge)
        return out

    @staticmethod
    def _page_info(
        value: Any, fields: Mapping[str, str], page: Any, cursors: Sequence[str]
    ) -> Any:
        if not isinstance(value, dict):
            return value
        out = dict(value)
        for key, name in fields.items():
            if name == "hasNextPage":
                out[key] = page.has_next_page
            elif name == "hasPreviousPage":
                out[key] = page.has_previous_page
            elif name == "startCursor":
                out[key] = cursors[0] if cursors else None
            elif name == "endCursor":
                out[key] = cursors[-1] if cursors else None
        return out

    def _merge_entities(self, root: RootField, by_realm: Mapping[str, _Answer]) -> None:
        plan = self.entities.get(root.index)
        if plan is None:
            return
        positions = self.entity_parts.get(root.index, {})
        # representation index -> [(realm order, entity)]
        parts: dict[int, list[tuple[int, Any]]] = {}
        order = {r.id: n for n, r in enumerate(self.snapshot.realms)}
        reported: set[tuple[str, int]] = set()
        for realm_id, indexes in positions.items():
            answer = by_realm.get(realm_id)
            if answer is None:
                continue
            if answer.unavailable:
                for i in indexes:
                    if (realm_id, i) not in reported:
                        reported.add((realm_id, i))
                        self.errors.append(answer.unavailable_error([root.key, i]))
                continue
            entities = self._field_value(answer, root)
            if not isinstance(entities, list):
                entities = []
            for j, i in enumerate(indexes):
                entity = entities[j] if j < len(entities) else None
                parts.setdefault(i, []).append((order.get(realm_id, len(order)), entity))
            for error in answer.errors.get(root.index, ()):
                path = error.get("path")
                if (
                    isinstance(path, list)
                    and len(path) > 1
                    and isinstance(path[1], int)
                    and 0 <= path[1] < len(indexes)
                ):
                    error = {**error, "path": [path[0], indexes[path[1]], *path[2:]]}
                self.errors.append(error)
        result: list[Any] = []
        for i in range(len(plan.representations)):
            if i in plan.local:
                result.append(plan.local[i])
                continue
            answered = [entity for _, entity in sorted(parts.get(i, ()), key=lambda p: p[0])]
            if len(plan.targets.get(i, ())) == 1:
                result.append(answered[0] if answered else None)
            else:
                result.append(merge_entity(answered))
        self.data[root.key] = result


def _dedupe(errors: list[JSON]) -> list[JSON]:
    """The same error from several realms (same message, path and code) once: a bad argument
    of a fanned-out field is reported by every realm."""
    seen: set[bytes] = set()
    out: list[JSON] = []
    for error in errors:
        extensions = error.get("extensions")
        code = extensions.get("code") if isinstance(extensions, dict) else None
        if code in (REALM_UNAVAILABLE, REALM_NOT_FOUND):
            code = (code, extensions.get("realm") if isinstance(extensions, dict) else None)
        try:
            key = orjson.dumps([error.get("message"), error.get("path"), code])
        except TypeError:
            out.append(error)
            continue
        if key not in seen:
            seen.add(key)
            out.append(error)
    return out
