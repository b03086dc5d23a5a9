"""A realm the registry lists without a usable url is unavailable, never silently missing.

Regression: such an entry used to be dropped when the registry was read, so a fan-out over
it answered with the other realms only (or null) and no error at all.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_layer import group, three_realms
from world import World

from pek.router.realms.registry import parse_registry


def _without_url(world: World, realm: str, url: Any) -> None:
    for entry in world.registry_document["realms"]:
        if entry["id"] == realm:
            entry["url"] = url
    world.registry_document["version"] += 1


@pytest.mark.parametrize("url", [None, "", "ftp://example.org/graphql"])
def test_parse_keeps_a_realm_without_a_usable_url(url: Any) -> None:
    snapshot = parse_registry({"version": 3, "realms": [
        {"id": "kir", "name": "KIR", "url": url},
        {"id": "sem", "name": "SEM", "url": "http://127.0.0.1:1/realms/sem/graphql"},
    ]})
    kir, sem = snapshot.get("kir"), snapshot.get("sem")
    assert kir is not None and sem is not None
    assert not kir.reachable and kir.url == ""
    assert sem.reachable


@pytest.mark.parametrize("url", [None, ""])
async def test_fanout_over_a_realm_without_url_reports_it(url: Any) -> None:
    world = World(three_realms())
    _without_url(world, "sem", url)
    result = await world.query('{ searchGroups(search: "") { name realmId } }')
    assert {g["realmId"] for g in result["data"]["searchGroups"]} == {"kir", "vik"}
    errors = result.get("errors") or []
    assert [e["extensions"]["code"] for e in errors] == ["REALM_UNAVAILABLE"], errors
    assert errors[0]["extensions"]["realm"] == "sem"
    assert errors[0]["path"] == ["searchGroups"]
    assert world.requests_to("sem") == 0


async def test_connection_and_owner_fields_over_a_realm_without_url() -> None:
    world = World(three_realms())
    _without_url(world, "vik", None)
    connection = await world.query("{ groups { totalCount edges { node { realmId } } } }")
    assert {e["node"]["realmId"] for e in connection["data"]["groups"]["edges"]} == {
        "kir", "sem"}
    assert connection["errors"][0]["extensions"]["code"] == "REALM_UNAVAILABLE"
    assert connection["errors"][0]["extensions"]["realm"] == "vik"
    owner = await world.query(f'{{ group(id: "{group("vik", 1)}") {{ name }} }}')
    assert owner["data"] == {"group": None}
    assert owner["errors"][0]["extensions"]["code"] == "REALM_UNAVAILABLE"
    assert owner["errors"][0]["extensions"]["realm"] == "vik"


async def test_giving_the_realm_a_url_makes_it_answer() -> None:
    world = World(three_realms())
    _without_url(world, "sem", None)
    first = await world.query('{ searchGroups(search: "") { realmId } }')
    assert "errors" in first
    _without_url(world, "sem", "in-process://sem")
    await world.registry.refresh()
    second = await world.query('{ searchGroups(search: "") { realmId } }')
    assert "errors" not in second, second
    assert {g["realmId"] for g in second["data"]["searchGroups"]} == {"kir", "sem", "vik"}
