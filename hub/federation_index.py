"""The federation index, hub side: which users have memberships in which realms.

Realms report changes and full resyncs (:class:`pek.schema.index_protocol.IndexMessage`);
:func:`apply_message` applies one. Routers read it with :func:`read_index` (through
``GET /internal/federation-index``) and cache it by its ``version``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pek.hub import models
from pek.hub.registry import INDEX_VERSION, UnknownRealm, bump_version, current_version
from pek.schema import ids
from pek.schema.index_protocol import (
    RAISE_VERSION_SCRIPT,
    REDIS_VERSION_KEY,
    TIMESTAMP_WINDOW,
    IndexMessage,
)

log = logging.getLogger("pek.hub")


class ReplayedCall(Exception):
    """A signed call whose nonce was seen already."""


async def remember_nonce(session: AsyncSession, nonce: str, now: dt.datetime) -> None:
    """Record ``nonce`` (forgetting those older than the window); :class:`ReplayedCall` if it
    was seen. Call inside the transaction that applies the message."""
    cutoff = now - dt.timedelta(seconds=2 * TIMESTAMP_WINDOW)
    await session.execute(delete(models.IndexNonce).where(models.IndexNonce.seen_at < cutoff))
    if await session.get(models.IndexNonce, nonce) is not None:
        raise ReplayedCall(nonce)
    session.add(models.IndexNonce(nonce=nonce, seen_at=now))
    try:
        await session.flush()
    except IntegrityError:  # the same call arrived twice at the same time
        raise ReplayedCall(nonce) from None


async def apply_message(session: AsyncSession, message: IndexMessage, now: dt.datetime) -> bool:
    """Apply one realm's message; False when it is older than what was applied already.

    Raises :class:`UnknownRealm` for a realm not in the registry and
    :class:`pek.schema.index_protocol.BadIndexMessage` for IDs that are not User IDs.
    """
    if await session.get(models.Realm, message.realm) is None:
        raise UnknownRealm(message.realm)
    state = await session.get(models.IndexRealmState, message.realm)
    # A full resync always applies: the realm's database may have been rebuilt, restarting
    # its sequence. A change older than the last applied message is a late duplicate.
    if state is not None and not message.full and message.sequence <= state.sequence:
        return False
    E = models.FederationIndexEntry
    if message.full:
        members = set(message.local_user_ids("user_ids"))
        current = set(await session.scalars(select(E.user_id).where(E.realm_id == message.realm)))
        gone = current - members
        added = members
        if gone:
            await session.execute(
                delete(E).where(E.realm_id == message.realm, E.user_id.in_(gone))
            )
    else:
        added = set(message.local_user_ids("user_ids_added"))
        gone = set(message.local_user_ids("user_ids_removed")) - added
        if gone:
            await session.execute(
                delete(E).where(E.realm_id == message.realm, E.user_id.in_(gone))
            )
    if added:
        existing = {
            row.user_id: row
            for row in await session.scalars(
                select(E).where(E.realm_id == message.realm, E.user_id.in_(added))
            )
        }
        for user_id in added:
            if user_id in existing:
                existing[user_id].updated_at = now
            else:
                session.add(E(user_id=user_id, realm_id=message.realm, updated_at=now))
    await _apply_groups(session, message, added, gone)
    if state is None:
        state = models.IndexRealmState(realm_id=message.realm, sequence=0, updated_at=now)
        session.add(state)
    state.sequence = message.sequence
    state.updated_at = now
    if message.full:
        state.synced_at = now
    await session.flush()
    await bump_version(session, INDEX_VERSION)
    return True


async def _apply_groups(
    session: AsyncSession, message: IndexMessage, present: set[int], gone: set[int]
) -> None:
    """Keep ``hub_index_groups`` in step: a removed user has no groups left in the realm; a
    present user's published groups replace what the hub had (unless none are published)."""
    G = models.IndexGroupEntry
    realm = message.realm
    if message.groups is None:
        if gone:
            await session.execute(delete(G).where(G.realm_id == realm, G.user_id.in_(gone)))
        return
    published = message.group_map()
    if message.full:
        await session.execute(delete(G).where(G.realm_id == realm))
    else:
        touched = gone | set(published)
        if touched:
            await session.execute(delete(G).where(G.realm_id == realm, G.user_id.in_(touched)))
    for user_id, group_ids in published.items():
        if user_id in present:
            session.add_all(G(user_id=user_id, realm_id=realm, group_id=g) for g in group_ids)


async def read_index(session: AsyncSession, user_gids: Sequence[str]) -> dict[str, Any]:
    """The body of ``GET /internal/federation-index``.

    ``users`` maps every asked User ID to the realms (sorted) where the user has
    memberships; ``realms`` says, per realm that ever reported, its last ``sequence`` and
    when it last did a full resync (``synced_at``). A realm missing there has never reported:
    a router must not trust the index for it. Raises InvalidGlobalId for a bad User ID.
    """
    local = {gid: ids.decode(gid, expected_type="User").local_id for gid in user_gids}
    E = models.FederationIndexEntry
    found: dict[int, list[str]] = defaultdict(list)
    if local:
        rows = await session.execute(
            select(E.user_id, E.realm_id)
            .where(E.user_id.in_(set(local.values())))
            .order_by(E.realm_id)
        )
        for user_id, realm_id in rows:
            found[user_id].append(realm_id)
    states = await session.scalars(
        select(models.IndexRealmState).order_by(models.IndexRealmState.realm_id)
    )
    return {
        "version": await current_version(session, INDEX_VERSION),
        "users": {gid: found.get(local_id, []) for gid, local_id in local.items()},
        "realms": {
            s.realm_id: {
                "sequence": s.sequence,
                "synced_at": s.synced_at.isoformat() if s.synced_at else None,
            }
            for s in states
        },
    }




class IndexVersionPublisher:
    """Publishes the hub's index version to Redis after every change, so every router replica
    drops older cached entries at once (best effort: with Redis down, routers fall back to their
    cache TTL, and nothing fails)."""

    def __init__(self, redis_url: str) -> None:
        self._redis_url = redis_url
        self._client: Any = None

    async def publish(self, version: int) -> None:
        if not self._redis_url:
            return
        try:
            if self._client is None:
                import redis.asyncio as aioredis

                self._client = aioredis.from_url(self._redis_url, socket_timeout=1.0)
            await self._client.eval(RAISE_VERSION_SCRIPT, 1, REDIS_VERSION_KEY, str(version))
        except Exception as exc:  # Redis is an optimisation here, never an error
            log.warning("could not publish the federation-index version to Redis: %s", exc)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
