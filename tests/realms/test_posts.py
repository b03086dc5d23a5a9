"""Posts and the group profile: who may give and end which post, the grant audit trail,
renaming and archiving a group; clear errors and nothing changed when refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from pek.realm import models
from pek.realm.canary import seed_canary
from pek.realm.service import RealmSubgraph
from pek.schema import ids
from tests.conftest import create_database, drop_database
from tests.realms.conftest import Realm, codes, post_graphql, realm_settings, viewer_headers

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/"

ASSIGN = """mutation($m: ID!, $k: PostKind!, $t: String) {
    assignPost(membershipId: $m, kind: $k, title: $t) { posts { id kind title } } }"""
END = "mutation($p: ID!) { endPost(postId: $p) { posts { kind } } }"
HISTORY = """query($id: ID!) { group(id: $id) { grantHistory { kind postKind user { id }
    grantedBy { id } } } }"""
UPDATE = """mutation($id: ID!, $name: String, $archived: Boolean) {
    updateGroup(id: $id, name: $name, archived: $archived) { name archived } }"""
LEADER, MEMBER, APPLICANT = 1, 2, 3


async def _posts(realm: Realm) -> list[tuple[int, models.PostKind, str | None]]:
    async with realm.service.sessions_of("alpha")() as session:
        rows = await session.scalars(select(models.Post).order_by(models.Post.id))
        return [(p.membership_id, p.kind, p.title) for p in rows]


async def _refused(realm: Realm, query: str, variables: dict[str, Any], as_user: int | None,
                   code: str) -> str:
    before = await _posts(realm)
    answer = await realm.ask(query, variables, as_user)
    assert codes(answer) == [code], answer
    assert await _posts(realm) == before
    message: str = answer["errors"][0]["message"]
    return message


async def test_posts_are_given_and_ended_by_the_groups_managers(realm: Realm) -> None:
    leader_m, member_m, applicant_m = realm.canary.ids["Membership"]
    circle = realm.canary.ids["Group"][1]

    await _refused(realm, ASSIGN, {"m": member_m, "k": "TREASURER"}, None, "UNAUTHENTICATED")
    await _refused(realm, ASSIGN, {"m": member_m, "k": "TREASURER"}, MEMBER, "FORBIDDEN")
    given = await realm.ask(ASSIGN, {"m": member_m, "k": "LEADER_ASSISTANT"}, LEADER)
    assert "errors" not in given, given
    kinds = {p["kind"] for p in given["data"]["assignPost"]["posts"]}
    assert "LEADER_ASSISTANT" in kinds

    # The assistant manages members, but may not make themself (or anyone) leader.
    message = await _refused(realm, ASSIGN, {"m": member_m, "k": "LEADER"}, MEMBER, "FORBIDDEN")
    assert "LEADER" in message
    treasurer = await realm.ask(ASSIGN, {"m": member_m, "k": "TREASURER"}, MEMBER)
    assert "errors" not in treasurer, treasurer

    # Clear errors for posts that cannot be given.
    for variables, words in (
        ({"m": applicant_m, "k": "TREASURER"}, "ACTIVE"),
        ({"m": member_m, "k": "GROUP_SPECIFIC"}, "title"),
        ({"m": member_m, "k": "TREASURER", "t": "Kincstárnok"}, "Only a GROUP_SPECIFIC"),
        ({"m": member_m, "k": "NEW_MEMBER"}, "by the realm itself"),
        ({"m": member_m, "k": "TREASURER"}, "holds this post already"),
        ({"m": ids.encode("Membership", 1, realm="beta"), "k": "TREASURER"}, "Invalid ID"),
    ):
        assert words in await _refused(realm, ASSIGN, variables, LEADER, "BAD_USER_INPUT")
    dj = await realm.ask(ASSIGN, {"m": member_m, "k": "GROUP_SPECIFIC", "t": "DJ"}, LEADER)
    assert {"kind": "GROUP_SPECIFIC", "title": "DJ"} in [
        {k: p[k] for k in ("kind", "title")} for p in dj["data"]["assignPost"]["posts"]]

    # The leader steps down: a FORMER_LEADER post remains, and the leader's rights go.
    leader_posts = (await realm.ask(
        "query($id: ID!) { membership(id: $id) { posts { id kind } } }", {"id": leader_m},
        LEADER))["data"]["membership"]["posts"]
    leader_post = next(p["id"] for p in leader_posts if p["kind"] == "LEADER")
    await _refused(realm, END, {"p": leader_post}, MEMBER, "FORBIDDEN")
    ended = await realm.ask(END, {"p": leader_post}, LEADER)
    assert [p["kind"] for p in ended["data"]["endPost"]["posts"]].count("FORMER_LEADER") == 1
    assert "LEADER" not in [p["kind"] for p in ended["data"]["endPost"]["posts"]]
    await _refused(realm, ASSIGN, {"m": leader_m, "k": "LEADER"}, LEADER, "FORBIDDEN")

    # Every grant is recorded: who gave what to whom.
    history = await realm.ask(HISTORY, {"id": circle}, MEMBER)  # the assistant may see it
    trail = [(g["kind"], g["postKind"], g["user"]["id"], g["grantedBy"]["id"])
             for g in history["data"]["group"]["grantHistory"]]
    user = {n: ids.encode("User", n) for n in (LEADER, MEMBER)}
    assert trail == [
        ("POST", "LEADER_ASSISTANT", user[MEMBER], user[LEADER]),
        ("POST", "TREASURER", user[MEMBER], user[MEMBER]),
        ("POST", "GROUP_SPECIFIC", user[MEMBER], user[LEADER]),
        ("END_POST", "LEADER", user[LEADER], user[LEADER]),
    ]
    anonymous = await realm.ask(HISTORY, {"id": circle})
    assert anonymous["data"]["group"]["grantHistory"] is None


async def test_renaming_and_archiving_a_group(realm: Realm) -> None:
    resort, circle = realm.canary.ids["Group"]
    async with realm.service.sessions_of("alpha")() as session:
        resort_name = await session.scalar(
            select(models.Group.name).where(models.Group.id == realm.canary.local_ids["Group"][0]))
    taken = await realm.ask(UPDATE, {"id": circle, "name": resort_name}, LEADER)
    assert codes(taken) == ["BAD_USER_INPUT"] and "exists" in taken["errors"][0]["message"]
    blank = await realm.ask(UPDATE, {"id": circle, "name": "  "}, LEADER)
    assert codes(blank) == ["BAD_USER_INPUT"]
    denied = await realm.ask(UPDATE, {"id": circle, "archived": True}, MEMBER)
    assert codes(denied) == ["FORBIDDEN"]
    done = await realm.ask(UPDATE, {"id": circle, "name": " Új név ", "archived": True}, LEADER)
    assert done["data"]["updateGroup"] == {"name": "Új név", "archived": True}


MOVE = """mutation($id: ID!, $parent: ID) { moveGroup(id: $id, parentId: $parent) {
    name parent { name } } }"""


async def test_moving_a_group_in_the_tree(realm: Realm) -> None:
    resort_id, circle_id = realm.canary.local_ids["Group"]
    council = 5  # leads a top-level group: on the leaders' council
    async with realm.service.sessions_of("alpha").begin() as session:
        other = models.Group(name="Other resort", purpose=models.GroupPurpose.RESORT)
        session.add(other)
        await session.flush()
        membership = models.Membership(group_id=other.id, user_id=council,
                                       status=models.MembershipStatus.ACTIVE,
                                       joined_at=dt.date(2025, 9, 1))
        session.add(membership)
        await session.flush()
        session.add(models.Post(membership_id=membership.id, kind=models.PostKind.LEADER,
                                since=dt.date(2025, 9, 1)))
        circle_row = await session.get(models.Group, circle_id)
        assert circle_row is not None
        circle_row.owner_id = council  # GOD on the circle
        other_id = other.id
    circle, other_gid = realm.canary.ids["Group"][1], ids.encode("Group", other_id, "alpha")

    async def parent_of(group_id: int) -> int | None:
        async with realm.service.sessions_of("alpha")() as session:
            return await session.scalar(
                select(models.Group.parent_id).where(models.Group.id == group_id))

    async def refused(variables: dict[str, Any], viewer: int | None, code: str) -> str:
        answer = await realm.ask(MOVE, variables, viewer)
        assert codes(answer) == [code], answer
        assert await parent_of(circle_id) == resort_id and await parent_of(other_id) is None
        message: str = answer["errors"][0]["message"]
        return message

    await refused({"id": circle, "parent": other_gid}, None, "UNAUTHENTICATED")
    # The circle's leader may edit it but may not create subgroups under another resort.
    await refused({"id": circle, "parent": other_gid}, LEADER, "FORBIDDEN")
    await refused({"id": circle}, LEADER, "FORBIDDEN")  # top level: the council's
    assert "there already" in await refused(
        {"id": circle, "parent": realm.canary.ids["Group"][0]}, council, "BAD_USER_INPUT")
    moved = await realm.ask(MOVE, {"id": circle, "parent": other_gid}, council)
    assert moved["data"]["moveGroup"]["parent"] == {"name": "Other resort"}
    # No cycles: the other resort cannot go under the circle now beneath it.
    cycle = await realm.ask(MOVE, {"id": other_gid, "parent": circle}, council)
    assert codes(cycle) == ["BAD_USER_INPUT"] and "subgroups" in cycle["errors"][0]["message"]
    itself = await realm.ask(MOVE, {"id": circle, "parent": circle}, council)
    assert codes(itself) == ["BAD_USER_INPUT"]
    top = await realm.ask(MOVE, {"id": circle}, council)
    assert top["data"]["moveGroup"]["parent"] is None and await parent_of(circle_id) is None


async def test_moving_a_group_on_postgresql_locks_and_refuses_cycles(tmp_path: Path) -> None:
    """The same move on PostgreSQL, where the tree path is locked FOR UPDATE."""
    db = await create_database("pek_move_group")
    settings = realm_settings(tmp_path, realm_ids="alpha",
                              realm_database_url=f"{PG}{db}")
    service = RealmSubgraph(settings)
    try:
        await service.start()
        async with service.sessions_of("alpha").begin() as session:
            canary = await seed_canary(session, "alpha")
            circle_row = await session.get(models.Group, canary.local_ids["Group"][1])
            assert circle_row is not None
            circle_row.owner_id = LEADER
            other = models.Group(name="Other", purpose=models.GroupPurpose.RESORT,
                                 owner_id=LEADER)
            session.add(other)
            await session.flush()
            other_gid = ids.encode("Group", other.id, "alpha")
        circle = canary.ids["Group"][1]
        headers = viewer_headers(settings, LEADER)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.asgi_app()),
                                     base_url="http://realm") as client:
            moved = await post_graphql(client, "/realms/alpha/graphql", MOVE,
                                       {"id": circle, "parent": other_gid}, headers)
            assert moved["data"]["moveGroup"]["parent"] == {"name": "Other"}, moved
            cycle = await post_graphql(client, "/realms/alpha/graphql", MOVE,
                                       {"id": other_gid, "parent": circle}, headers)
            assert codes(cycle) == ["BAD_USER_INPUT"], cycle
    finally:
        await service.aclose()
        await drop_database(db)
