"""The realm's DataLoaders, one per relation, created fresh for every request.

Loaders know nothing about realms: their sessions come from a realm-bound sessionmaker and
:mod:`pek.realm.scoping` filters every statement. Each batch uses its own short session, so
loaders dispatched together never share one connection.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiodataloader import DataLoader
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from pek.realm import models

RowT = TypeVar("RowT")
KeyT = TypeVar("KeyT", bound=Hashable)

#: (group id, semester id): the term of a group's evaluation.
Term = tuple[int, int]


class RowByKey(DataLoader[KeyT, RowT | None], Generic[KeyT, RowT]):
    """One row per key: ``WHERE column IN (keys)``."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        model: type[RowT],
        column: InstrumentedAttribute[Any],
    ) -> None:
        super().__init__()
        self.sessions, self.model, self.column = sessions, model, column

    async def batch_load_fn(self, keys: Sequence[KeyT]) -> list[RowT | None]:
        async with self.sessions() as session:
            rows = await session.scalars(select(self.model).where(self.column.in_(keys)))
            found = {getattr(row, self.column.key): row for row in rows}
        return [found.get(key) for key in keys]


class RowsByKey(DataLoader[int, list[RowT]], Generic[RowT]):
    """All rows per key (a one-to-many relation): ``WHERE column IN (keys) ORDER BY ...``."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        model: type[RowT],
        column: InstrumentedAttribute[Any],
        *order_by: InstrumentedAttribute[Any],
    ) -> None:
        super().__init__()
        self.sessions, self.model, self.column, self.order_by = sessions, model, column, order_by

    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[RowT]]:
        found: dict[int, list[RowT]] = defaultdict(list)
        async with self.sessions() as session:
            rows = await session.scalars(
                select(self.model).where(self.column.in_(keys)).order_by(*self.order_by)
            )
            for row in rows:
                found[getattr(row, self.column.key)].append(row)
        return [found.get(key, []) for key in keys]


class GuidelinesByTerm(DataLoader[Term, list[models.Guideline]]):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__()
        self.sessions = sessions

    async def batch_load_fn(self, keys: Sequence[Term]) -> list[list[models.Guideline]]:
        found: dict[Term, list[models.Guideline]] = defaultdict(list)
        G = models.Guideline
        async with self.sessions() as session:
            # Two IN lists over-select a little; filtering by term happens below.
            rows = await session.scalars(
                select(G)
                .where(G.group_id.in_({g for g, _ in keys}))
                .where(G.semester_id.in_({s for _, s in keys}))
                .order_by(G.category, G.id)
            )
            for row in rows:
                found[(row.group_id, row.semester_id)].append(row)
        return [found.get(key, []) for key in keys]


class EvaluationByTerm(DataLoader[Term, models.Evaluation | None]):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__()
        self.sessions = sessions

    async def batch_load_fn(self, keys: Sequence[Term]) -> list[models.Evaluation | None]:
        E = models.Evaluation
        async with self.sessions() as session:
            rows = await session.scalars(
                select(E)
                .where(E.group_id.in_({g for g, _ in keys}))
                .where(E.semester_id.in_({s for _, s in keys}))
            )
            found = {(row.group_id, row.semester_id): row for row in rows}
        return [found.get(key) for key in keys]


@dataclass
class RealmLoaders:
    group: RowByKey[int, models.Group]
    children: RowsByKey[models.Group]
    memberships_of_group: RowsByKey[models.Membership]
    memberships_of_user: RowsByKey[models.Membership]
    membership: RowByKey[int, models.Membership]
    post: RowByKey[int, models.Post]
    guideline: RowByKey[int, models.Guideline]
    entry_request: RowByKey[int, models.EntryRequest]
    status_history: RowsByKey[models.MembershipStatusPeriod]
    posts: RowsByKey[models.Post]
    semester_by_name: RowByKey[str, models.Semester]
    semester: RowByKey[int, models.Semester]
    guidelines: GuidelinesByTerm
    evaluation: EvaluationByTerm
    points: RowsByKey[models.PointEntry]
    entry_requests: RowsByKey[models.EntryRequest]
    evaluation_versions: RowsByKey[models.EvaluationVersion]

    @classmethod
    def create(cls, sessions: async_sessionmaker[AsyncSession]) -> RealmLoaders:
        m = models
        return cls(
            group=RowByKey(sessions, m.Group, m.Group.id),
            children=RowsByKey(sessions, m.Group, m.Group.parent_id, m.Group.name),
            memberships_of_group=RowsByKey(
                sessions, m.Membership, m.Membership.group_id, m.Membership.id
            ),
            # By join date: the order the router merges a user's memberships of all realms in.
            memberships_of_user=RowsByKey(
                sessions, m.Membership, m.Membership.user_id, m.Membership.joined_at,
                m.Membership.id,
            ),
            membership=RowByKey(sessions, m.Membership, m.Membership.id),
            post=RowByKey(sessions, m.Post, m.Post.id),
            guideline=RowByKey(sessions, m.Guideline, m.Guideline.id),
            entry_request=RowByKey(sessions, m.EntryRequest, m.EntryRequest.id),
            status_history=RowsByKey(
                sessions,
                m.MembershipStatusPeriod,
                m.MembershipStatusPeriod.membership_id,
                m.MembershipStatusPeriod.since,
                m.MembershipStatusPeriod.id,
            ),
            posts=RowsByKey(sessions, m.Post, m.Post.membership_id, m.Post.since, m.Post.id),
            semester_by_name=RowByKey(sessions, m.Semester, m.Semester.name),
            semester=RowByKey(sessions, m.Semester, m.Semester.id),
            guidelines=GuidelinesByTerm(sessions),
            evaluation=EvaluationByTerm(sessions),
            points=RowsByKey(
                sessions, m.PointEntry, m.PointEntry.evaluation_id, m.PointEntry.id
            ),
            entry_requests=RowsByKey(
                sessions, m.EntryRequest, m.EntryRequest.evaluation_id, m.EntryRequest.id
            ),
            evaluation_versions=RowsByKey(
                sessions, m.EvaluationVersion, m.EvaluationVersion.evaluation_id,
                m.EvaluationVersion.version,
            ),
        )
