"""The hub's DataLoaders, one per relation, created fresh for every request.

Each batch runs in its own short session so that loaders dispatched at the same time do not
share one connection (an ``AsyncSession`` is not safe for concurrent use).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from aiodataloader import DataLoader
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pek.hub import models

K = TypeVar("K")
V = TypeVar("V")


class _Loader(DataLoader[K, V], Generic[K, V]):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__()
        self.sessions = sessions


class UserById(_Loader[int, models.User | None]):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[models.User | None]:
        async with self.sessions() as session:
            rows = await session.scalars(select(models.User).where(models.User.id.in_(keys)))
            by_id = {row.id: row for row in rows}
        return [by_id.get(key) for key in keys]


class PrivacyByUser(_Loader[int, dict[models.PrivacyAttribute, bool]]):
    async def batch_load_fn(
        self, keys: Sequence[int]
    ) -> list[dict[models.PrivacyAttribute, bool]]:
        found: dict[int, dict[models.PrivacyAttribute, bool]] = defaultdict(dict)
        async with self.sessions() as session:
            rows = await session.scalars(
                select(models.PrivacySetting).where(models.PrivacySetting.user_id.in_(keys))
            )
            for row in rows:
                found[row.user_id][row.attribute] = row.visible
        return [found.get(key, {}) for key in keys]


class ExternalAccountsByUser(_Loader[int, list[models.ExternalAccount]]):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[models.ExternalAccount]]:
        found: dict[int, list[models.ExternalAccount]] = defaultdict(list)
        async with self.sessions() as session:
            rows = await session.scalars(
                select(models.ExternalAccount)
                .where(models.ExternalAccount.user_id.in_(keys))
                .order_by(models.ExternalAccount.id)
            )
            for row in rows:
                found[row.user_id].append(row)
        return [found.get(key, []) for key in keys]


class SharesGroupWithViewer(_Loader[int, bool]):
    """Whether a user shares an active group with the viewer where a "members of a shared
    group" statement grants viewFullProfile (on the groups the realms publish)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], viewer_id: int | None) -> None:
        super().__init__(sessions)
        self.viewer_id = viewer_id

    async def batch_load_fn(self, keys: Sequence[int]) -> list[bool]:
        from pek.hub import policies  # policies builds on these models

        if self.viewer_id is None:
            return [False for _ in keys]
        async with self.sessions() as session:
            statements = [policies.to_statement(r) for r in await policies.live_statements(session)]
            found = await policies.shared_group_realms(
                session, self.viewer_id, keys, statements
            )
        return [key in found for key in keys]


@dataclass
class HubLoaders:
    user: UserById
    privacy: PrivacyByUser
    external_accounts: ExternalAccountsByUser
    shares_group: SharesGroupWithViewer

    @classmethod
    def create(
        cls, sessions: async_sessionmaker[AsyncSession], viewer_id: int | None = None
    ) -> HubLoaders:
        return cls(
            user=UserById(sessions),
            privacy=PrivacyByUser(sessions),
            external_accounts=ExternalAccountsByUser(sessions),
            shares_group=SharesGroupWithViewer(sessions, viewer_id),
        )
