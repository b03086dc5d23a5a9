"""The realm subgraph over the demo data: the group tree, memberships, scoreboards, errors."""

from __future__ import annotations

import pytest

from pek.realm.service import RealmSubgraph
from pek.schema import ids
from tests.subgraphs.conftest import error_codes, run

GROUPS = """
{ groups(first: 100) { totalCount edges { node { id name purpose parent { id } children { id }
  memberships { id status user { id } statusHistory { status since until } posts { kind } } } } } }
"""


async def test_demo_tree_memberships_and_leaders(realm: RealmSubgraph) -> None:
    answer = await run(realm, GROUPS)
    assert "errors" not in answer
    groups = [e["node"] for e in answer["data"]["groups"]["edges"]]
    assert answer["data"]["groups"]["totalCount"] == len(groups) >= 24
    by_id = {g["id"]: g for g in groups}
    purposes = {g["purpose"] for g in groups}
    assert {"CIRCLE", "PROJECT"} <= purposes
    for group in groups:
        for child in group["children"]:
            assert by_id[child["id"]]["parent"]["id"] == group["id"]
        kinds = [p["kind"] for m in group["memberships"] for p in m["posts"]]
        assert kinds.count("LEADER") == 1, group["name"]
        for membership in group["memberships"]:
            history = membership["statusHistory"]
            assert history[-1]["status"] == membership["status"]
            assert history[-1]["until"] is None
            assert all(a["until"] == b["since"] for a, b in zip(history, history[1:], strict=False))
            assert 1 <= ids.decode(membership["user"]["id"], "User").local_id <= 300


async def test_group_filters_and_pagination(realm: RealmSubgraph) -> None:
    answer = await run(realm, "{ groups(purpose: PROJECT, first: 3) { totalCount "
                              "pageInfo { hasNextPage endCursor } edges { node { purpose } } } }")
    page = answer["data"]["groups"]
    assert {e["node"]["purpose"] for e in page["edges"]} == {"PROJECT"}
    rest = await run(
        realm,
        "query($a: String) { groups(purpose: PROJECT, first: 100, after: $a) "
        "{ edges { node { id } } } }",
        {"a": page["pageInfo"]["endCursor"]},
    )
    assert len(page["edges"]) + len(rest["data"]["groups"]["edges"]) == page["totalCount"]
    found = await run(realm, '{ groups(search: "KÖR") { totalCount } }')
    assert found["data"]["groups"]["totalCount"] > 0


async def test_scoreboard_applies_the_point_rules(realm: RealmSubgraph) -> None:
    query = """
    query($s: String!) { groups(first: 100) { edges { node { name scoreboard(semester: $s) {
      pointStatus entryStatus semester { name }
      guidelines { id category maxPerMember }
      rows { work responsibility total points { guideline { id } points counted } }
      entryRequests { card justification membership { status } } } } } } }
    """
    answer = await run(realm, query, {"s": "2024-2025/2"}, viewer="1")
    assert "errors" not in answer, answer.get("errors")
    boards = [e["node"]["scoreboard"] for e in answer["data"]["groups"]["edges"]]
    rows = [row for board in boards for row in board["rows"]]
    assert rows, "the demo has scored members"
    capped_somewhere = False
    for board in boards:
        guidelines = {g["id"]: g for g in board["guidelines"]}
        for row in board["rows"]:
            work = responsibility = 0
            for item in row["points"]:
                guideline = guidelines[item["guideline"]["id"]]
                counted = max(0, min(item["points"], guideline["maxPerMember"]))
                capped_somewhere |= counted != item["points"]
                assert item["counted"] == counted
                if guideline["category"] == "WORK":
                    work += counted
                else:
                    responsibility += counted
            work, responsibility = min(work, 30), min(responsibility, 20)
            raw = work + responsibility
            expected = 0 if raw <= 2 else 5 if raw <= 4 else min(raw, 50)
            assert (row["work"], row["responsibility"], row["total"]) == (
                work, responsibility, expected
            )
    assert capped_somewhere
    assert {b["pointStatus"] for b in boards} <= {"NOT_SUBMITTED", "ACCEPTED", "REJECTED"}
    assert any(b["entryRequests"] for b in boards)

    anonymous = await run(realm, query, {"s": "2024-2025/2"})
    assert all(e["node"]["scoreboard"] is None for e in anonymous["data"]["groups"]["edges"])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('{ groups(first: 1) { edges { node { scoreboard(semester: "autumn") { total: pointStatus '
         "} } } } }", "Invalid semester"),
        ('{ groups(first: 1) { edges { node { scoreboard(semester: "1999-2000/1") { pointStatus '
         "} } } } }", "Unknown semester"),
        ('{ group(id: "VXNlcjo6MQ") { id } }', "Invalid ID"),
        ('{ membership(id: "TWVtYmVyc2hpcDpvdGhlcjox") { id } }', "this realm"),
        ("{ groups(first: 1000) { totalCount } }", "at most 100"),
    ],
)
async def test_bad_input_is_a_clear_graphql_error(
    realm: RealmSubgraph, query: str, message: str
) -> None:
    answer = await run(realm, query, viewer="1")
    assert error_codes(answer) == ["BAD_USER_INPUT"], answer
    assert message in answer["errors"][0]["message"]


async def test_entity_references(realm: RealmSubgraph) -> None:
    listing = await run(realm, "{ groups(first: 1) { edges { node { id name "
                               "memberships { id user { id } } } } } }")
    group = listing["data"]["groups"]["edges"][0]["node"]
    membership = group["memberships"][0]
    answer = await run(
        realm,
        "query($r: [_Any!]!) { _entities(representations: $r) { "
        "... on Group { name } ... on Membership { group { id } } "
        "... on User { memberships { id } } } }",
        {"r": [
            {"__typename": "Group", "id": group["id"]},
            {"__typename": "Membership", "id": membership["id"]},
            {"__typename": "User", "id": membership["user"]["id"]},
        ]},
    )
    group_entity, membership_entity, user_entity = answer["data"]["_entities"]
    assert group_entity == {"name": group["name"]}
    assert membership_entity == {"group": {"id": group["id"]}}
    assert membership["id"] in [m["id"] for m in user_entity["memberships"]]


async def test_demo_differs_per_realm_and_repeats_per_realm(demo_settings: object) -> None:
    from pathlib import Path

    from pek.settings import Settings

    assert isinstance(demo_settings, Settings)
    url = demo_settings.realm_database_url
    names: dict[str, list[str]] = {}
    for realm_id in ("kirdev", "vik"):
        service = RealmSubgraph(demo_settings.replace(realm_id=realm_id, demo_data=True))
        await service.start()
        answer = await run(service, "{ groups(first: 100) { edges { node { name } } } }")
        names[realm_id] = [e["node"]["name"] for e in answer["data"]["groups"]["edges"]]
        await service.aclose()
    assert names["kirdev"] != names["vik"]
    # Seeding the same realm again from scratch gives the same data.
    fresh = Path(url.removeprefix("sqlite+aiosqlite:///")).with_name("fresh.sqlite3")
    service = RealmSubgraph(
        demo_settings.replace(
            realm_id="kirdev", demo_data=True, realm_database_url=f"sqlite+aiosqlite:///{fresh}"
        )
    )
    await service.start()
    answer = await run(service, "{ groups(first: 100) { edges { node { name } } } }")
    await service.aclose()
    assert [e["node"]["name"] for e in answer["data"]["groups"]["edges"]] == names["kirdev"]
