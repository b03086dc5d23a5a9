"""Canary data for the isolation suite: unique values in every kind of realm-owned row.

:func:`seed_canary` writes a small, complete realm (groups, memberships with history and
posts, a semester, guidelines, an evaluation with points, an entry request and an archived
version) whose every text carries one unique token. If that token ever shows up in an answer
of another realm, isolation is broken.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from pek.realm import models
from pek.schema import ids


@dataclass
class Canary:
    """The token of one realm's canary rows and the global IDs of those rows."""

    realm_id: str
    token: str
    #: Global IDs by type name ("Group", "Membership", "Post", ...).
    ids: dict[str, list[str]] = field(default_factory=dict)
    #: Local ids by type name (to forge IDs of other realms with the same local id).
    local_ids: dict[str, list[int]] = field(default_factory=dict)
    #: Hub-local ids of the users with canary memberships (the first one leads the group).
    user_ids: tuple[int, ...] = ()

    def add(self, type_name: str, local_id: int) -> None:
        self.ids.setdefault(type_name, []).append(ids.encode(type_name, local_id, self.realm_id))
        self.local_ids.setdefault(type_name, []).append(local_id)

    def all_ids(self) -> list[tuple[str, str]]:
        return [(t, gid) for t, gids in self.ids.items() for gid in gids]


async def seed_canary(
    session: AsyncSession, realm_id: str, user_ids: tuple[int, ...] = (1, 2, 3)
) -> Canary:
    """Seed canary rows in ``session``'s realm (which must be ``realm_id``)."""
    token = f"CANARY-{realm_id}-{uuid.uuid4().hex[:12]}"
    canary = Canary(realm_id, token, user_ids=user_ids)
    day = dt.date(2025, 9, 1)
    parent = models.Group(
        name=f"{token} resort", description=f"{token} parent", purpose=models.GroupPurpose.RESORT,
        users_can_apply=True, webpage=f"https://{token}.example.org",
        mailing_list=f"{token}@example.org",
    )
    session.add(parent)
    await session.flush()
    group = models.Group(
        name=f"{token} circle", description=f"{token} child", purpose=models.GroupPurpose.CIRCLE,
        parent_id=parent.id, users_can_apply=True,
    )
    session.add(group)
    await session.flush()
    canary.add("Group", parent.id)
    canary.add("Group", group.id)
    semester = models.Semester(name="2025-2026/1", starts_on=day, ends_on=dt.date(2026, 1, 31),
                               season=models.Season.JUDGING)
    session.add(semester)
    await session.flush()
    canary.add("Semester", semester.id)
    guideline = models.Guideline(
        group_id=group.id, semester_id=semester.id, name=f"{token} guideline",
        category=models.GuidelineCategory.WORK, max_per_member=10,
    )
    evaluation = models.Evaluation(
        group_id=group.id, semester_id=semester.id, point_status=models.ReviewStatus.PENDING,
        entry_status=models.ReviewStatus.PENDING, explanation=f"{token} explanation",
    )
    session.add_all([guideline, evaluation])
    await session.flush()
    canary.add("Guideline", guideline.id)
    session.add(models.EvaluationVersion(
        evaluation_id=evaluation.id, version=0, point_status=models.ReviewStatus.REJECTED,
        entry_status=models.ReviewStatus.REJECTED, explanation=f"{token} earlier version",
        snapshot={"points": [], "entries": [[0, "KB", f"{token} earlier justification"]],
                  "totals": []},
        archived_at=dt.datetime(2025, 12, 1, tzinfo=dt.UTC), archived_by=user_ids[0],
    ))
    statuses = [models.MembershipStatus.ACTIVE] * (len(user_ids) - 1) + [
        models.MembershipStatus.NEWBIE
    ]
    for index, (user_id, status) in enumerate(zip(user_ids, statuses, strict=True)):
        membership = models.Membership(group_id=group.id, user_id=user_id, status=status,
                                       joined_at=day)
        session.add(membership)
        await session.flush()
        canary.add("Membership", membership.id)
        kind = models.PostKind.LEADER if index == 0 else models.PostKind.GROUP_SPECIFIC
        post = models.Post(membership_id=membership.id, kind=kind, title=f"{token} post",
                           since=day)
        session.add_all([
            post,
            models.MembershipStatusPeriod(membership_id=membership.id, status=status, since=day),
        ])
        if status is models.MembershipStatus.ACTIVE:
            session.add(models.PointEntry(evaluation_id=evaluation.id, guideline_id=guideline.id,
                                          membership_id=membership.id, points=7))
            entry = models.EntryRequest(evaluation_id=evaluation.id, membership_id=membership.id,
                                        card=models.EntryCard.KB,
                                        justification=f"{token} justification")
            session.add(entry)
        await session.flush()
        canary.add("Post", post.id)
        if status is models.MembershipStatus.ACTIVE:
            canary.add("EntryRequest", entry.id)
    return canary
