"""The federation index cache: in memory and in Redis (real), versions and invalidation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from pek.router.realms import index as index_module
from pek.router.realms.index import FederationIndex, InProcessIndexSource


class Hub:
    def __init__(self) -> None:
        self.users: dict[str, list[str]] = {"u1": ["kir"], "u2": []}
        self.version = 1
        self.lookups: list[list[str]] = []
        self.down = False

    def lookup(self, users: Sequence[str]) -> dict[str, Any]:
        self.lookups.append(list(users))
        if self.down:
            raise ConnectionError("hub down")
        return {"users": {u: self.users[u] for u in users if u in self.users},
                "version": self.version}


@pytest.fixture(params=["memory", "redis"])
async def setup(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Hub, FederationIndex]]:
    hub = Hub()
    redis_url = ""
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
        # a key space of our own, so parallel runs do not share entries
        prefix = f"pek:test:{uuid.uuid4().hex}:"
        monkeypatch.setattr(index_module, "VERSION_KEY", prefix + "version")
        monkeypatch.setattr(index_module, "GENERATION_KEY", prefix + "generation")
        monkeypatch.setattr(index_module, "_USER_KEY", prefix + "user:")
    index = FederationIndex(InProcessIndexSource(hub.lookup), ttl_seconds=30, redis_url=redis_url)
    yield hub, index
    await index.aclose()


async def test_answers_are_cached_and_unknown_users_stay_unknown(
    setup: tuple[Hub, FederationIndex],
) -> None:
    hub, index = setup
    assert await index.realms_for(["u1", "u2", "u3"]) == {"u1": ("kir",), "u2": (), "u3": None}
    assert await index.realms_for(["u1", "u2", "u3"]) == {"u1": ("kir",), "u2": (), "u3": None}
    assert hub.lookups == [["u1", "u2", "u3"], ["u3"]]


async def test_a_newer_version_makes_older_entries_stale(
    setup: tuple[Hub, FederationIndex],
) -> None:
    hub, index = setup
    await index.realms_for(["u1"])
    hub.users["u1"] = ["kir", "sem"]
    hub.version = 2
    await index.realms_for(["u9"])  # any answer carries the new version
    assert await index.realms_for(["u1"]) == {"u1": ("kir", "sem")}


async def test_invalidate_forgets_everything(setup: tuple[Hub, FederationIndex]) -> None:
    hub, index = setup
    await index.realms_for(["u1"])
    hub.users["u1"] = ["vik"]
    await index.invalidate()
    assert await index.realms_for(["u1"]) == {"u1": ("vik",)}


async def test_a_failing_hub_means_unknown_not_an_error(
    setup: tuple[Hub, FederationIndex],
) -> None:
    hub, index = setup
    hub.down = True
    assert await index.realms_for(["u1"]) == {"u1": None}


async def test_redis_down_degrades_to_no_cache() -> None:
    hub = Hub()
    index = FederationIndex(
        InProcessIndexSource(hub.lookup), redis_url="redis://127.0.0.1:1/0"
    )
    try:
        assert await index.realms_for(["u1"]) == {"u1": ("kir",)}
        assert await index.realms_for(["u1"]) == {"u1": ("kir",)}
    finally:
        await index.aclose()
