"""Integration: the gateway over several in-process realm instances through the routing layer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fixtures import RealmData, RealmInstance
from world import World

from pek.schema import ids


def user(n: int) -> str:
    return ids.encode("User", n)


def group(realm: str, n: int) -> str:
    return ids.encode("Group", n, realm=realm)


def three_realms() -> dict[str, RealmData]:
    kir, sem, vik = RealmData(), RealmData(), RealmData()
    for name in ("Alpha", "Echo"):
        kir.add_group(name)
    for name in ("Bravo", "Alpha"):
        sem.add_group(name)
    vik.add_group("Delta")
    kir.add_membership(1, 1)
    sem.add_membership(1, 1)
    sem.add_membership(2, 2)
    vik.add_membership(1, 3)
    return {"kir": kir, "sem": sem, "vik": vik}


@pytest.fixture
def world() -> World:
    return World(
        three_realms(),
        index={user(1): ["kir", "sem"], user(2): ["sem"], user(3): ["vik"], user(4): []},
    )


async def test_owner_fields_reach_only_their_realm(world: World) -> None:
    result = await world.query(
        "query($id: ID!) { group(id: $id) { name realmId } realmStats(realm: \"vik\") "
        "{ realmId groupCount } }",
        {"id": group("sem", 2)},
    )
    assert result == {
        "data": {
            "group": {"name": "Alpha", "realmId": "sem"},
            "realmStats": {"realmId": "vik", "groupCount": 1},
        }
    }
    assert (world.requests_to("kir"), world.requests_to("sem"), world.requests_to("vik")) == (
        0, 1, 1,
    )


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (ids.encode("Group", 1, realm="nowhere"), "REALM_NOT_FOUND"),
        ("R3JvdXA6a2lyOjE=", "BAD_USER_INPUT"),  # padded: not an ID we issued
        ("forged", "BAD_USER_INPUT"),
        (ids.encode("User", 1), "BAD_USER_INPUT"),  # a hub ID names no realm
    ],
)
async def test_unknown_or_forged_ids_reach_no_realm(world: World, value: str, code: str) -> None:
    result = await world.query("query($id: ID!) { group(id: $id) { name } }", {"id": value})
    assert result["data"] == {"group": None}
    (error,) = result["errors"]
    assert error["extensions"]["code"] == code
    assert error["path"] == ["group"]
    assert all(world.requests_to(r) == 0 for r in world.instances)


async def test_node_resolves_through_its_owner(world: World) -> None:
    membership = ids.encode("Membership", 2, realm="sem")
    result = await world.query(
        "query($a: ID!, $b: ID!) { a: node(id: $a) { id ... on Group { name } } "
        "b: node(id: $b) { ... on Membership { group { name } user { name } } } }",
        {"a": group("kir", 2), "b": membership},
    )
    assert result == {
        "data": {
            "a": {"id": group("kir", 2), "name": "Echo"},
            "b": {"group": {"name": "Alpha"}, "user": {"name": "Bea"}},
        }
    }


async def test_fanout_list_is_merged_in_declared_order(world: World) -> None:
    result = await world.query('{ searchGroups(search: "") { name realmId } }')
    names = [(g["name"], g["realmId"]) for g in result["data"]["searchGroups"]]
    # ties (two "Alpha") by realm id; internal order fields never reach the client
    assert names == [
        ("Alpha", "kir"), ("Alpha", "sem"), ("Bravo", "sem"), ("Delta", "vik"), ("Echo", "kir"),
    ]
    assert "errors" not in result


async def test_connection_pages_across_realms(world: World) -> None:
    query = """query($after: String) {
      groups(first: 2, after: $after) {
        totalCount
        edges { cursor node { name realmId } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
    }"""
    seen: list[tuple[str, str]] = []
    after: str | None = None
    pages = 0
    while True:
        result = await world.query(query, {"after": after})
        assert "errors" not in result, result
        connection = result["data"]["groups"]
        assert connection["totalCount"] == 5
        edges = connection["edges"]
        seen += [(e["node"]["name"], e["node"]["realmId"]) for e in edges]
        info = connection["pageInfo"]
        assert info["hasPreviousPage"] == (after is not None)
        if edges:
            assert info["endCursor"] == edges[-1]["cursor"]
            assert info["startCursor"] == edges[0]["cursor"]
        pages += 1
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert seen == [
        ("Alpha", "kir"), ("Alpha", "sem"), ("Bravo", "sem"), ("Delta", "vik"), ("Echo", "kir"),
    ]
    assert pages == 3


async def test_a_forged_connection_cursor_is_bad_input(world: World) -> None:
    result = await world.query('{ groups(after: "bm9wZQ") { totalCount } }')
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert result["errors"][0]["message"] == "Invalid cursor"
    assert all(world.requests_to(r) == 0 for r in world.instances)


async def test_bad_arguments_of_a_fanout_are_reported_once(world: World) -> None:
    result = await world.query("{ groups(first: 1000) { totalCount } }")
    messages = [e["message"] for e in result["errors"]]
    assert messages.count("`first` must be between 0 and 100") == 1


async def test_undirected_field_needs_exactly_one_answer(world: World) -> None:
    one = await world.query('{ groupByName(name: "Delta") { realmId } }')
    assert one == {"data": {"groupByName": {"realmId": "vik"}}}
    none = await world.query('{ groupByName(name: "Zulu") { realmId } }')
    assert none == {"data": {"groupByName": None}}
    several = await world.query('{ groupByName(name: "Alpha") { realmId } }')
    assert several["data"] == {"groupByName": None}
    assert several["errors"][0]["extensions"]["code"] == "REALM_ROUTING_AMBIGUOUS"


async def test_user_memberships_follow_the_federation_index(world: World) -> None:
    result = await world.query("{ users { name memberships { group { name realmId } } } }")
    assert "errors" not in result, result
    by_name = {u["name"]: [m["group"]["realmId"] for m in u["memberships"]]
               for u in result["data"]["users"]}
    assert by_name == {"Ada": ["kir", "sem"], "Bea": ["sem"], "Cili": ["vik"], "Dori": [],
                       "Emma": []}
    # Emma is not in the index at all: every realm was asked for her (no data lost)
    entity_reps = {
        realm: [
            r["id"]
            for request in world.instances[realm].requests
            for r in (request.variables or {}).get("_pekrealm_representations_0", [])
        ]
        for realm in world.instances
    }
    assert entity_reps["kir"] == [user(1), user(5)]
    assert entity_reps["sem"] == [user(1), user(2), user(5)]
    assert entity_reps["vik"] == [user(3), user(5)]
    # the index answer is cached
    await world.query("{ users { memberships { id } } }")
    assert world.index_lookups == [[user(i) for i in range(1, 6)], [user(5)]]


async def test_a_missing_index_asks_every_realm(world: World) -> None:
    world.index_users = None  # the hub's index endpoint fails
    result = await world.query("{ users { name memberships { group { realmId } } } }")
    assert "errors" not in result
    ada = result["data"]["users"][0]
    assert [m["group"]["realmId"] for m in ada["memberships"]] == ["kir", "sem"]


async def test_a_stale_index_is_replaced_when_the_version_moves(world: World) -> None:
    await world.query("{ users { memberships { id } } }")
    world.instances["vik"].data.add_membership(1, 4)  # Dori joins vik ...
    world.index_users = {user(4): ["vik"], user(5): []}  # ... and the hub's index says so
    world.index_version = 2
    # this request still uses Dori's cached v1 entry, but Emma (never cached: the hub did not
    # know her) is looked up and the answer carries version 2 ...
    await world.query("{ users { name memberships { group { realmId } } } }")
    # ... so from now on every entry older than version 2 is refetched
    result = await world.query("{ users { name memberships { group { realmId } } } }")
    assert "errors" not in result
    dori = [u for u in result["data"]["users"] if u["name"] == "Dori"]
    assert dori[0]["memberships"] == [{"group": {"realmId": "vik"}}]


async def test_entities_go_only_to_their_owner() -> None:
    world = World(three_realms(), index={})
    result = await world.query("{ users { memberships { group { name members { id } } } } }")
    assert "errors" not in result
    for realm, instance in world.instances.items():
        for request in instance.requests:
            for rep in (request.variables or {}).get("_pekrealm_representations_0", []):
                realm_of = ids.decode(rep["id"]).realm
                assert realm_of in (None, realm)


async def test_mutations_go_to_one_realm_in_order(world: World) -> None:
    result = await world.query(
        """mutation($id: ID!) {
          a: createGroup(input: {realm: "vik", name: "Foxtrot"}) { name realmId }
          b: renameGroup(id: $id, name: "Golf") { name realmId }
          c: createGroup(input: {realm: "vik", name: "Hotel"}) { realmId }
        }""",
        {"id": group("kir", 1)},
    )
    assert result == {
        "data": {
            "a": {"name": "Foxtrot", "realmId": "vik"},
            "b": {"name": "Golf", "realmId": "kir"},
            "c": {"realmId": "vik"},
        }
    }
    assert world.instances["vik"].data.mutations == ["create Foxtrot", "create Hotel"]
    assert world.instances["kir"].data.mutations == ["rename 1 Golf"]
    assert world.requests_to("sem") == 0


async def test_mutation_without_owner_is_refused_before_any_realm(world: World) -> None:
    result = await world.query("mutation { resetAll }")
    assert result["errors"][0]["extensions"]["code"] == "REALM_ROUTING_UNSUPPORTED"
    assert all(world.requests_to(r) == 0 for r in world.instances)
    assert world.instances["kir"].data.groups


async def test_a_realm_added_while_running_is_used_without_restart(world: World) -> None:
    await world.query('{ searchGroups(search: "") { name } }')
    new = RealmData()
    new.add_group("Aardvark")
    world.instances["new"] = RealmInstance("new", new)
    world.registry_document = {
        "version": 2,
        "realms": [*world.registry_document["realms"],
                   {"id": "new", "name": "New", "url": "in-process://new", "timeout_ms": 1000,
                    "enabled": True, "position": 9}],
    }
    # naming the new realm refreshes the registry at once
    by_owner = await world.query('{ realmStats(realm: "new") { groupCount } }')
    assert by_owner == {"data": {"realmStats": {"groupCount": 1}}}
    listed = await world.query('{ searchGroups(search: "") { name realmId } }')
    assert listed["data"]["searchGroups"][0] == {"name": "Aardvark", "realmId": "new"}
    # and removing it (or disabling it) takes it out again
    world.registry_document = {"version": 3, "realms": world.registry_document["realms"][:3]}
    await world.registry.refresh()
    listed = await world.query('{ searchGroups(search: "") { realmId } }')
    assert {g["realmId"] for g in listed["data"]["searchGroups"]} == {"kir", "sem", "vik"}
    gone = await world.query('{ realmStats(realm: "new") { groupCount } }')
    assert gone["errors"][0]["extensions"]["code"] == "REALM_NOT_FOUND"


class Broken:
    async def execute(self, request: Any) -> dict[str, Any]:
        raise RuntimeError("boom")


async def test_a_slow_realm_is_reported_and_the_others_answer() -> None:
    world = World(three_realms(), index={user(1): ["kir", "sem"]}, timeout_ms=300)
    world.instances["sem"].delay = 2.0
    started = asyncio.get_running_loop().time()
    result = await world.query(
        '{ searchGroups(search: "") { realmId } users { name memberships { id } } '
        f'group(id: "{group("sem", 1)}") {{ name }} }}'
    )
    assert asyncio.get_running_loop().time() - started < 1.5
    assert {g["realmId"] for g in result["data"]["searchGroups"]} == {"kir", "vik"}
    assert result["data"]["group"] is None
    unavailable = [e for e in result["errors"] if e["extensions"]["code"] == "REALM_UNAVAILABLE"]
    assert unavailable and all(e["extensions"]["realm"] == "sem" for e in unavailable)
    assert all(e["message"] == "Realm SEM is unavailable" for e in unavailable)
    paths = {tuple(e["path"]) for e in unavailable}
    assert ("searchGroups",) in paths and ("group",) in paths
    assert ("users", 0) in paths  # Ada's sem memberships are missing: said at her path
    ada = result["data"]["users"][0]
    assert len(ada["memberships"]) == 1  # her kir membership is still there


async def test_a_failing_instance_is_unavailable_not_a_crash() -> None:
    data = three_realms()
    world = World(data, local={"vik": Broken()})
    world.instances.pop("vik")
    result = await world.query('{ groups { totalCount edges { node { realmId } } } }')
    assert result["data"]["groups"]["totalCount"] == 4
    assert result["errors"][0]["extensions"] == {
        "code": "REALM_UNAVAILABLE", "realm": "vik",
    }


async def test_other_subgraphs_pass_straight_through(world: World) -> None:
    result = await world.query("{ users { name } }")
    assert result == {"data": {"users": [{"name": n} for n in
                                         ("Ada", "Bea", "Cili", "Dori", "Emma")]}}
    assert all(world.requests_to(r) == 0 for r in world.instances)
