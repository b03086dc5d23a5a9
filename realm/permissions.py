"""Every permission decision of a realm, in one place: :meth:`Permissions.can`.

A realm decides on its own data (posts, memberships, the group tree, group owners) and the
hub's policy statements (:mod:`pek.schema.policies`), whatever the router did before:

* a top-level admin (listed by the hub) may do everything;
* the group's owner (GOD) may do every group action on it;
* otherwise some statement that grants the action must apply: its realm and group scope
  cover the group, and the viewer is its grantee (a user, anyone, any signed-in user, the
  holder of a post in the group or in its parent, a member with a status, the parent's
  owner, or the leaders' council: active leaders of the realm's top-level groups).

``can(action, None)`` asks about the realm as a whole (creating a top-level group): only
statements that are not relative to a group can grant it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pek.realm import models
from pek.schema.context import ClientError
from pek.schema.policies import GROUP_RELATIVE, Action, GranteeKind, PolicySet, Statement

FORBIDDEN = "FORBIDDEN"
UNAUTHENTICATED = "UNAUTHENTICATED"


def signed_in(viewer_id: int | None) -> int:
    """The viewer of a write; an anonymous caller gets ``UNAUTHENTICATED``."""
    if viewer_id is None:
        raise ClientError("Sign in first", code=UNAUTHENTICATED)
    return viewer_id


@dataclass(frozen=True)
class Standing:
    """The viewer in one group: membership status and the posts of an active membership."""

    status: models.MembershipStatus
    posts: frozenset[models.PostKind]


@dataclass
class ViewerFacts:
    """What the realm knows of the viewer, read once per request."""

    standing: dict[int, Standing] = field(default_factory=dict)
    on_council: bool = False


class Permissions:
    """The permission checks of one request (viewer, realm, policies, the realm's data)."""

    def __init__(
        self,
        viewer_id: int | None,
        realm_id: str,
        sessions: async_sessionmaker[AsyncSession],
        policies: Callable[[], Awaitable[PolicySet]],
    ) -> None:
        self.viewer_id, self.realm_id, self.sessions = viewer_id, realm_id, sessions
        self._policies_of = policies
        self._policies: PolicySet | None = None
        self._facts: ViewerFacts | None = None
        self._groups: dict[int, models.Group | None] = {}
        # Resolvers ask concurrently: they all await one task (woken together, so the
        # DataLoaders they call next still batch), and the first read is the only one.
        self._policies_task: asyncio.Future[PolicySet] | None = None
        self._facts_task: asyncio.Future[ViewerFacts] | None = None

    async def policies(self) -> PolicySet:
        if self._policies is None:
            if self._policies_task is None:
                self._policies_task = asyncio.ensure_future(self._policies_of())
            self._policies = await self._policies_task
        return self._policies

    async def is_admin(self) -> bool:
        return self.viewer_id is not None and self.viewer_id in (await self.policies()).admins

    async def can(self, action: Action, group: models.Group | None) -> bool:
        """Whether the viewer may do ``action`` on ``group`` (None: on the realm)."""
        if await self.is_admin():
            return True
        if group is not None and self.viewer_id is not None and group.owner_id == self.viewer_id:
            return True
        for statement in (await self.policies()).granting(action):
            if statement.target_user_id is not None or not statement.applies_to_realm(
                self.realm_id
            ):
                continue
            if not await self._in_scope(statement, group):
                continue
            if await self._is_grantee(statement, group):
                return True
        return False

    async def require(self, action: Action, group: models.Group | None, message: str) -> None:
        """Raise ``UNAUTHENTICATED`` (anonymous) or ``FORBIDDEN`` unless :meth:`can`."""
        if await self.can(action, group):
            return
        if self.viewer_id is None:
            raise ClientError("Sign in first", code=UNAUTHENTICATED)
        raise ClientError(message, code=FORBIDDEN)

    async def visible_group_ids(self) -> set[int] | None:
        """The groups the viewer may view; None when that is all of them."""
        if await self.can(Action.VIEW_GROUP, None):  # a realm-wide statement grants it
            return None
        all_groups = await self._all_groups()
        visible = {g.id for g in all_groups if await self.can(Action.VIEW_GROUP, g)}
        return None if len(visible) == len(all_groups) else visible

    # -- the pieces --------------------------------------------------------------------------

    async def _in_scope(self, statement: Statement, group: models.Group | None) -> bool:
        if statement.group_id is None:
            return True
        if group is None:
            return False
        if group.id == statement.group_id:
            return True
        if not statement.subtree:
            return False
        parent_id = group.parent_id
        seen: set[int] = set()
        while parent_id is not None and parent_id not in seen:
            if parent_id == statement.group_id:
                return True
            seen.add(parent_id)
            parent = await self._group(parent_id)
            parent_id = parent.parent_id if parent is not None else None
        return False

    async def _is_grantee(self, statement: Statement, group: models.Group | None) -> bool:
        kind, viewer = statement.grantee, self.viewer_id
        if kind is GranteeKind.ANYONE:
            return True
        if viewer is None:
            return False
        if kind is GranteeKind.SIGNED_IN:
            return True
        if kind is GranteeKind.USER:
            return statement.grantee_user_id == viewer
        if kind is GranteeKind.COUNCIL:
            return (await self._viewer_facts()).on_council
        if kind not in GROUP_RELATIVE or group is None:
            return False
        facts = await self._viewer_facts()
        if kind is GranteeKind.MEMBER:
            standing = facts.standing.get(group.id)
            return standing is not None and standing.status.value == statement.grantee_role
        if kind is GranteeKind.POST:
            return _holds(facts.standing.get(group.id), statement.grantee_role)
        if group.parent_id is None:
            return False
        if kind is GranteeKind.PARENT_POST:
            return _holds(facts.standing.get(group.parent_id), statement.grantee_role)
        parent = await self._group(group.parent_id)  # PARENT_OWNER
        return parent is not None and parent.owner_id == viewer

    async def _viewer_facts(self) -> ViewerFacts:
        if self._facts is not None:
            return self._facts
        if self._facts_task is None:
            self._facts_task = asyncio.ensure_future(self._read_viewer_facts())
        self._facts = await self._facts_task
        return self._facts

    async def _read_viewer_facts(self) -> ViewerFacts:
        facts = ViewerFacts()
        if self.viewer_id is not None:
            M, P, G = models.Membership, models.Post, models.Group
            async with self.sessions() as session:
                memberships = list(await session.scalars(
                    select(M).where(M.user_id == self.viewer_id)
                ))
                posts: dict[int, set[models.PostKind]] = {}
                if memberships:
                    rows = await session.execute(
                        select(P.membership_id, P.kind).where(
                            P.membership_id.in_([m.id for m in memberships])
                        )
                    )
                    for membership_id, kind in rows:
                        posts.setdefault(membership_id, set()).add(kind)
                for m in memberships:
                    facts.standing[m.group_id] = Standing(m.status, frozenset(posts.get(m.id, ())))
                led = [
                    m.group_id for m in memberships
                    if m.status is models.MembershipStatus.ACTIVE
                    and models.PostKind.LEADER in posts.get(m.id, ())
                ]
                if led:
                    top = await session.scalar(
                        select(G.id).where(G.id.in_(led), G.parent_id.is_(None)).limit(1)
                    )
                    facts.on_council = top is not None
        return facts

    async def _group(self, group_id: int) -> models.Group | None:
        if group_id not in self._groups:
            async with self.sessions() as session:
                self._groups[group_id] = await session.get(models.Group, group_id)
        return self._groups[group_id]

    async def _all_groups(self) -> list[models.Group]:
        async with self.sessions() as session:
            groups = list(await session.scalars(select(models.Group)))
        self._groups.update({g.id: g for g in groups})
        return groups


def _holds(standing: Standing | None, post: str | None) -> bool:
    return (
        standing is not None
        and standing.status is models.MembershipStatus.ACTIVE
        and any(kind.value == post for kind in standing.posts)
    )
