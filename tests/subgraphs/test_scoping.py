"""Realm isolation: two realms in ONE database (SQLite and PostgreSQL) never see each other."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import selectinload

from pek.realm import models
from pek.realm.models import GroupPurpose, MembershipStatus, PostKind
from pek.realm.scoping import RealmNotSet
from pek.realm.service import RealmSubgraph
from pek.schema import ids
from pek.settings import Settings
from tests.subgraphs.conftest import run

SHARED_USER = 7


async def _seed(service: RealmSubgraph, own_user: int) -> dict[str, int]:
    """A resort with a child circle "Kir-Dev", memberships of SHARED_USER and ``own_user``."""
    today = dt.date(2025, 9, 1)
    async with service.sessionmaker.begin() as session:
        resort = models.Group(name="Simonyi", purpose=GroupPurpose.RESORT)
        session.add(resort)
        await session.flush()
        circle = models.Group(name="Kir-Dev", purpose=GroupPurpose.CIRCLE, parent_id=resort.id)
        session.add(circle)
        await session.flush()
        ids_: dict[str, int] = {"resort": resort.id, "circle": circle.id}
        for user_id in (SHARED_USER, own_user):
            membership = models.Membership(
                group_id=circle.id, user_id=user_id, status=MembershipStatus.ACTIVE, joined_at=today
            )
            session.add(membership)
            await session.flush()
            session.add(
                models.MembershipStatusPeriod(
                    membership_id=membership.id, status=MembershipStatus.ACTIVE, since=today
                )
            )
            session.add(models.Post(membership_id=membership.id, kind=PostKind.LEADER, since=today))
            ids_[f"membership_{user_id}"] = membership.id
    return ids_


@pytest.fixture
async def two_realms(database_url: str) -> AsyncIterator[tuple[RealmSubgraph, RealmSubgraph]]:
    base = Settings(dev=True, realm_database_url=database_url)
    alpha = RealmSubgraph(base.replace(realm_id="alpha", realm_name="Alpha"))
    beta = RealmSubgraph(base.replace(realm_id="beta", realm_name="Beta"))
    await alpha.start()
    await beta.start()  # migrating an already migrated database is a no-op
    yield alpha, beta
    await alpha.aclose()
    await beta.aclose()


async def test_same_group_name_in_both_realms_but_not_twice_in_one(
    two_realms: tuple[RealmSubgraph, RealmSubgraph],
) -> None:
    alpha, beta = two_realms
    a, b = await _seed(alpha, own_user=1), await _seed(beta, own_user=2)
    assert a["circle"] != b["circle"]
    with pytest.raises(IntegrityError):
        async with alpha.sessionmaker.begin() as session:
            session.add(models.Group(name="Kir-Dev", purpose=GroupPurpose.CIRCLE))


async def test_orm_queries_and_relationship_loads_stay_in_their_realm(
    two_realms: tuple[RealmSubgraph, RealmSubgraph],
) -> None:
    alpha, beta = two_realms
    a, b = await _seed(alpha, own_user=1), await _seed(beta, own_user=2)

    async with alpha.sessionmaker() as session:
        groups = list(await session.scalars(select(models.Group)))
        assert {g.id for g in groups} == {a["resort"], a["circle"]}
        assert {g.realm_id for g in groups} == {"alpha"}
        # Asking for beta's row by primary key from alpha finds nothing.
        assert (
            await session.scalar(select(models.Group).where(models.Group.id == b["circle"]))
        ) is None
        memberships = list(
            await session.scalars(
                select(models.Membership).where(models.Membership.user_id == SHARED_USER)
            )
        )
        assert [m.id for m in memberships] == [a[f"membership_{SHARED_USER}"]]

    # Relationship loads carry the realm criterion too (checked on the SQL actually sent).
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, sql: str, params: Any, *_rest: Any) -> None:
        statements.append((sql, params))

    event.listen(alpha.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with alpha.sessionmaker() as session:
            resorts = list(
                await session.scalars(
                    select(models.Group)
                    .where(models.Group.parent_id.is_(None))
                    .options(selectinload(models.Group.children))
                )
            )
            members = list(
                await session.scalars(
                    select(models.Membership).options(selectinload(models.Membership.status_history))
                )
            )
    finally:
        event.remove(alpha.engine.sync_engine, "before_cursor_execute", capture)
    assert [r.id for r in resorts] == [a["resort"]]
    assert [c.id for c in resorts[0].children] == [a["circle"]]
    assert {p.realm_id for m in members for p in m.status_history} == {"alpha"}
    assert len(statements) == 4
    for sql, params in statements:
        assert sql.count("realm_id") >= 1, sql
        assert "alpha" in repr(params) and "beta" not in repr(params), (sql, params)


async def test_updates_and_deletes_are_scoped(
    two_realms: tuple[RealmSubgraph, RealmSubgraph],
) -> None:
    alpha, beta = two_realms
    await _seed(alpha, own_user=1)
    await _seed(beta, own_user=2)
    async with alpha.sessionmaker.begin() as session:
        await session.execute(update(models.Group).values(description="alpha was here"))
    async with beta.sessionmaker() as session:
        descriptions = set(await session.scalars(select(models.Group.description)))
    assert descriptions == {None}


async def test_inserts_get_the_session_realm_and_foreign_realms_are_refused(
    two_realms: tuple[RealmSubgraph, RealmSubgraph],
) -> None:
    alpha, _beta = two_realms
    async with alpha.sessionmaker.begin() as session:
        group = models.Group(name="Auto", purpose=GroupPurpose.OTHER)
        session.add(group)
    assert group.realm_id == "alpha"
    with pytest.raises(RealmNotSet):
        async with alpha.sessionmaker.begin() as session:
            session.add(models.Group(name="Sneaky", purpose=GroupPurpose.OTHER, realm_id="beta"))


async def test_a_session_without_realm_fails_closed(
    two_realms: tuple[RealmSubgraph, RealmSubgraph],
) -> None:
    alpha, _beta = two_realms
    unscoped = async_sessionmaker(alpha.engine)
    with pytest.raises(RealmNotSet):
        async with unscoped() as session:
            await session.scalars(select(models.Group))


async def test_cross_realm_reference_is_impossible_even_by_id(
    two_realms: tuple[RealmSubgraph, RealmSubgraph],
) -> None:
    alpha, beta = two_realms
    b = await _seed(beta, own_user=2)
    # A parent in another realm violates the composite foreign key (realm_id, parent_id).
    with pytest.raises(IntegrityError):
        async with alpha.sessionmaker.begin() as session:
            session.add(
                models.Group(name="Orphan", purpose=GroupPurpose.OTHER, parent_id=b["resort"])
            )


async def test_graphql_and_dataloaders_stay_in_their_realm(
    two_realms: tuple[RealmSubgraph, RealmSubgraph],
) -> None:
    alpha, beta = two_realms
    a, b = await _seed(alpha, own_user=1), await _seed(beta, own_user=2)

    listing = await run(
        alpha, "{ groups { totalCount edges { node { id name children { id } } } } }"
    )
    names = [e["node"]["name"] for e in listing["data"]["groups"]["edges"]]
    assert listing["data"]["groups"]["totalCount"] == 2
    assert sorted(names) == ["Kir-Dev", "Simonyi"]
    for edge in listing["data"]["groups"]["edges"]:
        assert ids.decode(edge["node"]["id"]).realm == "alpha"

    # The shared user's memberships, through the User entity (a DataLoader by user id).
    user_id = ids.encode("User", SHARED_USER)
    entities = await run(
        alpha,
        "query($r: [_Any!]!) { _entities(representations: $r) "
        "{ ... on User { memberships { id group { id name } posts { kind } } } } }",
        {"r": [{"__typename": "User", "id": user_id}]},
    )
    memberships = entities["data"]["_entities"][0]["memberships"]
    assert [m["id"] for m in memberships] == [
        ids.encode("Membership", a[f"membership_{SHARED_USER}"], realm="alpha")
    ]

    # Beta's local id dressed up as an alpha ID: the row exists in the database, not in alpha.
    disguised = ids.encode("Group", b["circle"], realm="alpha")
    answer = await run(alpha, "query($id: ID!) { group(id: $id) { name } }", {"id": disguised})
    assert answer == {"data": {"group": None}}
    # Beta's own ID sent to alpha: rejected as another realm's.
    foreign = ids.encode("Group", b["circle"], realm="beta")
    answer = await run(alpha, "query($id: ID!) { group(id: $id) { name } }", {"id": foreign})
    assert answer["data"] == {"group": None}
    assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # ... and beta answers it.
    answer = await run(beta, "query($id: ID!) { group(id: $id) { name } }", {"id": foreign})
    assert answer == {"data": {"group": {"name": "Kir-Dev"}}}
