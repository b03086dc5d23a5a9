"""Entity fetches of one subgraph at one stage go out as one request (``BatchFetchNode``).

Every answer is compared with the same gateway planning one fetch per path
(``merge_entity_fetches=False``): merging must change the number of requests, never the response.
"""

from __future__ import annotations

from typing import Any

import pytest
from subgraphs import SCHEMAS, RecordingSubgraph

from pek.router.gateway import Gateway
from pek.router.plan_format import format_plan
from pek.router.planner import (
    BatchFetchNode,
    FetchNode,
    FlattenNode,
    ParallelNode,
    PlanNode,
    SequenceNode,
)
from pek.router.transport import InProcessTransport

Subgraphs = dict[str, RecordingSubgraph]

# users -> reviews -> author/product, and topProducts -> reviews -> author/product: the same
# hops from two roots, so every entity stage has two paths per subgraph
QUERY = """{
  users { id reviews { body author { name } product { name inStock } } }
  topProducts { upc inStock reviews { id author { name username } product { name } } }
}"""


def fetch_nodes(node: PlanNode | None) -> list[FetchNode | BatchFetchNode]:
    if node is None:
        return []
    if isinstance(node, (SequenceNode, ParallelNode)):
        return [f for child in node.nodes for f in fetch_nodes(child)]
    if isinstance(node, FlattenNode):
        return [node.node]
    return [node]


def stages(node: PlanNode | None) -> int:
    if isinstance(node, SequenceNode):
        return len(node.nodes)
    return 0 if node is None else 1


def make(supergraph: str, merge: bool, service_names: bool = False) -> tuple[Gateway, Subgraphs]:
    subgraphs = {name: RecordingSubgraph(schema) for name, schema in SCHEMAS.items()}
    gateway = Gateway(supergraph, InProcessTransport(subgraphs), merge_entity_fetches=merge,
                      service_names=service_names)
    return gateway, subgraphs


def requests_per_subgraph(subgraphs: Subgraphs) -> dict[str, int]:
    return {name: len(sub.requests) for name, sub in subgraphs.items()}


def canonical_errors(response: dict[str, Any]) -> list[tuple[str, str]]:
    # separate fetches report in completion order: compare as a set with multiplicity
    return sorted((str(e.get("path")), e["message"]) for e in response.get("errors", []))


def test_plan_batches_one_subgraph_per_stage(supergraph: str) -> None:
    merged, _ = make(supergraph, True)
    separate, _ = make(supergraph, False)
    plan = merged.plan(QUERY)
    fetches = fetch_nodes(plan.node)
    unmerged = fetch_nodes(separate.plan(QUERY).node)
    # roots (accounts, products), then reviews, then accounts + products + inventory
    assert len(unmerged) == 10
    assert len(fetches) == 6
    assert stages(plan.node) == 3
    batches = [f for f in fetches if isinstance(f, BatchFetchNode)]
    assert sorted(b.subgraph for b in batches) == ["accounts", "inventory", "products", "reviews"]
    reviews = next(b for b in batches if b.subgraph == "reviews")
    # User and Product parts select different things: two _entities fields
    assert reviews.aliases == (0, 1)
    assert [p.path for p in reviews.parts] == [("users", "@"), ("topProducts", "@")]
    assert "_e0:_entities(representations:$_pek_representations0)" in reviews.operation
    assert "_e1:_entities(representations:$_pek_representations1)" in reviews.operation
    # the author parts select the same fields: one _entities field for both paths
    accounts = next(b for b in batches if b.subgraph == "accounts")
    assert accounts.aliases == (0, 0)
    assert accounts.operation.count("_entities(") == 1
    text = format_plan(plan)
    assert 'BatchFetch(service: "accounts")' in text
    assert 'Flatten(path: "topProducts.@.reviews.@.author")' in text
    as_json = plan.to_json()["node"]["nodes"][1]
    assert as_json["kind"] == "BatchFetch"
    assert [e["alias"] for e in as_json["entityBatch"]] == ["_e0", "_e1"]


