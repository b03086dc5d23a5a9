"""The hub subgraph over the demo data: profiles, privacy, pagination, errors, entities."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from pek.hub import models
from pek.hub.demo import DEMO_USER_COUNT
from pek.hub.service import HubSubgraph
from pek.router.transport import SubgraphRequest
from pek.schema import ids
from pek.schema.policies import Action, GranteeKind, Statement
from tests.subgraphs.conftest import error_codes, run

PROFILE = """
query($id: ID!) { user(id: $id) { id name username
  fullProfile { email cellPhone roomNumber homeAddress dateOfBirth gender webpage dormitory }
  privacySettings { attribute visible } } }
"""
FIELD_OF = {
    "EMAIL": "email", "CELL_PHONE": "cellPhone", "ROOM_NUMBER": "roomNumber",
    "HOME_ADDRESS": "homeAddress", "DATE_OF_BIRTH": "dateOfBirth", "GENDER": "gender",
    "WEBPAGE": "webpage",
}


async def _switches(hub: HubSubgraph, user_id: int) -> dict[str, bool]:
    async with hub.sessionmaker() as session:
        rows = await session.scalars(
            select(models.PrivacySetting).where(models.PrivacySetting.user_id == user_id)
        )
        return {row.attribute.value: row.visible for row in rows}


async def test_self_sees_everything_others_see_what_privacy_allows(hub: HubSubgraph) -> None:
    target = 5
    gid = ids.encode("User", target)
    own = await run(hub, PROFILE, {"id": gid}, viewer=gid)
    full = own["data"]["user"]["fullProfile"]
    assert full["email"] and full["homeAddress"] and full["dateOfBirth"]
    assert len(own["data"]["user"]["privacySettings"]) == 7

    switches = await _switches(hub, target)
    assert set(switches.values()) == {True, False}, "demo should mix visible and hidden"
    # Without a policy (user 6 shares no group with user 5 in this hub's index) no full
    # profile; a statement granting viewer 6 viewFullProfile on user 5 shows it, filtered.
    denied = await run(hub, PROFILE, {"id": gid}, viewer="6")
    assert denied["data"]["user"]["fullProfile"] is None
    await hub.grant_policy(Statement(
        name="6 may see 5", actions=frozenset({Action.VIEW_FULL_PROFILE}),
        grantee=GranteeKind.USER, grantee_user_id=6, target_user_id=target,
    ))
    other = await run(hub, PROFILE, {"id": gid}, viewer="6")
    assert (await run(hub, PROFILE, {"id": ids.encode("User", 7)}, viewer="6"))[
        "data"]["user"]["fullProfile"] is None, "the statement names user 5 only"
    seen = other["data"]["user"]["fullProfile"]
    for attribute, field in FIELD_OF.items():
        if switches.get(attribute):
            assert seen[field] == full[field], attribute
        else:
            assert seen[field] is None, attribute
    assert other["data"]["user"]["privacySettings"] is None

    anonymous = await run(hub, PROFILE, {"id": gid})
    assert anonymous["data"]["user"]["fullProfile"] is None
    assert anonymous["data"]["user"]["name"] is None  # the basic profile is for signed-in users


async def test_a_bare_user_header_is_never_honoured(hub: HubSubgraph) -> None:
    """Only a hub token names a viewer: the old dev header counts for nothing, in dev mode
    neither; a token does, in and outside dev mode."""
    production = HubSubgraph(hub.settings.replace(dev=False))
    await production.start()
    bare = SubgraphRequest("{ me { id } }", headers={"x-pek-dev-user": "1"})
    try:
        assert await production.execute(bare) == {"data": {"me": None}}
        assert await hub.execute(bare) == {"data": {"me": None}}
        answer = await run(production, "{ me { id } }", viewer="1")
    finally:
        await production.aclose()
    assert answer == {"data": {"me": {"id": ids.encode("User", 1)}}}
    assert await run(hub, "{ me { id } }", viewer="1") == {
        "data": {"me": {"id": ids.encode("User", 1)}}
    }


async def test_users_pages_cover_everyone_once(hub: HubSubgraph) -> None:
    seen: list[str] = []
    after: str | None = None
    while True:
        page = await run(
            hub,
            "query($after: String) { users(first: 100, after: $after) { totalCount "
            "pageInfo { hasNextPage hasPreviousPage endCursor } edges { node { id } } } }",
            {"after": after}, viewer="1",
        )
        users = page["data"]["users"]
        assert users["totalCount"] == DEMO_USER_COUNT
        assert users["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += [e["node"]["id"] for e in users["edges"]]
        if not users["pageInfo"]["hasNextPage"]:
            break
        after = users["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == DEMO_USER_COUNT


async def test_anonymous_callers_list_no_people_and_see_no_names(hub: HubSubgraph) -> None:
    """The basic profile (names, username, nickname, avatar) is for signed-in users."""
    listed = await run(hub, "{ users(first: 5) { totalCount } }")
    assert listed["data"] == {"users": None} and error_codes(listed) == ["UNAUTHENTICATED"]
    one = await run(hub, "query($id: ID!) { user(id: $id) { id username firstName lastName "
                    "name nickname avatarUrl } }", {"id": ids.encode("User", 5)})
    assert one["data"]["user"] == {"id": ids.encode("User", 5), "username": None,
                                   "firstName": None, "lastName": None, "name": None,
                                   "nickname": None, "avatarUrl": None}
    signed_in = await run(hub, "query($id: ID!) { user(id: $id) { username name } }",
                          {"id": ids.encode("User", 5)}, viewer="6")
    assert all(signed_in["data"]["user"].values())


async def test_search_is_case_insensitive_over_names(hub: HubSubgraph) -> None:
    async with hub.sessionmaker() as session:
        user = await session.get(models.User, 42)
    assert user is not None
    for term in (user.last_name.upper(), f"{user.first_name.lower()} {user.last_name}",
                 user.username.upper()):
        answer = await run(
            hub, "query($s: String) { users(search: $s, first: 100) { totalCount "
            "edges { node { id firstName lastName } } } }", {"s": term}, viewer="1",
        )
        found = [e["node"]["id"] for e in answer["data"]["users"]["edges"]]
        assert ids.encode("User", 42) in found, term
        assert answer["data"]["users"]["totalCount"] == len(found)
    none = await run(hub, '{ users(search: "zzzz%_") { totalCount edges { cursor } } }',
                     viewer="1")
    assert none["data"]["users"] == {"totalCount": 0, "edges": []}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("{ users(first: 101) { totalCount } }", "at most 100"),
        ("{ users(first: -1) { totalCount } }", "negative"),
        ('{ users(after: "bm90LWEtY3Vyc29y") { totalCount } }', "Invalid cursor"),
        ('{ user(id: "not-an-id") { id } }', "Invalid ID"),
        ('{ user(id: "R3JvdXA6aHViOjE") { id } }', "Invalid ID"),  # a Group ID
    ],
)
async def test_bad_input_is_a_clear_graphql_error(
    hub: HubSubgraph, query: str, message: str
) -> None:
    answer = await run(hub, query, viewer="1")
    assert error_codes(answer) == ["BAD_USER_INPUT"]
    assert message in answer["errors"][0]["message"]
    assert "Traceback" not in str(answer)


async def test_unexpected_failures_are_masked(
    hub: HubSubgraph, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from pek.hub import loaders

    async def broken(self: Any, keys: Any) -> Any:
        raise RuntimeError("secret database detail")

    monkeypatch.setattr(loaders.UserById, "batch_load_fn", broken)
    answer = await run(hub, "{ me { id } }", viewer="1")
    assert answer["data"] == {"me": None}
    assert answer["errors"][0]["message"] == "Internal server error"
    assert answer["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "secret" not in str(answer)
    assert "secret database detail" in caplog.text


async def test_entities_and_realms(hub: HubSubgraph) -> None:
    representations = [
        {"__typename": "User", "id": ids.encode("User", 3)},
        {"__typename": "User", "id": ids.encode("User", 9999)},
        {"__typename": "User", "id": ids.encode("User", 3, realm="hub")},
    ]
    answer = await run(
        hub,
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id username } } }",
        {"r": representations},
    )
    entities = answer["data"]["_entities"]
    assert entities[0]["id"] == ids.encode("User", 3)
    assert entities[1] is None and entities[2] is None
    assert error_codes(answer) == ["BAD_USER_INPUT"]

    realms = await run(hub, "{ realms { id name description } }")
    assert realms["data"]["realms"][0]["id"] == hub.settings.realm_id
    await hub.register_realm("kirdev", "KirDev", url="http://127.0.0.1:9/graphql")
    realms = await run(hub, "{ realms { id } }")
    assert [r["id"] for r in realms["data"]["realms"]] == sorted([hub.settings.realm_id, "kirdev"])
