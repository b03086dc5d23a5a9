"""Small real Federation v2 subgraphs for the realm-routing tests.

``hub``: ``User`` (key ``id``) with ``name``; ``Query.users``.
``realm``: one strawberry schema served by many *instances*, one per realm, each with its own
in-memory data. It declares the routing directives exactly as the product's realm subgraph does
(composed ``@realmOwner`` / ``@realmFanout``): groups by owner, a fanned-out connection and list,
an undirected field, ``node``, mutations, and ``User.memberships``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from strawberry.printer import print_schema
from strawberry.schema_directive import Location

from pek.router.composition import SubgraphDefinition, compose
from pek.router.transport import SubgraphRequest
from pek.schema import ids

SPEC = "https://pek.sch.bme.hu/realmRouting/v0.1"


@strawberry.federation.schema_directive(
    locations=[Location.FIELD_DEFINITION], name="realmOwner", compose=True, import_url=SPEC
)
class RealmOwner:
    argument: str


@strawberry.federation.schema_directive(
    locations=[Location.FIELD_DEFINITION], name="realmFanout", compose=True, import_url=SPEC
)
class RealmFanout:
    order_by: list[str]


# -- data ----------------------------------------------------------------------------------


@dataclass
class RealmData:
    """One realm's rows: groups (local id -> name) and memberships (id -> (group, user))."""

    groups: dict[int, str] = field(default_factory=dict)
    memberships: dict[int, tuple[int, int]] = field(default_factory=dict)
    mutations: list[str] = field(default_factory=list)

    def add_group(self, name: str) -> int:
        local = max(self.groups, default=0) + 1
        self.groups[local] = name
        return local

    def add_membership(self, group: int, user: int) -> int:
        local = max(self.memberships, default=0) + 1
        self.memberships[local] = (group, user)
        return local


@dataclass
class Ctx:
    realm: str
    data: RealmData


def _ctx(info: strawberry.Info) -> Ctx:
    context: Ctx = info.context
    return context


def _local(info: strawberry.Info, value: str, type_name: str) -> int | None:
    """The local id of an ID of this realm; None for an ID of another realm (scoping)."""
    gid = ids.decode(value, expected_type=type_name)
    return gid.local_id if gid.realm == _ctx(info).realm else None


# -- realm schema ----------------------------------------------------------------------------


@strawberry.interface
class Node:
    id: strawberry.ID


@strawberry.federation.type(keys=["id"])
class User:
    id: strawberry.ID

    @classmethod
    def resolve_reference(cls, id: strawberry.ID, info: strawberry.Info) -> User:
        ids.decode(id, expected_type="User")
        return User(id=id)

    @strawberry.field
    def memberships(self, info: strawberry.Info) -> list[Membership]:
        ctx = _ctx(info)
        user = ids.decode(self.id, expected_type="User").local_id
        return [
            Membership.of(ctx, m) for m, (_, u) in sorted(ctx.data.memberships.items()) if u == user
        ]


@strawberry.federation.type(keys=["id"])
class Group(Node):
    id: strawberry.ID
    name: str
    realm_id: str
    local_id: strawberry.Private[int]

    @classmethod
    def of(cls, ctx: Ctx, local: int) -> Group:
        return Group(
            id=strawberry.ID(ids.encode("Group", local, realm=ctx.realm)),
            name=ctx.data.groups[local],
            realm_id=ctx.realm,
            local_id=local,
        )

    @classmethod
    def resolve_reference(cls, id: strawberry.ID, info: strawberry.Info) -> Group | None:
        local = _local(info, id, "Group")
        ctx = _ctx(info)
        return Group.of(ctx, local) if local in ctx.data.groups else None

    @strawberry.field
    def members(self, info: strawberry.Info) -> list[Membership]:
        ctx = _ctx(info)
        return [
            Membership.of(ctx, m)
            for m, (g, _) in sorted(ctx.data.memberships.items())
            if g == self.local_id
        ]