async def test_merged_answers_equal_separate_fetches(supergraph: str) -> None:
    merged, merged_subgraphs = make(supergraph, True)
    separate, separate_subgraphs = make(supergraph, False)
    got = await merged.execute(QUERY)
    want = await separate.execute(QUERY)
    assert got["data"] == want["data"]
    assert canonical_errors(got) == canonical_errors(want)
    assert requests_per_subgraph(merged_subgraphs) == {
        "accounts": 2,
        "products": 2,
        "reviews": 1,
        "inventory": 1,
    }
    assert sum(requests_per_subgraph(separate_subgraphs).values()) == 10
    # the data is really there (not two equally empty answers)
    users = got["data"]["users"]
    assert users[0]["reviews"][0] == {
        "body": "Love it",
        "author": {"name": "Ada Lovelace"},
        "product": {"name": "Table", "inStock": True},
    }
    assert got["data"]["topProducts"][1]["reviews"][0]["author"] == {
        "name": "Alan Turing",
        "username": "alan",
    }


async def test_one_representation_for_objects_of_several_paths(
    supergraph: str,
) -> None:
    merged, subgraphs = make(supergraph, True)
    await merged.execute(QUERY)
    (request,) = subgraphs["accounts"].requests[1:]
    representations = request.variables["_pek_representations0"]  # type: ignore[index]
    ids = [r["id"] for r in representations]
    # authors 1, 2 and 4 appear under users and under topProducts: each is sent once
    assert sorted(ids) == sorted(set(ids))
    assert set(ids) == {"1", "2", "4"}


async def test_error_paths_inside_merged_fetches(supergraph: str) -> None:
    # user 4's name fails in accounts; user 4 wrote review r4 (product p3), which is reached
    # from users[3] and from topProducts[2]: one error per path, as separate fetches report
    # service names on (dev mode): each error says which subgraph it came from
    merged, _ = make(supergraph, True, service_names=True)
    separate, _ = make(supergraph, False, service_names=True)
    got = await merged.execute(QUERY)
    want = await separate.execute(QUERY)
    paths = sorted(e["path"] for e in got["errors"] if e["message"].startswith("name"))
    assert paths == [
        ["topProducts", 2, "reviews", 0, "author", "name"],
        ["users", 3, "reviews", 0, "author", "name"],
    ]
    for error in got["errors"]:
        assert error["extensions"]["serviceName"] == "accounts"
    assert got["data"]["users"][3]["reviews"][0]["author"] is None
    assert got["data"]["topProducts"][2]["reviews"][0]["author"] is None
    assert canonical_errors(got) == canonical_errors(want)


@pytest.mark.parametrize(
    "query",
    [
        # two parts with their own selections in one request, variables shared
        "query($id: ID!) { user(id: $id) { reviews { product { name } } } "
        "topProducts { reviews { product { name upc } } } }",
        # only one of the paths yields objects: the other part is sent empty
        '{ user(id: "404") { reviews { product { name } } } '
        "topProducts { reviews { product { name upc } } } }",
        # @requires (inventory needs price and weight) in a batched stage
        "{ users { reviews { product { shippingEstimate } } } "
        "topProducts { reviews { product { shippingEstimate name } } } }",
    ],
)
async def test_more_shapes_equal_separate_fetches(supergraph: str, query: str) -> None:
    merged, _ = make(supergraph, True)
    separate, _ = make(supergraph, False)
    variables = {"id": "1"}
    got = await merged.execute(query, variables)
    want = await separate.execute(query, variables)
    assert "data" in got
    assert got["data"] == want["data"]
    assert canonical_errors(got) == canonical_errors(want)


async def test_subgraph_down_in_a_batch_fails_every_part(supergraph: str) -> None:
    merged, subgraphs = make(supergraph, True)

    async def refuse(_request: Any) -> dict[str, Any]:
        return {"data": None, "errors": [{"message": "accounts is on fire"}]}

    subgraphs["accounts"].execute = refuse  # type: ignore[method-assign]
    got = await merged.execute("{ topProducts { reviews { author { name } } } }")
    # the root fetch is products: only the batched accounts entities fail
    assert [e["message"] for e in got["errors"]] == ["accounts is on fire"]
    assert "path" not in got["errors"][0]
    # the subgraph's error explains the nulls: no "Cannot return null" of the router's own
    assert all(r["author"] is None for p in got["data"]["topProducts"] for r in p["reviews"])
