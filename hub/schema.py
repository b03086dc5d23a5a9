"""The hub subgraph's GraphQL schema: users with basic and full profiles, the realm registry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Annotated

import strawberry
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.types import Info

from pek.hub import models
from pek.hub import policies as hub_policies
from pek.hub.loaders import HubLoaders
from pek.schema import ids
from pek.schema.context import ClientError, RequestContext, decode_id
from pek.schema.database import contains_words
from pek.schema.node import Node
from pek.schema.pagination import Connection, PageInfo, build_connection, page_window
from pek.schema.policies import Action, GranteeKind, PolicySet
from pek.schema.subgraph import SubgraphSchema

# Registering the model enums makes them GraphQL enums with the same values.
strawberry.enum(models.Dormitory, description="Where a user lives.")
strawberry.enum(models.Gender)
strawberry.enum(models.StudentStatus)
strawberry.enum(models.PrivacyAttribute, description="A profile attribute a user may show or hide.")

#: The longest search string accepted.
MAX_SEARCH_LENGTH = 200


@dataclass
class HubContext(RequestContext):
    sessions: async_sessionmaker[AsyncSession] | None = None
    loaders: HubLoaders | None = None
    _policies: PolicySet | None = None
    _grants: dict[tuple[Action, int], bool] = field(default_factory=dict)

    async def policies(self) -> PolicySet:
        """Every live statement and the admins, read once per request."""
        if self._policies is None:
            async with self.db()() as session:
                rows = await hub_policies.live_statements(session)
                self._policies = PolicySet(
                    version=0,
                    statements=tuple(hub_policies.to_statement(r) for r in rows),
                    admins=await hub_policies.admin_ids(session),
                )
        return self._policies

    async def profile_grant(self, action: Action, user_id: int) -> bool:
        """Whether a statement not relative to groups grants ``action`` on ``user_id``
        (decided once per request and pair: every basic-profile field asks)."""
        if user_id != 0 and await self.profile_grant(action, 0):
            return True  # granted on every user (signed-in users' basic profiles)
        key = (action, user_id)
        known = self._grants.get(key)
        if known is None:
            known = self._grants[key] = await self._profile_grant(action, user_id)
        return known

    async def _profile_grant(self, action: Action, user_id: int) -> bool:
        policies = await self.policies()
        viewer = self.viewer_id
        if viewer is not None and viewer in policies.admins:
            return True
        for s in policies.granting(action):
            if s.target_user_id not in (None, user_id):
                continue
            if (
                s.grantee is GranteeKind.ANYONE
                or (s.grantee is GranteeKind.SIGNED_IN and viewer is not None)
                or (s.grantee is GranteeKind.USER and viewer == s.grantee_user_id)
            ):
                return True
        return False

    def db(self) -> async_sessionmaker[AsyncSession]:
        assert self.sessions is not None
        return self.sessions

    def load(self) -> HubLoaders:
        assert self.loaders is not None
        return self.loaders


HubInfo = Info[HubContext, None]


@strawberry.type(description="A link to one of the user's accounts elsewhere.")
class ExternalAccount:
    protocol: str
    account_name: str


@strawberry.type(description="One switch of a user's privacy settings.")
class PrivacySetting:
    attribute: models.PrivacyAttribute
    visible: bool


@strawberry.type(
    description="The full profile; each attribute is null where the user's privacy settings "
    "hide it."
)
class FullProfile:
    email: str | None
    cell_phone: str | None
    room_number: str | None
    dormitory: models.Dormitory
    gender: models.Gender | None
    date_of_birth: dt.date | None
    home_address: str | None
    webpage: str | None
    student_status: models.StudentStatus
    external_accounts: list[ExternalAccount]


@strawberry.federation.type(
    keys=["id"],
    description="A person: one identity in the federation. The id is public; the basic "
    "profile (username, names, nickname, avatar) needs viewBasicProfile (every signed-in "
    "user by default: anonymous callers see null); the full profile needs viewFullProfile.",
)
class User(Node):
    id: strawberry.ID
    row: strawberry.Private[models.User]

    @classmethod
    def from_row(cls, row: models.User) -> User:
        return cls(id=strawberry.ID(ids.encode("User", row.id)), row=row)

    @strawberry.field(description="Null where the viewer may not see the basic profile.")
    async def username(self, info: HubInfo) -> str | None:
        return self.row.username if await _sees_basic(info, self.row.id) else None

    @strawberry.field(description="Null where the viewer may not see the basic profile.")
    async def first_name(self, info: HubInfo) -> str | None:
        return self.row.first_name if await _sees_basic(info, self.row.id) else None

    @strawberry.field(description="Null where the viewer may not see the basic profile.")
    async def last_name(self, info: HubInfo) -> str | None:
        return self.row.last_name if await _sees_basic(info, self.row.id) else None

    @strawberry.field(description="Null where the viewer may not see the basic profile.")
    async def nickname(self, info: HubInfo) -> str | None:
        return self.row.nickname if await _sees_basic(info, self.row.id) else None

    @strawberry.field(description="Null where the viewer may not see the basic profile.")
    async def avatar_url(self, info: HubInfo) -> str | None:
        return self.row.avatar_url if await _sees_basic(info, self.row.id) else None

    @classmethod
    def resolve_reference(cls, info: HubInfo, id: strawberry.ID) -> Awaitable[User | None]:
        local_id = decode_id(id, "User")
        return _load_user(info, local_id)

    @strawberry.field(description='Display name, family name first ("Kovács Anna"); null '
                      "where the viewer may not see the basic profile.")
    async def name(self, info: HubInfo) -> str | None:
        if not await _sees_basic(info, self.row.id):
            return None
        return f"{self.row.last_name} {self.row.first_name}"

    @strawberry.field(
        description="The full profile: to the user themself, and where a policy grants "
        "viewFullProfile (by default: active members of a shared group), filtered by the "
        "user's privacy settings; null otherwise (always for anonymous callers)."
    )
    async def full_profile(self, info: HubInfo) -> FullProfile | None:
        context = info.context
        is_self = context.viewer_id == self.row.id
        if not is_self and not await _sees_full(info, self.row.id):
            return None
        loaders = context.load()
        switches = await loaders.privacy.load(self.row.id)
        accounts = await loaders.external_accounts.load(self.row.id)

        def shown(attribute: models.PrivacyAttribute) -> bool:
            return is_self or switches.get(attribute, False)

        row, attr = self.row, models.PrivacyAttribute
        return FullProfile(
            email=row.email if shown(attr.EMAIL) else None,
            cell_phone=row.cell_phone if shown(attr.CELL_PHONE) else None,
            room_number=row.room_number if shown(attr.ROOM_NUMBER) else None,
            dormitory=row.dormitory,
            gender=row.gender if shown(attr.GENDER) else None,
            date_of_birth=row.date_of_birth if shown(attr.DATE_OF_BIRTH) else None,
            home_address=row.home_address if shown(attr.HOME_ADDRESS) else None,
            webpage=row.webpage if shown(attr.WEBPAGE) else None,
            student_status=row.student_status,
            external_accounts=[
                ExternalAccount(protocol=a.protocol, account_name=a.account_name) for a in accounts
            ],
        )

    @strawberry.field(description="The user's privacy switches; visible to the user only.")
    async def privacy_settings(self, info: HubInfo) -> list[PrivacySetting] | None:
        if info.context.viewer_id != self.row.id:
            return None
        switches = await info.context.load().privacy.load(self.row.id)
        return [
            PrivacySetting(attribute=attribute, visible=switches.get(attribute, False))
            for attribute in models.PrivacyAttribute
        ]


@strawberry.federation.type(
    keys=["id"], description="A realm of the federation (a community with its own groups)."
)
class Realm:
    id: strawberry.ID = strawberry.field(description='The realm id ("kir", "sch-events").')
    name: str
    description: str | None

    @classmethod
    def from_row(cls, row: models.Realm) -> Realm:
        return cls(id=strawberry.ID(row.id), name=row.name, description=row.description)

    @classmethod
    async def resolve_reference(cls, info: HubInfo, id: strawberry.ID) -> Realm | None:
        # Disabled realms resolve too: their objects may still be on a client's screen.
        async with info.context.db()() as session:
            row = await session.get(models.Realm, str(id))
        return cls.from_row(row) if row is not None else None


async def _sees_basic(info: HubInfo, user_id: int) -> bool:
    if info.context.viewer_id == user_id:
        return True
    return await info.context.profile_grant(Action.VIEW_BASIC_PROFILE, user_id)


async def _sees_full(info: HubInfo, user_id: int) -> bool:
    """viewFullProfile for a signed-in viewer: a direct statement, or a shared group."""
    context = info.context
    if context.viewer_id is None:
        return False
    if await context.profile_grant(Action.VIEW_FULL_PROFILE, user_id):
        return True
    return await context.load().shares_group.load(user_id)


async def _load_user(info: HubInfo, local_id: int) -> User | None:
    row = await info.context.load().user.load(local_id)
    return User.from_row(row) if row is not None else None


def _user_search(statement: Select[models.User], search: str) -> Select[models.User]:
    """Every word of ``search`` must occur (case-insensitively) in some name field."""
    columns = (
        models.User.first_name,
        models.User.last_name,
        models.User.nickname,
        models.User.username,
    )
    return statement.where(*contains_words(columns, search))


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in user, or null.")
    async def me(self, info: HubInfo) -> User | None:
        viewer = info.context.viewer_id
        return await _load_user(info, viewer) if viewer is not None else None

    @strawberry.field(description="A user by global ID; null if there is none.")
    async def user(self, info: HubInfo, id: strawberry.ID) -> User | None:
        return await _load_user(info, decode_id(id, "User"))

    @strawberry.field(description="Users, by family name, optionally filtered by a search; "
                      "for viewers who may see basic profiles (signed-in users by default): "
                      "null with an UNAUTHENTICATED error for anonymous callers.")
    async def users(
        self,
        info: HubInfo,
        search: Annotated[
            str | None,
            strawberry.argument(description="Words to find in names, nickname or username."),
        ] = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[User] | None:
        # Only statements about every user (not one target user) let a viewer list people.
        if not await info.context.profile_grant(Action.VIEW_BASIC_PROFILE, 0):
            code = "UNAUTHENTICATED" if info.context.viewer_id is None else "FORBIDDEN"
            raise ClientError("Sign in to see people", code=code)
        window = page_window(first, after)
        if search is not None and len(search) > MAX_SEARCH_LENGTH:
            raise ClientError(f"`search` must be at most {MAX_SEARCH_LENGTH} characters")
        statement = select(models.User)
        if search:
            statement = _user_search(statement, search)
        sessions = info.context.db()
        async with sessions() as session:
            rows = list(
                await session.scalars(
                    statement.order_by(
                        models.User.last_name, models.User.first_name, models.User.id
                    )
                    .offset(window.offset)
                    .limit(window.limit + 1)
                )
            )

        async def count_total() -> int:
            async with sessions() as session:
                counted = await session.scalar(
                    statement.with_only_columns(func.count(models.User.id)).order_by(None)
                )
            return int(counted or 0)

        return build_connection([User.from_row(r) for r in rows], window, count_total)

    @strawberry.field(description="The realms of the federation, in display order.")
    async def realms(self, info: HubInfo) -> list[Realm]:
        async with info.context.db()() as session:
            rows = await session.scalars(
                select(models.Realm)
                .where(models.Realm.enabled.is_(True))
                .order_by(models.Realm.position, models.Realm.id)
            )
            return [Realm.from_row(r) for r in rows]


def build_schema() -> SubgraphSchema:
    """The hub's federation schema."""
    from strawberry.tools import merge_types

    # They build on the types above.
    from pek.hub.policy_schema import Mutation, PolicyQuery
    from pek.hub.profile_schema import ProfileMutation

    query = merge_types("Query", (Query, PolicyQuery))
    mutation = merge_types("Mutation", (Mutation, ProfileMutation))
    return SubgraphSchema(query=query, mutation=mutation, types=[User, Realm, PageInfo])
