"""Realm isolation, in one place.

Every realm-owned table mixes in :class:`RealmScoped` (a non-null, indexed ``realm_id``). A
session knows its realm from ``session.info["realm_id"]`` (set by :func:`realm_sessionmaker`)
and then, with no help from the calling code:

* every ORM SELECT, UPDATE and DELETE, including relationship loads, gets
  ``realm_id = <the session's realm>`` on every realm-owned entity it touches
  (``do_orm_execute`` + ``with_loader_criteria``);
* every new realm-owned object gets the session's ``realm_id`` on flush, and an object that
  names another realm is refused;
* a session without a realm that touches realm-owned tables fails instead of reading every
  realm's rows (fail closed).

Uniqueness is per realm in the tables themselves (``realm_id`` leads each unique constraint),
and composite foreign keys ``(realm_id, x_id)`` make a cross-realm reference impossible even
for raw SQL. Resolvers and loaders never mention realms.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    UOWTransaction,
    mapped_column,
    with_loader_criteria,
)

#: Key of the realm in ``Session.info``.
REALM_INFO_KEY = "realm_id"


class RealmNotSet(RuntimeError):
    """A session without a realm touched realm-owned data."""


class RealmScoped:
    """Mixin of every realm-owned model."""

    realm_id: Mapped[str] = mapped_column(String(63), index=True, nullable=False)


def realm_sessionmaker(engine: AsyncEngine, realm_id: str) -> async_sessionmaker[AsyncSession]:
    """Sessions bound to ``realm_id``: everything they read or write is that realm's."""
    return async_sessionmaker(engine, expire_on_commit=False, info={REALM_INFO_KEY: realm_id})


def session_realm(session: Session) -> str | None:
    realm = session.info.get(REALM_INFO_KEY)
    return realm if isinstance(realm, str) else None


def _touches_realm_data(state: ORMExecuteState) -> bool:
    return any(issubclass(m.class_, RealmScoped) for m in state.all_mappers)


@event.listens_for(Session, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    realm = session_realm(state.session)
    if realm is None:
        if _touches_realm_data(state):
            raise RealmNotSet("a session without a realm queried realm-owned tables")
        return
    state.statement = state.statement.options(
        with_loader_criteria(
            RealmScoped,
            lambda cls: cls.realm_id == realm,
            include_aliases=True,
        )
    )


@event.listens_for(Session, "before_flush")
def _stamp_new_rows(session: Session, _flush_context: UOWTransaction, _instances: Any) -> None:
    new_scoped = [obj for obj in session.new if isinstance(obj, RealmScoped)]
    if not new_scoped:
        return
    realm = session_realm(session)
    if realm is None:
        raise RealmNotSet("a session without a realm tried to insert realm-owned rows")
    for obj in new_scoped:
        current = getattr(obj, "realm_id", None)
        if current is None:
            obj.realm_id = realm
        elif current != realm:
            raise RealmNotSet(f"a session of realm {realm!r} tried to insert a row of {current!r}")
