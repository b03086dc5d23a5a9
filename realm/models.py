"""The realm's tables (all prefixed ``realm_``, all realm-scoped, see :mod:`pek.realm.scoping`).

Users live in the hub; here a user is only their hub-local id (``user_id``, no foreign key).
References between realm rows use composite foreign keys ``(realm_id, x_id)`` so that a row can
only ever point at a row of its own realm.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from pek.realm.scoping import RealmScoped


class Base(DeclarativeBase):
    pass


class GroupPurpose(enum.Enum):
    CIRCLE = "CIRCLE"
    RESORT = "RESORT"
    PROJECT = "PROJECT"
    EVENT = "EVENT"
    SPORT = "SPORT"
    FLOOR = "FLOOR"
    SERVICE = "SERVICE"
    COMMITTEE = "COMMITTEE"
    PROFESSIONAL = "PROFESSIONAL"
    CULTURE = "CULTURE"
    YEAR_CLASS = "YEAR_CLASS"
    OTHER = "OTHER"


class MembershipStatus(enum.Enum):
    NEWBIE = "NEWBIE"
    ACTIVE = "ACTIVE"
    FORMER = "FORMER"
    ARCHIVED = "ARCHIVED"


class PostKind(enum.Enum):
    LEADER = "LEADER"
    FORMER_LEADER = "FORMER_LEADER"
    TREASURER = "TREASURER"
    LEADER_ASSISTANT = "LEADER_ASSISTANT"
    EVALUATION_HELPER = "EVALUATION_HELPER"
    NEW_MEMBER = "NEW_MEMBER"
    GROUP_SPECIFIC = "GROUP_SPECIFIC"


class Season(enum.Enum):
    OFF = "OFF"
    SUBMISSION = "SUBMISSION"
    JUDGING = "JUDGING"


class GuidelineCategory(enum.Enum):
    WORK = "WORK"
    RESPONSIBILITY = "RESPONSIBILITY"


class ReviewStatus(enum.Enum):
    NOT_SUBMITTED = "NOT_SUBMITTED"
    PENDING = "PENDING"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"


class EntryCard(enum.Enum):
    KDO = "KDO"
    KB = "KB"
    AB = "AB"


def _enum(kind: type[enum.Enum], name: str) -> Enum:
    return Enum(kind, name=name, native_enum=False, length=32, validate_strings=True)


def _in_realm(column: str, table: str, name: str) -> ForeignKeyConstraint:
    """A foreign key that also pins the realm: the referenced row is in the same realm."""
    return ForeignKeyConstraint(
        ["realm_id", column], [f"{table}.realm_id", f"{table}.id"], name=name, ondelete="CASCADE"
    )


class Group(RealmScoped, Base):
    __tablename__ = "realm_groups"
    __table_args__ = (
        UniqueConstraint("realm_id", "name", name="uq_realm_groups_name"),
        UniqueConstraint("realm_id", "id", name="uq_realm_groups_realm_id"),
        _in_realm("parent_id", "realm_groups", "fk_realm_groups_parent"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    purpose: Mapped[GroupPurpose] = mapped_column(_enum(GroupPurpose, "group_purpose"))
    parent_id: Mapped[int | None] = mapped_column(Integer, index=True)
    founded_at: Mapped[dt.date | None] = mapped_column(Date)
    webpage: Mapped[str | None] = mapped_column(String(500))
    mailing_list: Mapped[str | None] = mapped_column(String(255))
    users_can_apply: Mapped[bool] = mapped_column(Boolean, default=True)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    #: GOD on the group: its owner (hub-local user id), full control of the group. Whoever
    #: creates a group owns it; None for groups that predate ownership.
    owner_id: Mapped[int | None] = mapped_column(Integer)

    # View-only conveniences (the GraphQL layer uses DataLoaders); scoped like any query.
    children: Mapped[list[Group]] = relationship(
        primaryjoin="foreign(Group.parent_id) == Group.id",
        remote_side="Group.parent_id",
        viewonly=True,
        order_by="Group.name",
    )


class Membership(RealmScoped, Base):
    __tablename__ = "realm_memberships"
    __table_args__ = (
        UniqueConstraint("realm_id", "group_id", "user_id", name="uq_realm_memberships_user"),
        UniqueConstraint("realm_id", "id", name="uq_realm_memberships_realm_id"),
        _in_realm("group_id", "realm_groups", "fk_realm_memberships_group"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(Integer, index=True)
    #: Local id of the hub's User.
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    #: The current status (the open entry of the history), kept for filtering.
    status: Mapped[MembershipStatus] = mapped_column(_enum(MembershipStatus, "membership_status"))
    joined_at: Mapped[dt.date] = mapped_column(Date)

    status_history: Mapped[list[MembershipStatusPeriod]] = relationship(
        primaryjoin="foreign(MembershipStatusPeriod.membership_id) == Membership.id",
        viewonly=True,
        order_by="MembershipStatusPeriod.since",
    )


class MembershipStatusPeriod(RealmScoped, Base):
    __tablename__ = "realm_membership_statuses"
    __table_args__ = (
        _in_realm("membership_id", "realm_memberships", "fk_realm_membership_statuses_member"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    membership_id: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[MembershipStatus] = mapped_column(_enum(MembershipStatus, "membership_status"))
    since: Mapped[dt.date] = mapped_column(Date)
    until: Mapped[dt.date | None] = mapped_column(Date)


class Post(RealmScoped, Base):
    __tablename__ = "realm_posts"
    __table_args__ = (_in_realm("membership_id", "realm_memberships", "fk_realm_posts_member"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    membership_id: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[PostKind] = mapped_column(_enum(PostKind, "post_kind"))
    #: Title of a group-specific post (e.g. "DJ"); standard posts have none.
    title: Mapped[str | None] = mapped_column(String(200))
    since: Mapped[dt.date] = mapped_column(Date)


class Semester(RealmScoped, Base):
    __tablename__ = "realm_semesters"
    __table_args__ = (
        UniqueConstraint("realm_id", "name", name="uq_realm_semesters_name"),
        UniqueConstraint("realm_id", "id", name="uq_realm_semesters_realm_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: ``2025-2026/1`` is the autumn semester of 2025-2026, ``/2`` the spring one.
    name: Mapped[str] = mapped_column(String(20))
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    season: Mapped[Season] = mapped_column(_enum(Season, "season"), default=Season.OFF)


class Guideline(RealmScoped, Base):
    """A principle a group scores its members against in one semester."""

    __tablename__ = "realm_guidelines"
    __table_args__ = (
        UniqueConstraint("realm_id", "id", name="uq_realm_guidelines_realm_id"),
        _in_realm("group_id", "realm_groups", "fk_realm_guidelines_group"),
        _in_realm("semester_id", "realm_semesters", "fk_realm_guidelines_semester"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(Integer, index=True)
    semester_id: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[GuidelineCategory] = mapped_column(
        _enum(GuidelineCategory, "guideline_category")
    )
    max_per_member: Mapped[int] = mapped_column(Integer)


class Evaluation(RealmScoped, Base):
    """A group's scoreboard and entry-card requests for one semester, with their review state."""

    __tablename__ = "realm_evaluations"
    __table_args__ = (
        UniqueConstraint("realm_id", "group_id", "semester_id", name="uq_realm_evaluations_term"),
        UniqueConstraint("realm_id", "id", name="uq_realm_evaluations_realm_id"),
        _in_realm("group_id", "realm_groups", "fk_realm_evaluations_group"),
        _in_realm("semester_id", "realm_semesters", "fk_realm_evaluations_semester"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(Integer, index=True)
    semester_id: Mapped[int] = mapped_column(Integer, index=True)
    point_status: Mapped[ReviewStatus] = mapped_column(_enum(ReviewStatus, "review_status"))
    entry_status: Mapped[ReviewStatus] = mapped_column(_enum(ReviewStatus, "review_status"))
    #: Why the points or the entry requests were rejected (required for a rejection).
    explanation: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    submitted_by: Mapped[int | None] = mapped_column(Integer)
    #: 1 at first; a change after judging archives the judged state
    #: (:class:`EvaluationVersion`) and makes the next version.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    judged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    judged_by: Mapped[int | None] = mapped_column(Integer)


class EvaluationVersion(RealmScoped, Base):
    """A judged version of an evaluation, archived when the evaluation was changed after
    judging: its review state and a copy of its points and entry requests."""

    __tablename__ = "realm_evaluation_versions"
    __table_args__ = (
        UniqueConstraint("realm_id", "evaluation_id", "version", name="uq_realm_eval_versions"),
        _in_realm("evaluation_id", "realm_evaluations", "fk_realm_eval_versions_evaluation"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(Integer, index=True)
    version: Mapped[int] = mapped_column(Integer)
    point_status: Mapped[ReviewStatus] = mapped_column(_enum(ReviewStatus, "review_status"))
    entry_status: Mapped[ReviewStatus] = mapped_column(_enum(ReviewStatus, "review_status"))
    explanation: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    submitted_by: Mapped[int | None] = mapped_column(Integer)
    judged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    judged_by: Mapped[int | None] = mapped_column(Integer)
    #: As they were: ``{"points": [[membership, guideline, points], ...], "entries":
    #: [[membership, card, justification], ...], "totals": [[membership, user, total], ...]}``.
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    archived_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    archived_by: Mapped[int] = mapped_column(Integer)


class PointEntry(RealmScoped, Base):
    __tablename__ = "realm_points"
    __table_args__ = (
        UniqueConstraint(
            "realm_id", "evaluation_id", "guideline_id", "membership_id", name="uq_realm_points"
        ),
        _in_realm("evaluation_id", "realm_evaluations", "fk_realm_points_evaluation"),
        _in_realm("guideline_id", "realm_guidelines", "fk_realm_points_guideline"),
        _in_realm("membership_id", "realm_memberships", "fk_realm_points_member"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(Integer, index=True)
    guideline_id: Mapped[int] = mapped_column(Integer)
    membership_id: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)


class EntryRequest(RealmScoped, Base):
    __tablename__ = "realm_entry_requests"
    __table_args__ = (
        UniqueConstraint("realm_id", "evaluation_id", "membership_id", name="uq_realm_entries"),
        _in_realm("evaluation_id", "realm_evaluations", "fk_realm_entries_evaluation"),
        _in_realm("membership_id", "realm_memberships", "fk_realm_entries_member"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(Integer, index=True)
    membership_id: Mapped[int] = mapped_column(Integer)
    card: Mapped[EntryCard] = mapped_column(_enum(EntryCard, "entry_card"))
    justification: Mapped[str] = mapped_column(Text)


class IndexOutbox(RealmScoped, Base):
    """A federation-index change not yet delivered to the hub (see :mod:`pek.realm.index`).

    Written in the same transaction as the membership change it reports, so a change is
    never lost when the hub is down; a row names a user whose memberships changed, or (with
    ``full``) asks for a full resync. The drainer reads the current memberships when it sends.
    """

    __tablename__ = "realm_index_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    full: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class GroupGrant(RealmScoped, Base):
    """The audit trail of grants in a realm: who made whom owner of which group, when
    (``OWNER`` on creation, ``MOVE_OWNER`` when moved), and who gave or ended whose post
    (``POST`` / ``END_POST``, with ``post_kind``)."""

    __tablename__ = "realm_group_grants"
    __table_args__ = (_in_realm("group_id", "realm_groups", "fk_realm_group_grants_group"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(Integer)
    previous_user_id: Mapped[int | None] = mapped_column(Integer)
    granted_by: Mapped[int] = mapped_column(Integer)
    granted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    post_kind: Mapped[PostKind | None] = mapped_column(_enum(PostKind, "post_kind"))
