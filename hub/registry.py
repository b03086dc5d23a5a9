"""The realm registry: the one source of truth of which realms exist and how to reach them.

Every change bumps the ``realms`` version (:func:`bump_version`), so that routers polling
``GET /internal/realms`` notice it cheaply. Used by the hub service, its HTTP endpoint and
the ``pek realms`` command.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pek.hub import models
from pek.schema.ids import REALM_ID_RE

#: Names of the hub's version counters.
REALMS_VERSION = "realms"
INDEX_VERSION = "federation_index"
_URL_SCHEMES = ("http://", "https://", "in-process://")
_UNSET: Any = object()


class RegistryError(ValueError):
    """A registry change with bad input (the message says what is wrong)."""


class UnknownRealm(LookupError):
    """No realm with this id in the registry."""

    def __init__(self, realm_id: str) -> None:
        super().__init__(f"no realm {realm_id!r} in the registry")
        self.realm_id = realm_id


@dataclass(frozen=True)
class RealmRecord:
    """One registry entry as routers and the CLI see it."""

    id: str
    name: str
    description: str | None
    url: str | None
    timeout_ms: int
    enabled: bool
    position: int

    @classmethod
    def of(cls, row: models.Realm) -> RealmRecord:
        return cls(row.id, row.name, row.description, row.url, row.timeout_ms, row.enabled,
                   row.position)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _check(
    realm_id: str | None = None,
    name: str | None = None,
    url: str | None = None,
    timeout_ms: int | None = None,
) -> None:
    if realm_id is not None and not REALM_ID_RE.match(realm_id):
        raise RegistryError(
            f"{realm_id!r} is not a realm id (lower-case letters, digits and dashes, "
            "at most 63)"
        )
    if name is not None and not name.strip():
        raise RegistryError("a realm needs a name")
    if url is not None and not url.startswith(_URL_SCHEMES):
        raise RegistryError(f"the url must start with one of {', '.join(_URL_SCHEMES)}")
    if timeout_ms is not None and not (1 <= timeout_ms <= 600_000):
        raise RegistryError("timeout_ms must be between 1 and 600000")


async def bump_version(session: AsyncSession, name: str) -> None:
    """Advance counter ``name`` in ``session``'s transaction."""
    V = models.Version
    changed = await session.execute(update(V).where(V.name == name).values(version=V.version + 1))
    if getattr(changed, "rowcount", 0) == 0:
        session.add(V(name=name, version=2))
        await session.flush()


async def current_version(session: AsyncSession, name: str) -> int:
    found = await session.scalar(select(models.Version.version).where(models.Version.name == name))
    return int(found or 1)


async def list_realms(session: AsyncSession, *, enabled_only: bool = False) -> list[RealmRecord]:
    """The registry in display order (position, then id)."""
    statement = select(models.Realm).order_by(models.Realm.position, models.Realm.id)
    if enabled_only:
        statement = statement.where(models.Realm.enabled.is_(True))
    return [RealmRecord.of(row) for row in await session.scalars(statement)]


async def put_realm(
    session: AsyncSession,
    realm_id: str,
    name: str,
    description: str | None = None,
    url: str | None = None,
    *,
    timeout_ms: int | None = None,
    enabled: bool | None = None,
    position: int | None = None,
) -> RealmRecord:
    """Add realm ``realm_id``, or replace its name, description and url if it exists (the
    other attributes change only when given)."""
    _check(realm_id, name, url, timeout_ms)
    row = await session.get(models.Realm, realm_id)
    if row is None:
        if position is None:
            last = await session.scalar(select(models.Realm.position).order_by(
                models.Realm.position.desc()).limit(1))
            position = 0 if last is None else last + 1
        row = models.Realm(
            id=realm_id, name=name, description=description, url=url,
            timeout_ms=timeout_ms or 5000, enabled=True if enabled is None else enabled,
            position=position,
        )
        session.add(row)
    else:
        row.name, row.description, row.url = name, description, url
        if timeout_ms is not None:
            row.timeout_ms = timeout_ms
        if enabled is not None:
            row.enabled = enabled
        if position is not None:
            row.position = position
    await session.flush()
    await bump_version(session, REALMS_VERSION)
    return RealmRecord.of(row)


async def update_realm(
    session: AsyncSession,
    realm_id: str,
    *,
    name: str | None = None,
    description: Any = _UNSET,
    url: Any = _UNSET,
    timeout_ms: int | None = None,
    enabled: bool | None = None,
    position: int | None = None,
) -> RealmRecord:
    """Change the given attributes of an existing realm (:class:`UnknownRealm` if none)."""
    row = await session.get(models.Realm, realm_id)
    if row is None:
        raise UnknownRealm(realm_id)
    _check(None, name, url if isinstance(url, str) else None, timeout_ms)
    if name is not None:
        row.name = name
    if description is not _UNSET:
        row.description = description
    if url is not _UNSET:
        row.url = url
    if timeout_ms is not None:
        row.timeout_ms = timeout_ms
    if enabled is not None:
        row.enabled = enabled
    if position is not None:
        row.position = position
    await session.flush()
    await bump_version(session, REALMS_VERSION)
    return RealmRecord.of(row)


async def remove_realm(session: AsyncSession, realm_id: str) -> bool:
    """Remove a realm and its federation-index entries; False if there was none."""
    row = await session.get(models.Realm, realm_id)
    if row is None:
        return False
    await session.delete(row)
    await session.execute(
        delete(models.FederationIndexEntry).where(models.FederationIndexEntry.realm_id == realm_id)
    )
    await session.execute(
        delete(models.IndexRealmState).where(models.IndexRealmState.realm_id == realm_id)
    )
    await bump_version(session, REALMS_VERSION)
    await bump_version(session, INDEX_VERSION)
    return True


async def registry_snapshot(session: AsyncSession) -> dict[str, Any]:
    """The body of ``GET /internal/realms``: every realm (enabled or not) and the version."""
    return {
        "version": await current_version(session, REALMS_VERSION),
        "realms": [record.to_json() for record in await list_realms(session)],
    }
