"""Policies at the hub: stored statements, grants and revocations with their audit trail, the
snapshot each realm enforces, and the hub's own profile decisions.

Realms read :func:`policy_snapshot` (``GET /internal/policies?realm=<id>``, or in-process) and
cache it by its ``version``; every grant or revocation bumps the version.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from pek.hub import models
from pek.hub.registry import bump_version, current_version
from pek.schema.policies import (
    DEFAULT_STATEMENTS,
    Action,
    GranteeKind,
    PolicySet,
    Statement,
)

POLICIES_VERSION = "policies"


def to_statement(row: models.PolicyStatement) -> Statement:
    return Statement(
        id=row.id,
        name=row.name,
        actions=frozenset(Action(a) for a in row.actions.split()),
        grantee=GranteeKind(row.grantee),
        grantee_user_id=row.grantee_user_id,
        grantee_role=row.grantee_role,
        realm_id=row.realm_id,
        group_id=row.group_id,
        subtree=row.subtree,
        target_user_id=row.target_user_id,
    )


async def grant(
    session: AsyncSession, statement: Statement, actor_id: int | None, reason: str | None = None
) -> models.PolicyStatement:
    """Store ``statement`` (validated) as granted by ``actor_id`` now; record the event."""
    statement.validate()
    now = dt.datetime.now(dt.UTC)
    row = models.PolicyStatement(
        name=statement.name,
        actions=" ".join(sorted(a.value for a in statement.actions)),
        grantee=statement.grantee.value,
        grantee_user_id=statement.grantee_user_id,
        grantee_role=statement.grantee_role,
        realm_id=statement.realm_id,
        group_id=statement.group_id,
        subtree=statement.subtree,
        target_user_id=statement.target_user_id,
        granted_by=actor_id,
        granted_at=now,
    )
    session.add(row)
    await session.flush()
    _record(session, row, "GRANT", actor_id, now, reason)
    await bump_version(session, POLICIES_VERSION)
    return row


async def revoke(
    session: AsyncSession, policy_id: int, actor_id: int | None, reason: str | None = None
) -> models.PolicyStatement | None:
    """Revoke a statement (kept, marked revoked); None if there is no such live statement."""
    row = await session.get(models.PolicyStatement, policy_id)
    if row is None or row.revoked_at is not None:
        return None
    now = dt.datetime.now(dt.UTC)
    row.revoked_at, row.revoked_by = now, actor_id
    _record(session, row, "REVOKE", actor_id, now, reason)
    await bump_version(session, POLICIES_VERSION)
    return row


def _record(
    session: AsyncSession,
    row: models.PolicyStatement,
    kind: str,
    actor_id: int | None,
    at: dt.datetime,
    reason: str | None,
) -> None:
    detail = {"statement": to_statement(row).to_json(), "reason": reason}
    session.add(models.PolicyEvent(
        policy_id=row.id, kind=kind, actor_id=actor_id, at=at,
        detail=json.dumps(detail, ensure_ascii=False, sort_keys=True),
    ))


async def live_statements(
    session: AsyncSession, realm_id: str | None = None
) -> list[models.PolicyStatement]:
    """Statements not revoked; with ``realm_id``, those that apply to that realm."""
    P = models.PolicyStatement
    statement = select(P).where(P.revoked_at.is_(None))
    if realm_id is not None:
        statement = statement.where((P.realm_id.is_(None)) | (P.realm_id == realm_id))
    return list(await session.scalars(statement.order_by(P.id)))


async def admin_ids(session: AsyncSession) -> frozenset[int]:
    return frozenset(
        await session.scalars(select(models.User.id).where(models.User.is_admin.is_(True)))
    )


async def policy_snapshot(session: AsyncSession, realm_id: str) -> PolicySet:
    """What realm ``realm_id`` enforces (the body of ``GET /internal/policies``)."""
    rows = await live_statements(session, realm_id)
    return PolicySet(
        version=await current_version(session, POLICIES_VERSION),
        statements=tuple(to_statement(r) for r in rows),
        admins=await admin_ids(session),
    )


async def seed_default_policies(session: AsyncSession) -> None:
    """Store :data:`DEFAULT_STATEMENTS` unless any statement exists (granted by the system)."""
    if await session.scalar(select(models.PolicyStatement.id).limit(1)) is not None:
        return
    for statement in DEFAULT_STATEMENTS:
        await grant(session, statement, None, "default policy of the domain")


async def shared_group_realms(
    session: AsyncSession,
    viewer_id: int,
    user_ids: Sequence[int],
    statements: Iterable[Statement],
) -> set[int]:
    """Which of ``user_ids`` share an active group with ``viewer_id`` in a realm (and group,
    when the statement names one) where a MEMBER-ACTIVE statement grants viewFullProfile."""
    scopes = [
        s for s in statements
        if s.grantee is GranteeKind.MEMBER and s.grantee_role == "ACTIVE"
        and Action.VIEW_FULL_PROFILE in s.actions
    ]
    if not scopes or not user_ids:
        return set()
    G = models.IndexGroupEntry
    mine, theirs = aliased(G), aliased(G)
    rows = await session.execute(
        select(theirs.user_id, theirs.realm_id, theirs.group_id)
        .join(mine, and_(mine.realm_id == theirs.realm_id, mine.group_id == theirs.group_id))
        .where(mine.user_id == viewer_id, theirs.user_id.in_(set(user_ids)))
    )
    found: set[int] = set()
    for user_id, realm_id, group_id in rows:
        for s in scopes:
            # A subtree scope is not resolvable at the hub (it has no group tree): only an
            # exact group or a whole realm counts here.
            if s.realm_id not in (None, realm_id):
                continue
            if s.group_id is not None and (s.subtree or s.group_id != group_id):
                continue
            if s.target_user_id not in (None, user_id):
                continue
            found.add(user_id)
            break
    return found
