"""Several realms in one realm process, the routing directives, node(id), and the hub's realm
registry (service, internal endpoint, public query, entity, ``pek realms`` CLI)."""

from __future__ import annotations

import argparse
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pek.hub.demo import DEMO_REALMS, in_process_demo_realms
from pek.hub.registry_cli import add_realms_parser, run_realms_command
from pek.hub.service import HubSubgraph
from pek.realm.service import RealmSubgraph, hosted_realm_ids
from pek.router.composition import SubgraphDefinition, compose
from pek.router.transport import SubgraphRequest
from pek.schema import ids
from pek.settings import Settings
from tests.realms.conftest import codes, post_graphql

GROUPS = "{ groups(first: 100) { totalCount edges { node { id name realm { id } } } } }"


def test_hosted_realm_ids() -> None:
    assert hosted_realm_ids(Settings(realm_id="kir")) == ("kir",)
    assert hosted_realm_ids(Settings(realm_ids=" kir, sch-events ")) == ("kir", "sch-events")
    with pytest.raises(ValueError, match="not a realm id"):
        hosted_realm_ids(Settings(realm_ids="kir,Bad_Realm"))
    with pytest.raises(ValueError, match="twice"):
        hosted_realm_ids(Settings(realm_ids="kir,kir"))


@pytest.fixture
async def two_demo_realms(tmp_path: Path) -> AsyncIterator[RealmSubgraph]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'realms.sqlite3'}"
    service = RealmSubgraph(Settings(realm_ids="kir,sch-events", realm_database_url=url,
                                     demo_data=True), demo_user_count=40)
    await service.start()
    yield service
    await service.aclose()


async def test_each_realm_has_its_own_endpoint_and_demo(two_demo_realms: RealmSubgraph) -> None:
    service = two_demo_realms
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.asgi_app()), base_url="http://realm"
    ) as client:
        default = await post_graphql(client, "/graphql", GROUPS)
        kir = await post_graphql(client, "/realms/kir/graphql", GROUPS)
        events = await post_graphql(client, "/realms/sch-events/graphql", GROUPS)
    assert default == kir
    kir_groups = [e["node"] for e in kir["data"]["groups"]["edges"]]
    event_groups = [e["node"] for e in events["data"]["groups"]["edges"]]
    assert {g["realm"]["id"] for g in kir_groups} == {"kir"}
    assert {g["realm"]["id"] for g in event_groups} == {"sch-events"}
    assert any(g["name"].startswith("Kir-Dev") for g in kir_groups)
    assert any("Szervezőség" in g["name"] for g in event_groups)
    assert not {g["name"] for g in kir_groups} & {g["name"] for g in event_groups}
    # Every realm sorts by name in code-point order, the order the router merges in.
    names = [g["name"] for g in event_groups]
    assert names == sorted(names)
    for group in kir_groups:
        assert ids.decode(group["id"]).realm == "kir"

    in_process = await service.for_realm("sch-events").execute(SubgraphRequest(GROUPS))
    assert in_process == events
    with pytest.raises(KeyError):
        service.for_realm("nope")


async def test_node_semesters_and_realm_fields(two_demo_realms: RealmSubgraph) -> None:
    kir = two_demo_realms.for_realm("kir")
    answer = await kir.execute(SubgraphRequest(
        "{ groups(first: 1) { edges { node { id name memberships { id posts { id } } } } } "
        "semesters { id name realm { id } } }"
    ))
    group = answer["data"]["groups"]["edges"][0]["node"]
    semesters = answer["data"]["semesters"]
    assert [s["name"] for s in semesters] == ["2024-2025/2", "2025-2026/1", "2025-2026/2"]
    assert {s["realm"]["id"] for s in semesters} == {"kir"}
    membership = group["memberships"][0]
    node_query = """query($id: ID!) { node(id: $id) { __typename id
        ... on Group { name } ... on Membership { group { name } } ... on Semester { name } } }"""
    for gid, typename in ((group["id"], "Group"), (membership["id"], "Membership"),
                          (semesters[0]["id"], "Semester")):
        found = await kir.execute(SubgraphRequest(node_query, variables={"id": gid}))
        node = found["data"]["node"]
        assert node["__typename"] == typename and node["id"] == gid
    if membership["posts"]:
        post = membership["posts"][0]["id"]
        found = await kir.execute(SubgraphRequest(node_query, variables={"id": post}))
        assert found["data"]["node"]["__typename"] == "Post"
    events = two_demo_realms.for_realm("sch-events")
    for bad in (group["id"], ids.encode("Membership", 1), "Zm9yZ2Vk"):
        refused = await events.execute(SubgraphRequest(node_query, variables={"id": bad}))
        assert refused["data"] == {"node": None} and codes(refused) == ["BAD_USER_INPUT"]
    # A hub-owned ID is answered with the entity's reference, for the router to complete.
    user = ids.encode("User", 1)
    found = await events.execute(SubgraphRequest(node_query, variables={"id": user}))
    assert found == {"data": {"node": {"__typename": "User", "id": user}}}
    missing = ids.encode("Group", 999_999, realm="sch-events")
    assert await events.execute(SubgraphRequest(node_query, variables={"id": missing})) == {
        "data": {"node": None}
    }


