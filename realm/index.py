"""Keeping the hub's federation index current: the realm side.

Every membership change adds a row to the realm's outbox (:func:`record_membership_change`,
in the change's own transaction). :class:`IndexDrainer`, a background task of the realm
service, sends the outbox to the hub through an :class:`IndexSink` and deletes what the hub
accepted; when the hub is down it retries with back-off, so nothing is lost and the hub
catches up when it returns. At start-up each hosted realm queues a full resync.

What a message says is read from the memberships *when it is sent*, not when the change was
made: a user is "added" if they have any membership in the realm now, "removed" otherwise.
Messages are therefore idempotent and their order does not matter.

Two sinks: :class:`HttpIndexSink` (a signed ``POST /internal/federation-index`` to the hub)
and :class:`InProcessIndexSink` (all-in-one: the hub service object is called directly).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Protocol

import httpx
import orjson
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pek.realm import models
from pek.schema import ids
from pek.schema.index_protocol import IndexMessage, sign

log = logging.getLogger("pek.realm.index")

#: Most outbox rows one message covers.
BATCH_SIZE = 500


class IndexDeliveryError(Exception):
    """The hub did not accept a message (down, refused, or unreachable); try again later."""


class IndexSink(Protocol):
    """Where the realm delivers federation-index messages."""

    async def deliver(self, message: IndexMessage) -> None:
        """Deliver ``message``; raise :class:`IndexDeliveryError` if the hub did not take it."""
        ...

    async def aclose(self) -> None: ...


class IndexReceiver(Protocol):
    """The hub side of :class:`InProcessIndexSink` (``pek.hub.service.HubSubgraph``)."""

    async def apply_index_message(self, message: IndexMessage) -> bool: ...


class InProcessIndexSink:
    """All-in-one: hands messages to the hub service in this process."""

    def __init__(self, hub: IndexReceiver) -> None:
        self.hub = hub

    async def deliver(self, message: IndexMessage) -> None:
        try:
            await self.hub.apply_index_message(message)
        except Exception as exc:  # the hub not started yet, an unknown realm...: retry later
            raise IndexDeliveryError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        return None


class HttpIndexSink:
    """Signed ``POST`` of each message to the hub's ``/internal/federation-index``."""

    def __init__(
        self, url: str, secret: str, *, timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not secret:
            raise ValueError("HttpIndexSink needs the shared index secret")
        self.url, self._secret = url, secret
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = client is None

    async def deliver(self, message: IndexMessage) -> None:
        body = orjson.dumps(message.to_json())
        headers = {"content-type": "application/json", **sign(self._secret, body).as_dict()}
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise IndexDeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise IndexDeliveryError(f"HTTP {response.status_code}: {response.text[:200]}")

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def index_url_from(hub_url: str) -> str:
    """The hub's federation-index URL next to its GraphQL URL (``.../graphql``)."""
    base = hub_url.rstrip("/")
    base = base.removesuffix("/graphql")
    return base + "/internal/federation-index"


def record_membership_change(session: AsyncSession, user_ids: Iterable[int]) -> None:
    """Queue an index update for ``user_ids`` in ``session``'s transaction and realm."""
    now = dt.datetime.now(dt.UTC)
    session.add_all(
        models.IndexOutbox(user_id=user_id, full=False, created_at=now)
        for user_id in dict.fromkeys(user_ids)
    )


async def queue_full_resync(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Queue a full resync, replacing any full resync still pending."""
    async with sessions.begin() as session:
        await session.execute(delete(models.IndexOutbox).where(models.IndexOutbox.full.is_(True)))
        session.add(models.IndexOutbox(user_id=None, full=True, created_at=dt.datetime.now(dt.UTC)))


def _user_gids(local_ids: Iterable[int]) -> tuple[str, ...]:
    return tuple(ids.encode("User", u) for u in sorted(set(local_ids)))


async def next_message(session: AsyncSession, realm_id: str) -> tuple[IndexMessage, int] | None:
    """The message covering the oldest pending outbox rows, and the last row id it covers."""
    rows = list(
        await session.scalars(
            select(models.IndexOutbox).order_by(models.IndexOutbox.id).limit(BATCH_SIZE)
        )
    )
    if not rows:
        return None
    last = rows[-1].id
    M = models.Membership
    if any(row.full for row in rows):
        # A snapshot taken now covers every earlier change too.
        members = list(await session.scalars(select(M.user_id).distinct()))
        return IndexMessage(
            realm_id, last, full=True, user_ids=_user_gids(members),
            groups=await _active_groups(session, None),
        ), last
    touched = {row.user_id for row in rows if row.user_id is not None}
    present = set(await session.scalars(select(M.user_id).where(M.user_id.in_(touched)).distinct()))
    message = IndexMessage(
        realm_id,
        last,
        user_ids_added=_user_gids(present),
        user_ids_removed=_user_gids(touched - present),
        groups=await _active_groups(session, present),
    )
    return message, last


async def _active_groups(
    session: AsyncSession, user_ids: set[int] | None
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Each user's active groups (of ``user_ids``, or of everyone), published with the index
    so that the hub can decide "members of a shared group" profile policies."""
    M = models.Membership
    statement = select(M.user_id, M.group_id).where(M.status == models.MembershipStatus.ACTIVE)
    if user_ids is not None:
        statement = statement.where(M.user_id.in_(user_ids))
    found: dict[int, list[int]] = {u: [] for u in user_ids or ()}
    for user_id, group_id in await session.execute(statement.order_by(M.user_id, M.group_id)):
        found.setdefault(user_id, []).append(group_id)
    return tuple((ids.encode("User", u), tuple(g)) for u, g in sorted(found.items()))


async def pending_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return len(list(await session.scalars(select(models.IndexOutbox.id))))


class IndexDrainer:
    """Background delivery of the outboxes of the realms one process hosts."""

    def __init__(
        self,
        sink: IndexSink,
        realms: Mapping[str, async_sessionmaker[AsyncSession]],
        *,
        poll_interval: float = 5.0,
        min_backoff: float = 0.2,
        max_backoff: float = 30.0,
    ) -> None:
        self.sink = sink
        self.realms = dict(realms)
        self.poll_interval, self.min_backoff, self.max_backoff = (
            poll_interval, min_backoff, max_backoff
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: The last delivery failure (None after a success), for health and tests.
        self.last_error: str | None = None

    def notify(self) -> None:
        """A change was committed: deliver it now rather than at the next poll."""
        self._wake.set()

    async def drain_once(self) -> int:
        """Deliver every pending message of every realm; return how many were sent.

        Raises :class:`IndexDeliveryError` at the first message the hub did not take (that
        message and everything after it stay in the outbox).
        """
        sent = 0
        for realm_id, sessions in self.realms.items():
            while True:
                async with sessions() as session:
                    found = await next_message(session, realm_id)
                if found is None:
                    break
                message, last = found
                await self.sink.deliver(message)
                async with sessions.begin() as session:
                    await session.execute(
                        delete(models.IndexOutbox).where(models.IndexOutbox.id <= last)
                    )
                sent += 1
        return sent

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="pek-index-drainer")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.sink.aclose()

    async def _run(self) -> None:
        backoff = self.min_backoff
        while True:
            self._wake.clear()
            try:
                await self.drain_once()
            except IndexDeliveryError as exc:
                if self.last_error is None:
                    log.warning("federation index: delivery failed, will retry: %s", exc)
                self.last_error = str(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            except Exception:  # a database hiccup must not kill the task
                log.exception("federation index: draining the outbox failed")
                self.last_error = "draining the outbox failed"
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            if self.last_error is not None:
                log.info("federation index: delivered again after a failure")
            self.last_error = None
            backoff = self.min_backoff
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