@strawberry.federation.type(keys=["id"])
class Membership(Node):
    id: strawberry.ID
    group_local: strawberry.Private[int]
    user_local: strawberry.Private[int]

    @classmethod
    def of(cls, ctx: Ctx, local: int) -> Membership:
        group, user = ctx.data.memberships[local]
        return Membership(
            id=strawberry.ID(ids.encode("Membership", local, realm=ctx.realm)),
            group_local=group,
            user_local=user,
        )

    @strawberry.field
    def group(self, info: strawberry.Info) -> Group:
        return Group.of(_ctx(info), self.group_local)

    @strawberry.field
    def user(self) -> User:
        return User(id=strawberry.ID(ids.encode("User", self.user_local)))


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class GroupEdge:
    cursor: str
    node: Group


@strawberry.type
class GroupConnection:
    edges: list[GroupEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class RealmStats:
    realm_id: str
    group_count: int


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        assert raw.startswith("offset:")
        return int(raw[len("offset:") :])
    except Exception:
        raise ValueError("Invalid cursor") from None


@strawberry.input
class CreateGroupInput:
    realm: str
    name: str


@strawberry.type
class Query:
    @strawberry.field(directives=[RealmOwner(argument="id")])
    def group(self, info: strawberry.Info, id: strawberry.ID) -> Group | None:
        local = _local(info, id, "Group")
        ctx = _ctx(info)
        return Group.of(ctx, local) if local in ctx.data.groups else None

    @strawberry.field(directives=[RealmOwner(argument="id")])
    def node(self, info: strawberry.Info, id: strawberry.ID) -> Node | None:
        gid = ids.decode(id)
        ctx = _ctx(info)
        if gid.realm != ctx.realm:
            return None
        if gid.type_name == "Group" and gid.local_id in ctx.data.groups:
            return Group.of(ctx, gid.local_id)
        if gid.type_name == "Membership" and gid.local_id in ctx.data.memberships:
            return Membership.of(ctx, gid.local_id)
        return None

    @strawberry.field(directives=[RealmFanout(order_by=["name"])])
    def groups(
        self,
        info: strawberry.Info,
        first: int | None = 20,
        after: str | None = None,
        search: str | None = None,
    ) -> GroupConnection:
        ctx = _ctx(info)
        if first is not None and (first < 0 or first > 100):
            raise ValueError("`first` must be between 0 and 100")
        rows = sorted(
            (name, local)
            for local, name in ctx.data.groups.items()
            if not search or search.lower() in name.lower()
        )
        start = 0 if after is None else _offset(after) + 1
        limit = 20 if first is None else first
        page = rows[start : start + limit]
        edges = [
            GroupEdge(cursor=_cursor(start + i), node=Group.of(ctx, local))
            for i, (_, local) in enumerate(page)
        ]
        return GroupConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=start + limit < len(rows),
                has_previous_page=start > 0,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=len(rows),
        )

    @strawberry.field(directives=[RealmFanout(order_by=["name"])])
    def search_groups(self, info: strawberry.Info, search: str) -> list[Group]:
        ctx = _ctx(info)
        rows = sorted((n, g) for g, n in ctx.data.groups.items() if search.lower() in n.lower())
        return [Group.of(ctx, g) for _, g in rows]

    @strawberry.field(directives=[RealmOwner(argument="realm")])
    def realm_stats(self, info: strawberry.Info, realm: str) -> RealmStats:
        ctx = _ctx(info)
        assert realm == ctx.realm, "routed to the wrong realm"
        return RealmStats(realm_id=ctx.realm, group_count=len(ctx.data.groups))

    @strawberry.field
    def group_by_name(self, info: strawberry.Info, name: str) -> Group | None:
        ctx = _ctx(info)
        for local, group_name in sorted(ctx.data.groups.items()):
            if group_name == name:
                return Group.of(ctx, local)
        return None


