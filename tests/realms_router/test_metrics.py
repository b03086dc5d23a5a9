"""The realm-routing layer's part of the metrics (``pek_realm_requests_total``: ok, timeout,
unavailable per realm), and ID errors that name their argument."""

from __future__ import annotations

from typing import Any

import pytest
from test_layer import three_realms
from world import World

from pek.router.metrics import RouterMetrics
from pek.schema import ids
from tests.router.prometheus_text import parse


class Broken:
    async def execute(self, request: Any) -> dict[str, Any]:
        raise RuntimeError("boom")


async def test_each_realm_request_is_counted_by_outcome() -> None:
    world = World(three_realms(), local={"vik": Broken()}, timeout_ms=200)
    world.instances.pop("vik")
    world.instances["sem"].delay = 1.0
    metrics = RouterMetrics(process=False)
    world.layer.metrics = metrics
    for _ in range(2):
        result = await world.query("{ groups { totalCount edges { node { realmId } } } }")
        assert {n["node"]["realmId"] for n in result["data"]["groups"]["edges"]} == {"kir"}
        assert len(result["errors"]) == 2
    # an owner-routed field asks only its realm
    result = await world.query(
        "query($id: ID!) { group(id: $id) { name } }", {"id": ids.encode("Group", 1, realm="kir")}
    )
    assert result["data"]["group"] is not None
    exposition = parse(metrics.registry.render())
    assert exposition.series("pek_realm_requests_total") == {
        frozenset({("realm", "kir"), ("outcome", "ok")}): 3,
        frozenset({("realm", "sem"), ("outcome", "timeout")}): 2,
        frozenset({("realm", "vik"), ("outcome", "unavailable")}): 2,
    }


@pytest.mark.parametrize(
    ("query", "variables", "message"),
    [
        ("query($id: ID!) { group(id: $id) { name } }", {"id": "forged"},
         'Invalid ID in argument "id": it is not an ID this federation issued'),
        ("query($id: ID!) { group(id: $id) { name } }", {"id": "R3JvdXA6a2lyOjE="},
         'Invalid ID in argument "id": it is not an ID this federation issued'),
        ("query($id: ID!) { group(id: $id) { name } }", {"id": ids.encode("User", 1)},
         'Invalid ID in argument "id": it does not name an object of a realm'),
        ('mutation { renameGroup(id: "forged", name: "x") { name } }', None,
         'Invalid ID in argument "id": it is not an ID this federation issued'),
    ],
)
async def test_a_refused_id_names_its_argument(
    query: str, variables: dict[str, Any] | None, message: str
) -> None:
    world = World(three_realms())
    result = await world.query(query, variables)
    (error,) = result["errors"]
    assert error["message"] == message
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert all(world.requests_to(r) == 0 for r in world.instances)
