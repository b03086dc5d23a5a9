"""The realm's mutations: who may do what, clear errors, no change on error, outbox rows."""

from __future__ import annotations

import pytest

from pek.realm import models
from tests.realms.conftest import Realm, codes

APPLY = "mutation($id: ID!) { applyToGroup(groupId: $id) { id status realm { id } } }"
WITHDRAW = "mutation($id: ID!) { withdrawApplication(membershipId: $id) }"
ACCEPT = """mutation($id: ID!) { acceptMembership(membershipId: $id) {
    status statusHistory { status until } posts { kind } } }"""
SET_STATUS = """mutation($id: ID!, $s: MembershipStatus!) {
    setMembershipStatus(membershipId: $id, status: $s) { status statusHistory { status } } }"""


async def test_apply_and_withdraw(realm: Realm) -> None:
    circle, resort = realm.canary.ids["Group"][1], realm.canary.ids["Group"][0]
    anonymous = await realm.ask(APPLY, {"id": circle})
    assert anonymous["data"] is None and codes(anonymous) == ["UNAUTHENTICATED"]

    applied = await realm.ask(APPLY, {"id": circle}, as_user=4)
    assert "errors" not in applied, applied
    membership = applied["data"]["applyToGroup"]
    assert membership["status"] == "NEWBIE" and membership["realm"] == {"id": "alpha"}
    assert len(await realm.members()) == 4
    assert await realm.outbox() == [4]

    again = await realm.ask(APPLY, {"id": circle}, as_user=4)
    assert codes(again) == ["BAD_USER_INPUT"] and "already" in again["errors"][0]["message"]

    async with realm.service.sessions_of("alpha").begin() as session:
        group = await session.get(models.Group, realm.canary.local_ids["Group"][0])
        assert group is not None
        group.users_can_apply = False
    closed = await realm.ask(APPLY, {"id": resort}, as_user=4)
    assert codes(closed) == ["FORBIDDEN"]

    not_mine = await realm.ask(WITHDRAW, {"id": membership["id"]}, as_user=5)
    assert codes(not_mine) == ["FORBIDDEN"]
    withdrawn = await realm.ask(WITHDRAW, {"id": membership["id"]}, as_user=4)
    assert withdrawn == {"data": {"withdrawApplication": True}}
    assert len(await realm.members()) == 3
    assert await realm.outbox() == [4, 4]

    active = realm.canary.ids["Membership"][1]  # user 2, ACTIVE
    not_pending = await realm.ask(WITHDRAW, {"id": active}, as_user=2)
    assert codes(not_pending) == ["BAD_USER_INPUT"]
    assert len(await realm.outbox()) == 2, "failed mutations queue nothing"


async def test_accept_and_set_status_need_a_leader(realm: Realm) -> None:
    member_ids = realm.canary.ids["Membership"]
    pending, active = member_ids[2], member_ids[1]  # user 3 NEWBIE, user 2 ACTIVE

    by_member = await realm.ask(ACCEPT, {"id": pending}, as_user=2)
    assert by_member["data"] is None and codes(by_member) == ["FORBIDDEN"]
    accepted = await realm.ask(ACCEPT, {"id": pending}, as_user=1)
    assert "errors" not in accepted, accepted
    result = accepted["data"]["acceptMembership"]
    assert result["status"] == "ACTIVE"
    assert [p["status"] for p in result["statusHistory"]] == ["NEWBIE", "ACTIVE"]
    assert result["statusHistory"][0]["until"] is not None
    assert "NEW_MEMBER" in [p["kind"] for p in result["posts"]]
    twice = await realm.ask(ACCEPT, {"id": pending}, as_user=1)
    assert codes(twice) == ["BAD_USER_INPUT"]

    by_member = await realm.ask(SET_STATUS, {"id": active, "s": "FORMER"}, as_user=3)
    assert codes(by_member) == ["FORBIDDEN"]
    former = await realm.ask(SET_STATUS, {"id": active, "s": "FORMER"}, as_user=1)
    assert former["data"]["setMembershipStatus"]["status"] == "FORMER"
    same = await realm.ask(SET_STATUS, {"id": active, "s": "FORMER"}, as_user=1)
    assert codes(same) == ["BAD_USER_INPUT"]
    newbie = await realm.ask(SET_STATUS, {"id": active, "s": "NEWBIE"}, as_user=1)
    assert codes(newbie) == ["BAD_USER_INPUT"]
    bad_enum = await realm.ask(SET_STATUS, {"id": active, "s": "BOSS"}, as_user=1)
    assert bad_enum.get("errors") and bad_enum.get("data") is None
    statuses = {m["user"]["id"]: m["status"] for m in await realm.members()}
    assert sorted(statuses.values()) == ["ACTIVE", "ACTIVE", "FORMER"]
    assert await realm.outbox() == [3, 2]


@pytest.mark.parametrize("value", ["not-an-id", "R3JvdXA6YmV0YTox"])
async def test_bad_ids_are_clear_errors(realm: Realm, value: str) -> None:
    for query in (APPLY, WITHDRAW, ACCEPT):
        answer = await realm.ask(query, {"id": value}, as_user=1)
        assert answer["data"] is None and codes(answer) == ["BAD_USER_INPUT"], answer