@strawberry.type
class Mutation:
    @strawberry.mutation(directives=[RealmOwner(argument="input.realm")])
    def create_group(self, info: strawberry.Info, input: CreateGroupInput) -> Group:
        ctx = _ctx(info)
        assert input.realm == ctx.realm, "routed to the wrong realm"
        ctx.data.mutations.append(f"create {input.name}")
        return Group.of(ctx, ctx.data.add_group(input.name))

    @strawberry.mutation(directives=[RealmOwner(argument="id")])
    def rename_group(self, info: strawberry.Info, id: strawberry.ID, name: str) -> Group | None:
        ctx = _ctx(info)
        local = _local(info, id, "Group")
        if local not in ctx.data.groups:
            return None
        assert local is not None
        ctx.data.mutations.append(f"rename {local} {name}")
        ctx.data.groups[local] = name
        return Group.of(ctx, local)

    @strawberry.mutation
    def reset_all(self, info: strawberry.Info) -> bool:
        _ctx(info).data.groups.clear()
        return True


REALM_SCHEMA = strawberry.federation.Schema(
    query=Query, mutation=Mutation, types=[Group, Membership, User]
)


# -- hub schema ------------------------------------------------------------------------------

USER_NAMES = {1: "Ada", 2: "Bea", 3: "Cili", 4: "Dori", 5: "Emma"}


@strawberry.federation.type(keys=["id"], name="User")
class HubUser:
    id: strawberry.ID

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> HubUser | None:
        local = ids.decode(id, expected_type="User").local_id
        return HubUser(id=id) if local in USER_NAMES else None

    @strawberry.field
    def name(self) -> str:
        return USER_NAMES[ids.decode(self.id, expected_type="User").local_id]


@strawberry.type(name="Query")
class HubQuery:
    @strawberry.field
    def users(self) -> list[HubUser]:
        return [HubUser(id=strawberry.ID(ids.encode("User", i))) for i in USER_NAMES]


HUB_SCHEMA = strawberry.federation.Schema(query=HubQuery)


def supergraph_sdl() -> str:
    return compose(
        [
            SubgraphDefinition("hub", "in-process://hub", print_schema(HUB_SCHEMA)),
            SubgraphDefinition("realm", "in-process://realm", print_schema(REALM_SCHEMA)),
        ]
    )


# -- instances -------------------------------------------------------------------------------


class HubInstance:
    """The hub subgraph in-process (a ``LocalSubgraph``)."""

    async def execute(self, request: SubgraphRequest) -> dict[str, Any]:
        result = await HUB_SCHEMA.execute(
            request.query, variable_values=dict(request.variables or {}),
            operation_name=request.operation_name,
        )
        return _response(result)


class RealmInstance:
    """One realm's instance of the realm subgraph (a ``LocalSubgraph``), with knobs to make it
    slow or broken, and a log of the requests it received."""

    def __init__(self, realm: str, data: RealmData | None = None, delay: float = 0.0) -> None:
        self.realm = realm
        self.data = data or RealmData()
        self.delay = delay
        self.requests: list[SubgraphRequest] = []

    async def execute(self, request: SubgraphRequest) -> dict[str, Any]:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        result = await REALM_SCHEMA.execute(
            request.query,
            variable_values=dict(request.variables or {}),
            operation_name=request.operation_name,
            context_value=Ctx(self.realm, self.data),
        )
        return _response(result)


def _response(result: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"data": result.data}
    if result.errors:
        out["errors"] = [e.formatted for e in result.errors]
    return out


def realms_app(instances: Mapping[str, RealmInstance]) -> Starlette:
    """An HTTP server for several realm instances: ``POST /realms/<id>/graphql``."""

    async def graphql(request: Request) -> JSONResponse:
        instance = instances.get(request.path_params["realm"])
        if instance is None:
            return JSONResponse({"errors": [{"message": "no such realm"}]}, status_code=404)
        body = await request.json()
        result = await instance.execute(
            SubgraphRequest(
                query=body["query"],
                variables=body.get("variables"),
                operation_name=body.get("operationName"),
            )
        )
        return JSONResponse(result)

    return Starlette(routes=[Route("/realms/{realm}/graphql", graphql, methods=["POST"])])
