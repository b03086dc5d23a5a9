"""Property: walking ``first``/``after`` through a connection merged across realms yields every
item exactly once and in the declared order (real strawberry realm instances, 1-8 realms)."""

from __future__ import annotations

import asyncio

from fixtures import RealmData
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from world import World

from pek.schema import ids

REALM_IDS = [f"r{n}" for n in range(8)]
# few distinct names: many ties inside and across realms
names = st.sampled_from(["a", "b", "B", "c", "zz", "ä", ""])
realm_contents = st.lists(st.lists(names, max_size=12), min_size=1, max_size=8)

QUERY = """query($first: Int, $after: String) {
  groups(first: $first, after: $after) {
    totalCount
    edges { cursor node { id name } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def _walk(world: World, first: int) -> tuple[list[tuple[str, str]], list[int]]:
    seen: list[tuple[str, str]] = []
    totals: list[int] = []
    after: str | None = None
    for _ in range(200):
        result = await world.query(QUERY, {"first": first, "after": after})
        assert "errors" not in result, result
        connection = result["data"]["groups"]
        totals.append(connection["totalCount"])
        edges = connection["edges"]
        assert len(edges) <= first
        seen += [(e["node"]["id"], e["node"]["name"]) for e in edges]
        if not connection["pageInfo"]["hasNextPage"]:
            return seen, totals
        assert len(edges) == first  # only the last page may be short
        after = connection["pageInfo"]["endCursor"]
    raise AssertionError("pagination did not end")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contents=realm_contents, first=st.integers(min_value=1, max_value=7))
def test_walking_the_merged_connection_yields_every_item_once_in_order(
    contents: list[list[str]], first: int
) -> None:
    realms: dict[str, RealmData] = {}
    expected: list[tuple[str, str, int]] = []
    for realm_id, group_names in zip(REALM_IDS, contents, strict=False):
        data = RealmData()
        for name in group_names:
            local = data.add_group(name)
            expected.append((name, realm_id, local))
        realms[realm_id] = data
    # the declared order: name, then realm id, then the realm's own order (local id here)
    expected.sort()
    world = World(realms)
    seen, totals = asyncio.run(_walk(world, first))
    assert seen == [
        (ids.encode("Group", local, realm=realm), name) for name, realm, local in expected
    ]
    assert len(set(seen)) == len(seen)
    assert set(totals) == {len(expected)}
