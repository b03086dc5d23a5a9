"""The realm's mutations: applying to a group, managing memberships and posts, creating and
editing groups, moving a group's owner; the evaluation workflow's are in
:mod:`pek.realm.evaluations`.

Every permission is decided by :mod:`pek.realm.permissions`, before anything is written: a
denied mutation answers ``FORBIDDEN`` (``UNAUTHENTICATED`` for an anonymous caller) and
changes nothing. Every mutation runs in one transaction of the request's realm: on any error
nothing changes.
Each membership change queues a federation-index update in the same transaction
(:func:`pek.realm.index.record_membership_change`). All are ``@realmOwner``: the router sends
them to the realm that owns their ID argument.
"""

from __future__ import annotations

import datetime as dt

import strawberry
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pek.realm import models
from pek.realm.evaluations import EvaluationMutation
from pek.realm.index import record_membership_change
from pek.realm.permissions import FORBIDDEN, signed_in
from pek.realm.routing import owner
from pek.realm.schema import Group, Membership, RealmInfo
from pek.schema.context import ClientError, decode_id
from pek.schema.policies import Action

MAX_NAME_LENGTH = 200
MAX_TEXT_LENGTH = 5000


async def _require_on_group(
    info: RealmInfo, session: AsyncSession, action: Action, group_id: int, message: str
) -> models.Group:
    group = await session.get(models.Group, group_id)
    if group is None:
        raise ClientError("No group with this ID")
    await info.context.perms().require(action, group, message)
    return group


def _checked_text(value: str | None, name: str, limit: int = MAX_TEXT_LENGTH) -> str | None:
    if value is not None and len(value) > limit:
        raise ClientError(f"`{name}` must be at most {limit} characters")
    return value


def _record_owner(
    session: AsyncSession, group: models.Group, kind: str, user_id: int, actor: int,
    previous: int | None = None, post_kind: models.PostKind | None = None,
) -> None:
    session.add(models.GroupGrant(
        group_id=group.id, kind=kind, user_id=user_id, previous_user_id=previous,
        granted_by=actor, granted_at=dt.datetime.now(dt.UTC), post_kind=post_kind,
    ))


#: Posts that carry the group's management (a leader assistant must not crown themself):
#: giving or ending one needs editGroupProfile (the owner, the leaders), the others
#: editMembers.
MANAGING_POSTS = frozenset({models.PostKind.LEADER})
#: Posts the realm gives itself: NEW_MEMBER on acceptance, FORMER_LEADER when a leader's post
#: ends.
AUTOMATIC_POSTS = frozenset({models.PostKind.NEW_MEMBER, models.PostKind.FORMER_LEADER})


async def _require_for_post(
    info: RealmInfo, session: AsyncSession, kind: models.PostKind, group_id: int
) -> models.Group:
    if kind in MANAGING_POSTS:
        return await _require_on_group(
            info, session, Action.EDIT_GROUP_PROFILE, group_id,
            f"Only the group's owner or leaders may give or end the {kind.value} post")
    return await _require_on_group(info, session, Action.EDIT_MEMBERS, group_id,
                                   "Only the group's managers may give or end posts")


async def _membership(session: AsyncSession, info: RealmInfo, value: str) -> models.Membership:
    row = await session.get(models.Membership, info.context.local_id(value, "Membership"))
    if row is None:
        raise ClientError("No membership with this ID")
    return row


async def _change_status(
    session: AsyncSession, membership: models.Membership, status: models.MembershipStatus
) -> None:
    """Close the open status period and open one of ``status`` today."""
    today = dt.date.today()
    P = models.MembershipStatusPeriod
    open_periods = await session.scalars(
        select(P).where(P.membership_id == membership.id, P.until.is_(None))
    )
    for period in open_periods:
        period.until = today
    session.add(models.MembershipStatusPeriod(
        membership_id=membership.id, status=status, since=today
    ))
    membership.status = status


def _update_profile(
    row: models.Group, description: str | None, webpage: str | None,
    mailing_list: str | None, users_can_apply: bool | None,
) -> None:
    """Set the group's profile fields that are given (None leaves a field as it is)."""
    if description is not None:
        row.description = description
    if webpage is not None:
        row.webpage = webpage
    if mailing_list is not None:
        row.mailing_list = mailing_list
    if users_can_apply is not None:
        row.users_can_apply = users_can_apply


