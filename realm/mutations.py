"""The realm's mutations: applying to a group and managing memberships.

Every mutation runs in one transaction of the request's realm: on any error nothing changes.
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
from pek.realm.index import record_membership_change
from pek.realm.routing import owner
from pek.realm.schema import Membership, RealmInfo
from pek.schema.context import ClientError

FORBIDDEN = "FORBIDDEN"
UNAUTHENTICATED = "UNAUTHENTICATED"
#: Posts whose holders manage a group's memberships.
MANAGER_POSTS = (models.PostKind.LEADER, models.PostKind.LEADER_ASSISTANT)


def _viewer(info: RealmInfo) -> int:
    viewer = info.context.viewer_id
    if viewer is None:
        raise ClientError("Sign in first", code=UNAUTHENTICATED)
    return viewer


async def _manages(session: AsyncSession, group_id: int, user_id: int) -> bool:
    """Whether ``user_id`` is an active leader or leader assistant of ``group_id``."""
    M, P = models.Membership, models.Post
    found = await session.scalar(
        select(P.id)
        .join(M, (M.id == P.membership_id) & (M.realm_id == P.realm_id))
        .where(M.group_id == group_id, M.user_id == user_id)
        .where(M.status == models.MembershipStatus.ACTIVE, P.kind.in_(MANAGER_POSTS))
        .limit(1)
    )
    return found is not None


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


def _committed(info: RealmInfo) -> None:
    if info.context.notify_index is not None:
        info.context.notify_index()


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Apply to a group as the signed-in user: a pending (NEWBIE) membership.",
        directives=[owner("groupId")],
    )
    async def apply_to_group(self, info: RealmInfo, group_id: strawberry.ID) -> Membership:
        viewer = _viewer(info)
        local_group = info.context.local_id(group_id, "Group")
        try:
            async with info.context.db().begin() as session:
                group = await session.get(models.Group, local_group)
                if group is None:
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
        viewer = _viewer(info)
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
        viewer = _viewer(info)
        async with info.context.db().begin() as session:
            row = await _membership(session, info, membership_id)
            if not await _manages(session, row.group_id, viewer):
                raise ClientError("Only the group's leaders may accept members", code=FORBIDDEN)
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
        viewer = _viewer(info)
        async with info.context.db().begin() as session:
            row = await _membership(session, info, membership_id)
            if not await _manages(session, row.group_id, viewer):
                raise ClientError(
                    "Only the group's leaders may change memberships", code=FORBIDDEN
                )
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
