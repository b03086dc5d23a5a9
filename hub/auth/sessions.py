"""Refresh tokens: opaque, stored as SHA-256 only, rotated on every use, revoked on sign-out."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pek.hub import models


class InvalidRefreshToken(Exception):
    """Unknown, expired, revoked or already used."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RefreshTokens:
    """Issues, rotates and revokes refresh tokens in the hub database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], lifetime: int) -> None:
        self.sessions = sessions
        self.lifetime = lifetime

    async def issue(self, user_id: int, family: str | None = None) -> str:
        """A new refresh token for ``user_id`` (a new family unless ``family`` is given)."""
        token = secrets.token_urlsafe(32)
        now = dt.datetime.now(dt.UTC)
        async with self.sessions.begin() as session:
            session.add(
                models.RefreshToken(
                    token_hash=_hash(token),
                    family=family or secrets.token_urlsafe(24),
                    user_id=user_id,
                    created_at=now,
                    expires_at=now + dt.timedelta(seconds=self.lifetime),
                )
            )
        return token

    async def rotate(self, token: str) -> tuple[int, str]:
        """Use ``token`` once: returns (user id, its replacement).

        A token presented a second time means two parties hold it: its whole family is
        revoked, so the thief's and the owner's next refresh both fail.
        """
        now = dt.datetime.now(dt.UTC)
        async with self.sessions.begin() as session:
            row = await session.scalar(
                select(models.RefreshToken).where(models.RefreshToken.token_hash == _hash(token))
            )
            if row is None:
                raise InvalidRefreshToken("unknown refresh token")
            user_id, family = row.user_id, row.family
            # Conditional update: of two concurrent uses, exactly one wins.
            used = await session.execute(
                update(models.RefreshToken)
                .where(models.RefreshToken.id == row.id, models.RefreshToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            won = getattr(used, "rowcount", 0) == 1
            expired = _aware(row.expires_at) <= now
        if not won:
            await self.revoke_family(family)
            raise InvalidRefreshToken("refresh token already used or revoked")
        if expired:
            raise InvalidRefreshToken("refresh token expired")
        return user_id, await self.issue(user_id, family)

    async def revoke(self, token: str) -> None:
        """Sign-out: revoke ``token``'s family (unknown tokens are ignored)."""
        async with self.sessions.begin() as session:
            family = await session.scalar(
                select(models.RefreshToken.family).where(
                    models.RefreshToken.token_hash == _hash(token)
                )
            )
        if family is not None:
            await self.revoke_family(family)

    async def revoke_family(self, family: str) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(models.RefreshToken)
                .where(models.RefreshToken.family == family,
                       models.RefreshToken.revoked_at.is_(None))
                .values(revoked_at=dt.datetime.now(dt.UTC))
            )


def _aware(moment: dt.datetime) -> dt.datetime:
    # SQLite returns naive datetimes for timezone-aware columns; they are stored in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