async def _lock_tree_path(session: AsyncSession, group_id: int, parent_id: int | None) -> None:
    """Lock the moved group and the new parent's ancestors (in id order, so two moves never
    wait on each other in a circle), then check the move makes no cycle."""
    G = models.Group
    for _ in range(5):
        chain: list[int] = []
        current = parent_id
        while current is not None and current not in chain:
            chain.append(current)
            current = await session.scalar(select(G.parent_id).where(G.id == current))
        locked = sorted({group_id, *chain})
        rows = {g.id: g for g in await session.scalars(
            select(G).where(G.id.in_(locked)).order_by(G.id).with_for_update()
        )}
        # Under the locks the chain cannot change: walk it again and compare.
        again: list[int] = []
        current = parent_id
        while current is not None and current not in again:
            again.append(current)
            held = rows.get(current)
            current = held.parent_id if held is not None else await session.scalar(
                select(G.parent_id).where(G.id == current))
        if again == chain:
            if group_id in chain:
                raise ClientError("A group cannot go under itself or one of its subgroups")
            return
    raise ClientError("The group tree is changing: try again", code="CONFLICT")


def _committed(info: RealmInfo) -> None:
    if info.context.notify_index is not None:
        info.context.notify_index()


@strawberry.type
class Mutation(EvaluationMutation):
    @strawberry.mutation(
        description="Apply to a group as the signed-in user: a pending (NEWBIE) membership.",
        directives=[owner("groupId")],
    )
    async def apply_to_group(self, info: RealmInfo, group_id: strawberry.ID) -> Membership:
        viewer = signed_in(info.context.viewer_id)
        local_group = info.context.local_id(group_id, "Group")
        try:
            async with info.context.db().begin() as session:
                group = await session.get(models.Group, local_group)
                if group is None or not await info.context.perms().can(
                    Action.VIEW_GROUP, group
                ):
                    raise ClientError("No group with this ID")
                if group.archived or not group.users_can_apply:
                    raise ClientError("This group does not take applications", code=FORBIDDEN)
                M = models.Membership
                existing = await session.scalar(
                    select(M.id).where(M.group_id == group.id, M.user_id == viewer)
                )
                if existing is not None:
                    raise ClientError("You are already a member of this group or have applied")
                row = M(
                    group_id=group.id, user_id=viewer, joined_at=dt.date.today(),
                    status=models.MembershipStatus.NEWBIE,
                )
                session.add(row)
                await session.flush()
                session.add(models.MembershipStatusPeriod(
                    membership_id=row.id, status=models.MembershipStatus.NEWBIE,
                    since=row.joined_at,
                ))
                record_membership_change(session, [viewer])
        except IntegrityError:
            # A concurrent application of the same user won the unique constraint.
            raise ClientError(
                "You are already a member of this group or have applied"
            ) from None
        _committed(info)
        return Membership.of(info, row)

    @strawberry.mutation(
        description="Withdraw the signed-in user's own pending application.",
        directives=[owner("membershipId")],
    )
    async def withdraw_application(self, info: RealmInfo, membership_id: strawberry.ID) -> bool:
        viewer = signed_in(info.context.viewer_id)
        async with info.context.db().begin() as session:
            row = await _membership(session, info, membership_id)
            if row.user_id != viewer:
                raise ClientError("You can only withdraw your own application", code=FORBIDDEN)
            if row.status is not models.MembershipStatus.NEWBIE:
                raise ClientError("Only a pending application can be withdrawn")
            for model in (models.MembershipStatusPeriod, models.Post):
                await session.execute(delete(model).where(model.membership_id == row.id))
            await session.delete(row)
            record_membership_change(session, [viewer])
        _committed(info)
        return True

    @strawberry.mutation(
        description="Accept a pending application (group leaders and leader assistants).",
        directives=[owner("membershipId")],
    )
    async def accept_membership(
        self, info: RealmInfo, membership_id: strawberry.ID
    ) -> Membership:
        signed_in(info.context.viewer_id)
        async with info.context.db().begin() as session:
            row = await _membership(session, info, membership_id)
            await _require_on_group(info, session, Action.EDIT_MEMBERS, row.group_id,
                                    "Only the group's managers may accept members")
            if row.status is not models.MembershipStatus.NEWBIE:
                raise ClientError("Only a pending application can be accepted")
            await _change_status(session, row, models.MembershipStatus.ACTIVE)
            session.add(models.Post(
                membership_id=row.id, kind=models.PostKind.NEW_MEMBER, since=dt.date.today()
            ))
            record_membership_change(session, [row.user_id])
        _committed(info)
        return Membership.of(info, row)

    @strawberry.mutation(
        description="Set a membership's status: ACTIVE, FORMER or ARCHIVED (group leaders and "
        "leader assistants; a pending application is accepted with acceptMembership).",
        directives=[owner("membershipId")],
    )
    async def set_membership_status(
        self, info: RealmInfo, membership_id: strawberry.ID, status: models.MembershipStatus
    ) -> Membership:
        signed_in(info.context.viewer_id)
        async with info.context.db().begin() as session:
            row = await _membership(session, info, membership_id)
            await _require_on_group(info, session, Action.EDIT_MEMBERS, row.group_id,
                                    "Only the group's managers may change memberships")
            if status is models.MembershipStatus.NEWBIE:
                raise ClientError("A membership cannot be set back to NEWBIE")
            if row.status is models.MembershipStatus.NEWBIE:
                raise ClientError("Accept the application first (acceptMembership)")
            if row.status is status:
                raise ClientError(f"The membership is {status.value} already")
            await _change_status(session, row, status)
            record_membership_change(session, [row.user_id])
        _committed(info)
        return Membership.of(info, row)

    @strawberry.mutation(
        description="Create a group in `realm`: top-level (no `parentId`; top-level admins "
        "and the leaders' council) or a subgroup of `parentId` (createGroup on the parent: "
        "its leaders and owner). The creator becomes the group's owner (GOD); the parent's "
        "managers keep moveGroupOwner on it.",
        directives=[owner("realm")],
    )
    async def create_group(
        self,
        info: RealmInfo,
        realm: str,
        name: str,
        purpose: models.GroupPurpose,
        parent_id: strawberry.ID | None = None,
        description: str | None = None,
        users_can_apply: bool = True,
    ) -> Group:
        viewer = signed_in(info.context.viewer_id)
        if realm != info.context.realm_id:
            raise ClientError("`realm` is not the realm this request was sent to")
        name = name.strip()
        if not name or len(name) > MAX_NAME_LENGTH:
            raise ClientError(f"`name` must be 1-{MAX_NAME_LENGTH} characters")
        _checked_text(description, "description")
        parent_local = info.context.local_id(parent_id, "Group") if parent_id else None
        perms = info.context.perms()
        try:
            async with info.context.db().begin() as session:
                if parent_local is None:
                    await perms.require(Action.CREATE_GROUP, None,
                                        "Only a top-level admin or the leaders' council may "
                                        "create a top-level group")
                else:
                    await _require_on_group(info, session, Action.CREATE_GROUP, parent_local,
                                            "You may not create subgroups of this group")
                G = models.Group
                if await session.scalar(select(G.id).where(G.name == name)) is not None:
                    raise ClientError("A group of this name exists in this realm")
                row = G(
                    name=name, description=description, purpose=purpose,
                    parent_id=parent_local, founded_at=dt.date.today(),
                    users_can_apply=users_can_apply, archived=False, owner_id=viewer,
                )
                session.add(row)
                await session.flush()
                _record_owner(session, row, "OWNER", viewer, viewer)
        except IntegrityError:
            raise ClientError("A group of this name exists in this realm") from None
        return Group.of(info, row)

    @strawberry.mutation(
        description="Edit a group's profile, rename, re-purpose or archive it "
        "(editGroupProfile: its owner and leaders). Arguments left out stay as they are.",
        directives=[owner("id")],
    )
    async def update_group(
        self,
        info: RealmInfo,
        id: strawberry.ID,
        name: str | None = None,
        purpose: models.GroupPurpose | None = None,
        description: str | None = None,
        webpage: str | None = None,
        mailing_list: str | None = None,
        users_can_apply: bool | None = None,
        archived: bool | None = None,
    ) -> Group:
        signed_in(info.context.viewer_id)
        local = info.context.local_id(id, "Group")
        if name is not None:
            name = name.strip()
            if not name or len(name) > MAX_NAME_LENGTH:
                raise ClientError(f"`name` must be 1-{MAX_NAME_LENGTH} characters")
        _checked_text(description, "description")
        _checked_text(webpage, "webpage", 500)
        _checked_text(mailing_list, "mailingList", 255)
        try:
            async with info.context.db().begin() as session:
                row = await _require_on_group(info, session, Action.EDIT_GROUP_PROFILE, local,
                                              "Only the group's owner or leaders may edit it")
                if name is not None and name != row.name:
                    G = models.Group
                    if await session.scalar(select(G.id).where(G.name == name)) is not None:
                        raise ClientError("A group of this name exists in this realm")
                    row.name = name
                if purpose is not None:
                    row.purpose = purpose
                if archived is not None:
                    row.archived = archived
                _update_profile(row, description, webpage, mailing_list, users_can_apply)
        except IntegrityError:
            raise ClientError("A group of this name exists in this realm") from None
        return Group.of(info, row)

    @strawberry.mutation(
        description="Give a post to an active member: LEADER needs editGroupProfile (the "
        "group's owner or leaders), every other post editMembers (leaders, leader assistants, "
        "evaluation helpers). GROUP_SPECIFIC posts need a `title`; NEW_MEMBER and "
        "FORMER_LEADER are given by the realm itself. Recorded with who and when.",
        directives=[owner("membershipId")],
    )
    async def assign_post(
        self, info: RealmInfo, membership_id: strawberry.ID, kind: models.PostKind,
        title: str | None = None,
    ) -> Membership:
        viewer = signed_in(info.context.viewer_id)
        if kind in AUTOMATIC_POSTS:
            raise ClientError(f"The {kind.value} post is given by the realm itself")
        if kind is models.PostKind.GROUP_SPECIFIC:
            title = (title or "").strip()
            if not title or len(title) > MAX_NAME_LENGTH:
                raise ClientError(f"A GROUP_SPECIFIC post needs a `title` of 1-"
                                  f"{MAX_NAME_LENGTH} characters")
        elif title is not None:
            raise ClientError(f"Only a GROUP_SPECIFIC post has a `title`, not {kind.value}")
        async with info.context.db().begin() as session:
            row = await _membership(session, info, membership_id)
            group = await _require_for_post(info, session, kind, row.group_id)
            if row.status is not models.MembershipStatus.ACTIVE:
                raise ClientError("Only an ACTIVE member can hold a post")
            P = models.Post
            held = await session.scalars(select(P).where(P.membership_id == row.id))
            if any(p.kind is kind and p.title == title for p in held):
                raise ClientError("The member holds this post already")
            session.add(P(membership_id=row.id, kind=kind, title=title, since=dt.date.today()))
            _record_owner(session, group, "POST", row.user_id, viewer, post_kind=kind)
        return Membership.of(info, row)

    @strawberry.mutation(
        description="End a post (the same permission as giving it). An ended LEADER post "
        "leaves a FORMER_LEADER post. Recorded with who and when.",
        directives=[owner("postId")],
    )
    async def end_post(self, info: RealmInfo, post_id: strawberry.ID) -> Membership:
        viewer = signed_in(info.context.viewer_id)
        local = info.context.local_id(post_id, "Post")
        async with info.context.db().begin() as session:
            post = await session.get(models.Post, local)
            if post is None:
                raise ClientError("No post with this ID")
            row = await session.get(models.Membership, post.membership_id)
            assert row is not None  # a composite foreign key guarantees it
            group = await _require_for_post(info, session, post.kind, row.group_id)
            if post.kind in AUTOMATIC_POSTS - {models.PostKind.NEW_MEMBER}:
                raise ClientError(f"The {post.kind.value} post is kept as history")
            await session.delete(post)
            if post.kind is models.PostKind.LEADER:
                session.add(models.Post(membership_id=row.id,
                                        kind=models.PostKind.FORMER_LEADER,
                                        since=dt.date.today()))
            _record_owner(session, group, "END_POST", row.user_id, viewer, post_kind=post.kind)
        return Membership.of(info, row)

    @strawberry.mutation(
        description="Move a group under another parent of its realm, or to the top level "
        "(no `parentId`). Needs editGroupProfile on the group (its owner, its leaders) and "
        "createGroup where it goes (on the new parent; for the top level: top-level admins, "
        "the leaders' council). A group cannot go under itself or its own subgroups.",
        directives=[owner("id")],
    )
    async def move_group(
        self, info: RealmInfo, id: strawberry.ID, parent_id: strawberry.ID | None = None
    ) -> Group:
        signed_in(info.context.viewer_id)
        local = info.context.local_id(id, "Group")
        parent_local = info.context.local_id(parent_id, "Group") if parent_id else None
        perms = info.context.perms()
        async with info.context.db().begin() as session:
            row = await _require_on_group(info, session, Action.EDIT_GROUP_PROFILE, local,
                                          "Only the group's owner or leaders may move it")
            if parent_local is None:
                await perms.require(Action.CREATE_GROUP, None,
                                    "Only a top-level admin or the leaders' council may make "
                                    "a group top-level")
            else:
                parent = await _require_on_group(info, session, Action.CREATE_GROUP,
                                                 parent_local,
                                                 "You may not create subgroups of that group")
                if parent.archived:
                    raise ClientError("An archived group takes no subgroups")
            if row.parent_id == parent_local:
                raise ClientError("The group is there already")
            await _lock_tree_path(session, row.id, parent_local)
            row.parent_id = parent_local
        return Group.of(info, row)

    @strawberry.mutation(
        description="Make `userId` the owner (GOD) of a group (moveGroupOwner: the owner, the "
        "parent's leader and owner); recorded with who and when.",
        directives=[owner("groupId")],
    )
    async def move_group_owner(
        self, info: RealmInfo, group_id: strawberry.ID, user_id: strawberry.ID
    ) -> Group:
        viewer = signed_in(info.context.viewer_id)
        local = info.context.local_id(group_id, "Group")
        new_owner = decode_id(user_id, "User")
        async with info.context.db().begin() as session:
            row = await _require_on_group(info, session, Action.MOVE_GROUP_OWNER, local,
                                          "You may not move this group's owner")
            previous = row.owner_id
            row.owner_id = new_owner
            _record_owner(session, row, "MOVE_OWNER", new_owner, viewer, previous)
        return Group.of(info, row)
