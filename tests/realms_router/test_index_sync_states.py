"""The federation index vouches only for realms that completed a full resync.

Regression: the router trusted the hub's answer for every realm, so in a deployment where a
realm never reported (no ``PEK_INDEX_SECRET``, or a realm just added) every user seemed to have
no memberships there: ``User.memberships`` lost that realm's data without any error.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from test_layer import three_realms, user
from world import World

from pek.router.realms import index as index_module
from pek.router.realms.index import FederationIndex, InProcessIndexSource, parse_index

SYNCED = {"synced_at": "2026-01-01T00:00:00+00:00", "sequence": 3}
NEVER = {"synced_at": None, "sequence": 1}


class Hub:
    def __init__(self) -> None:
        self.users: dict[str, list[str]] = {"u1": ["kir"], "u2": []}
        self.states: dict[str, Any] | None = {"kir": SYNCED, "sem": NEVER}
        self.version = 1

    def lookup(self, users: Sequence[str]) -> dict[str, Any]:
        document: dict[str, Any] = {
            "users": {u: self.users[u] for u in users if u in self.users},
            "version": self.version,
        }
        if self.states is not None:
            document["realms"] = self.states
        return document


def test_parse_reads_which_realms_synced() -> None:
    answer = parse_index({"version": 2, "users": {"u1": ["kir"]},
                          "realms": {"kir": SYNCED, "sem": NEVER, "vik": "junk"}})
    assert answer.synced == frozenset({"kir"})
    assert parse_index({"version": 2, "users": {}}).synced is None


@pytest.fixture(params=["memory", "redis"])
async def setup(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Hub, FederationIndex]]:
    hub = Hub()
    redis_url = ""
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
        prefix = f"pek:test:{uuid.uuid4().hex}:"
        monkeypatch.setattr(index_module, "VERSION_KEY", prefix + "version")
        monkeypatch.setattr(index_module, "GENERATION_KEY", prefix + "generation")
        monkeypatch.setattr(index_module, "_USER_KEY", prefix + "user:")
    index = FederationIndex(InProcessIndexSource(hub.lookup), ttl_seconds=30, redis_url=redis_url)
    yield hub, index
    await index.aclose()


async def test_unsynced_and_unknown_realms_are_always_candidates(
    setup: tuple[Hub, FederationIndex],
) -> None:
    hub, index = setup
    candidates = ["kir", "sem", "vik"]
    # sem never synced, vik never reported at all: neither can be ruled out
    expected = {"u1": ("kir", "sem", "vik"), "u2": ("sem", "vik"), "u3": None}
    assert await index.realms_for(["u1", "u2", "u3"], candidates) == expected
    # the same from the cache (the sync states are cached with the entry)
    assert await index.realms_for(["u1", "u2", "u3"], candidates) == expected
    # without candidates: what the index says, as before
    assert await index.realms_for(["u1", "u2"]) == {"u1": ("kir",), "u2": ()}


async def test_once_every_realm_synced_the_index_is_trusted(
    setup: tuple[Hub, FederationIndex],
) -> None:
    hub, index = setup
    hub.states = {"kir": SYNCED, "sem": SYNCED, "vik": SYNCED}
    assert await index.realms_for(["u1", "u2"], ["kir", "sem", "vik"]) == {
        "u1": ("kir",), "u2": ()}


async def test_a_source_without_sync_states_is_trusted(
    setup: tuple[Hub, FederationIndex],
) -> None:
    hub, index = setup
    hub.states = None
    assert await index.realms_for(["u1"], ["sem", "kir"]) == {"u1": ("kir",)}


async def test_memberships_in_a_realm_that_never_synced_are_not_lost() -> None:
    # The index knows nobody in vik: vik never reported. Cili's vik membership must show.
    world = World(three_realms(), index={user(1): ["kir", "sem"], user(2): ["sem"],
                                         user(3): [], user(4): []})
    lookup = world._lookup

    def with_states(users: Sequence[str]) -> dict[str, Any]:
        return {**lookup(users), "realms": {"kir": SYNCED, "sem": SYNCED}}

    world.index.source = InProcessIndexSource(with_states)
    result = await world.query("{ users { name memberships { group { realmId } } } }")
    assert "errors" not in result, result
    by_name = {u["name"]: [m["group"]["realmId"] for m in u["memberships"]]
               for u in result["data"]["users"]}
    assert by_name == {"Ada": ["kir", "sem"],
                       "Bea": ["sem"], "Cili": ["vik"], "Dori": [], "Emma": []}
    # and vik was asked for every user, kir and sem only for their members
    asked = {
        realm: sorted(
            r["id"]
            for request in world.instances[realm].requests
            for r in (request.variables or {}).get("_pekrealm_representations_0", [])
        )
        for realm in world.instances
    }
    assert asked["vik"] == sorted(user(i) for i in range(1, 6))
    assert asked["kir"] == sorted([user(1), user(5)])