def test_routing_directives_are_in_the_sdl_and_survive_composition() -> None:
    settings = Settings()
    realm_sdl = RealmSubgraph(settings).sdl()
    assert "@composeDirective(name: \"@realmOwner\")" in realm_sdl
    assert 'import: ["@realmFanout", "@realmOwner"]' in realm_sdl
    expected = [
        'group(id: ID!): Group @realmOwner(argument: "id", hubIds: false)',
        'node(id: ID!): Node @realmOwner(argument: "id", hubIds: true)',
        'applyToGroup(groupId: ID!): Membership! @realmOwner(argument: "groupId", hubIds: false)',
        'semesters: [Semester!]! @realmFanout(orderBy: ["name"])',
        'GroupConnection! @realmFanout(orderBy: ["name"])',
    ]
    for line in expected:
        assert line in realm_sdl, line
    supergraph = compose([
        SubgraphDefinition("hub", "http://hub/graphql", HubSubgraph(settings).sdl()),
        SubgraphDefinition("realm", "http://realm/graphql", realm_sdl),
    ])
    assert '@link(url: "https://pek.sch.bme.hu/realmRouting/v0.1"' in supergraph
    assert (
        "directive @realmOwner(argument: String!, hubIds: Boolean! = false) on FIELD_DEFINITION"
        in supergraph
    )
    assert "directive @realmFanout(orderBy: [String!]!) on FIELD_DEFINITION" in supergraph
    assert '@join__field(graph: REALM) @realmOwner(argument: "id", hubIds: false)' in supergraph
    assert '@realmFanout(orderBy: ["name"])' in supergraph


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubSubgraph]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}"
    service = HubSubgraph(Settings(hub_database_url=url, demo_data=True),
                          demo_realms=in_process_demo_realms([r.id for r in DEMO_REALMS]))
    await service.start()
    yield service
    await service.aclose()


async def test_registry_changes_bump_the_version(hub: HubSubgraph) -> None:
    snapshot = await hub.registry_snapshot()
    assert [r["id"] for r in snapshot["realms"]] == ["hub", "kir", "sch-events"]
    assert snapshot["realms"][1]["url"] == "in-process://kir"
    version = snapshot["version"]
    await hub.register_realm("extra", "Extra", url="http://127.0.0.1:9/realms/extra/graphql",
                             timeout_ms=1500)
    await hub.update_realm("kir", enabled=False, position=10)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=hub.asgi_app()), base_url="http://hub"
    ) as client:
        internal = (await client.get("/internal/realms")).json()
        public = await post_graphql(client, "/graphql", "{ realms { id name description } }")
        no_url = await post_graphql(client, "/graphql", "{ realms { url } }")
        entities = await post_graphql(
            client, "/graphql",
            'query { _entities(representations: [{__typename: "Realm", id: "kir"}, '
            '{__typename: "Realm", id: "nope"}]) { ... on Realm { id name } } }',
        )
    assert internal["version"] > version
    by_id = {r["id"]: r for r in internal["realms"]}
    assert by_id["extra"]["timeout_ms"] == 1500 and by_id["extra"]["enabled"] is True
    assert by_id["kir"]["enabled"] is False and internal["realms"][-1]["id"] == "kir"
    assert [r["id"] for r in public["data"]["realms"]] == ["hub", "sch-events", "extra"]
    assert "url" in no_url["errors"][0]["message"]
    assert entities["data"]["_entities"] == [{"id": "kir", "name": "KIR Dev"}, None]

    assert await hub.remove_realm("extra") is True
    assert await hub.remove_realm("extra") is False
    final = await hub.registry_snapshot()
    assert "extra" not in [r["id"] for r in final["realms"]]
    assert final["version"] > internal["version"]


def test_node_is_the_realm_subgraphs_alone() -> None:
    """``Query.node`` lives in the realm subgraph only (routed by the ID's realm); the hub has
    none, so no planner has to choose between two subgraphs for it."""
    settings = Settings()
    assert "node(id: ID!)" not in HubSubgraph(settings).sdl()
    assert "node(id: ID!)" in RealmSubgraph(settings).sdl()


def _cli(url: str, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="pek")
    add_realms_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["realms", *argv])
    out = io.StringIO()
    code = run_realms_command(args, Settings(hub_database_url=url), out)
    return code, out.getvalue()


def test_realms_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}"
    assert _cli(url, "add", "kir", "--name", "KIR Dev", "--url",
                "http://127.0.0.1:8002/realms/kir/graphql", "--timeout-ms", "2000") == (
        0, "added kir\n")
    assert _cli(url, "add", "sch-events", "--name", "SCH Events")[0] == 0
    assert _cli(url, "update", "kir", "--disable", "--position", "5") == (0, "updated kir\n")
    code, listing = _cli(url, "list")
    lines = listing.splitlines()
    assert code == 0 and lines[0].split() == ["ID", "NAME", "ENABLED", "POSITION", "TIMEOUT_MS",
                                              "URL"]
    assert lines[1].startswith("sch-events") and "no" in lines[2] and "2000" in lines[2]
    assert _cli(url, "add", "Bad Id", "--name", "x")[0] == 1
    assert "not a realm id" in capsys.readouterr().err
    assert _cli(url, "add", "x", "--name", "X", "--url", "ftp://x")[0] == 1
    assert _cli(url, "remove", "kir") == (0, "removed kir\n")
    assert _cli(url, "remove", "kir")[0] == 1
    code, as_json = _cli(url, "list", "--json")
    assert '"sch-events"' in as_json and '"kir"' not in as_json
