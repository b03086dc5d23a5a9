"""A realm that does not answer in time is reported as a timeout, not as down: the error keeps
``REALM_UNAVAILABLE`` and says ``reason: "TIMEOUT"`` with the realm's budget."""

from __future__ import annotations

from test_layer import three_realms
from world import World


async def test_a_timed_out_realm_says_so() -> None:
    world = World(three_realms(), timeout_ms=200)
    world.instances["sem"].delay = 1.0
    result = await world.query("{ groups { totalCount edges { node { realmId } } } }")
    (error,) = result["errors"]
    assert error["message"] == "Realm SEM is unavailable"
    assert error["extensions"] == {
        "code": "REALM_UNAVAILABLE", "realm": "sem", "reason": "TIMEOUT", "timeoutMs": 200,
    }
    assert {n["node"]["realmId"] for n in result["data"]["groups"]["edges"]} == {"kir", "vik"}


async def test_a_realm_that_answers_in_time_has_no_error() -> None:
    world = World(three_realms(), timeout_ms=2000)
    world.instances["sem"].delay = 0.05
    result = await world.query("{ groups { totalCount } }")
    assert "errors" not in result and result["data"]["groups"]["totalCount"] == 5
