"""The isolation suite: every realm's IDs replayed through every entry point of the others.

Both isolation styles, on real PostgreSQL: each realm served by its own service over its own
database, and two realms served by one service from one database (rows scoped by realm_id).
Canary rows with a unique token per realm are seeded; the token of realm A must never appear
in any answer of realm B's HTTP endpoint, whatever B is asked (root fields, node, nested
fields, mutation inputs, raw ``_entities``), and B's mutations must change nothing of A's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pek.realm.canary import Canary, seed_canary
from pek.realm.service import RealmSubgraph
from pek.schema import ids
from pek.settings import Settings
from tests.conftest import create_database, drop_database
from tests.realms.conftest import codes, post_graphql, realm_settings, viewer_headers

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/"
REALMS = ("alpha", "beta")

BY_ID = {
    "group": """query($id: ID!) { group(id: $id) { id name description webpage mailingList
        realm { id } parent { name } children { name }
        memberships { id posts { title } statusHistory { status } }
        scoreboard(semester: "2025-2026/1") { explanation guidelines { name }
          rows { points { guideline { name } } } entryRequests { justification }
          history { explanation totals { membershipId total } } } } }""",
    "membership": """query($id: ID!) { membership(id: $id) { id status realm { id }
        group { name description } posts { title } statusHistory { status } user { id } } }""",
    "node": """query($id: ID!) { node(id: $id) { id
        ... on Group { name description }
        ... on Membership { group { name } posts { title } }
        ... on Post { title membership { group { name } } }
        ... on Semester { name }
        ... on Guideline { name }
        ... on EntryRequest { justification membership { group { name } } } } }""",
}
ENTITIES = """query($r: [_Any!]!) { _entities(representations: $r) {
    ... on Group { id name description children { name } memberships { posts { title } } }
    ... on Membership { id group { name } posts { title } }
    ... on User { memberships { group { name description } posts { title } } } } }"""
MUTATIONS = {
    "Group": [
        'mutation($id: ID!) { applyToGroup(groupId: $id) { id group { name } } }',
        'mutation($id: ID!) { withdrawEvaluation(groupId: $id, semester: "2025-2026/1") '
        "{ explanation guidelines { name } } }",
        'mutation($id: ID!) { submitEvaluation(groupId: $id, semester: "2025-2026/1") '
        "{ explanation entryRequests { justification } } }",
    ],
    "Membership": [
        "mutation($id: ID!) { withdrawApplication(membershipId: $id) }",
        "mutation($id: ID!) { acceptMembership(membershipId: $id) { id group { name } } }",
        'mutation($id: ID!) { setMembershipStatus(membershipId: $id, status: FORMER) '
        "{ id posts { title } } }",
    ],
}
LISTS = [
    "{ groups(first: 100) { totalCount edges { node { id name description "
    "memberships { posts { title } } } } } }",
    "{ semesters { id name } }",
]


@dataclass
class Deployment:
    """Each realm's HTTP endpoint (client + path) and the services behind them."""

    clients: dict[str, tuple[httpx.AsyncClient, str]]
    services: list[RealmSubgraph]
    settings: Settings

    def service_of(self, realm: str) -> RealmSubgraph:
        return next(s for s in self.services if realm in s.realm_ids)


@pytest.fixture(params=["own_databases", "shared_database"])
async def deployment(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Deployment]:
    databases: list[str] = []
    services: list[RealmSubgraph] = []
    base = realm_settings(tmp_path)
    if request.param == "own_databases":
        for realm in REALMS:
            name = await create_database(f"pek_iso_{realm}")
            databases.append(name)
            services.append(RealmSubgraph(base.replace(
                realm_id=realm, realm_database_url=PG + name)))
    else:
        name = await create_database("pek_iso_shared")
        databases.append(name)
        services.append(RealmSubgraph(base.replace(
            realm_ids=",".join(REALMS), realm_database_url=PG + name)))
    clients: dict[str, tuple[httpx.AsyncClient, str]] = {}
    opened: list[httpx.AsyncClient] = []
    try:
        for service in services:
            await service.start()
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=service.asgi_app()), base_url="http://realm"
            )
            opened.append(client)
            for realm in service.realm_ids:
                clients[realm] = (client, f"/realms/{realm}/graphql")
        yield Deployment(clients, services, base)
    finally:
        for client in opened:
            await client.aclose()
        for service in services:
            await service.aclose()
        for name in databases:
            await drop_database(name)


async def _seed(deployment: Deployment) -> dict[str, Canary]:
    canaries = {}
    for realm in REALMS:
        async with deployment.service_of(realm).sessions_of(realm).begin() as session:
            canaries[realm] = await seed_canary(session, realm)
    return canaries


async def _ask(
    deployment: Deployment, realm: str, query: str, variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    client, path = deployment.clients[realm]
    return await post_graphql(client, path, query, variables, headers)


async def test_no_realm_ever_answers_with_another_realms_data(deployment: Deployment) -> None:
    canaries = await _seed(deployment)
    leader = viewer_headers(deployment.settings, 1)
    answers = 0
    for owner, other in (("alpha", "beta"), ("beta", "alpha")):
        canary, foreign_token = canaries[owner], canaries[owner].token
        asked: list[tuple[str, dict[str, Any]]] = []

        # The owner itself does show its canary (the probes can see a leak at all).
        own = await _ask(deployment, owner, BY_ID["group"], {"id": canary.ids["Group"][1]})
        assert foreign_token in json.dumps(own), own

        for type_name, gid in canary.all_ids():
            local = ids.decode(gid).local_id
            forged = ids.encode(type_name, local, realm=other)
            for value in (gid, forged):
                for name, query in BY_ID.items():
                    if name in ("group", "membership") and type_name.lower() != name:
                        continue
                    asked.append((f"{name}({type_name})", await _ask(
                        deployment, other, query, {"id": value}, leader)))
                for mutation in MUTATIONS.get(type_name, []):
                    asked.append((f"mutation({type_name})", await _ask(
                        deployment, other, mutation, {"id": value}, leader)))
                if type_name in ("Group", "Membership"):
                    rep = [{"__typename": type_name, "id": value}]
                    asked.append((f"_entities({type_name})", await _ask(
                        deployment, other, ENTITIES, {"r": rep}, leader)))
            # A realm-qualified ID of another realm is a clear client error.
            wrong_realm = await _ask(deployment, other, BY_ID["node"], {"id": gid})
            assert wrong_realm["data"] == {"node": None}
            assert codes(wrong_realm) == ["BAD_USER_INPUT"]
            assert "not name an object of this realm" in wrong_realm["errors"][0]["message"]

        users = [{"__typename": "User", "id": ids.encode("User", u)} for u in canary.user_ids]
        asked.append(("_entities(User)", await _ask(
            deployment, other, ENTITIES, {"r": users}, leader)))
        asked.append(("groups(search)", await _ask(
            deployment, other, "query($s: String) { groups(search: $s) { totalCount } }",
            {"s": foreign_token})))
        for query in LISTS:
            asked.append((query[:20], await _ask(deployment, other, query, None, leader)))

        for label, answer in asked:
            assert foreign_token not in json.dumps(answer), (label, answer)
            answers += 1
        search = next(a for label, a in asked if label == "groups(search)")
        assert search["data"]["groups"]["totalCount"] == 0

    assert answers > 100


async def test_other_realms_mutations_change_nothing(deployment: Deployment) -> None:
    canaries = await _seed(deployment)
    leader = viewer_headers(deployment.settings, 1)
    probe = """query($id: ID!) { group(id: $id) { memberships { id status
        statusHistory { status } posts { title } } } }"""
    for owner, other in (("alpha", "beta"), ("beta", "alpha")):
        canary = canaries[owner]
        variables = {"id": canary.ids["Group"][1]}
        before = await _ask(deployment, owner, probe, variables, leader)
        assert len(before["data"]["group"]["memberships"]) == 3
        for type_name in ("Group", "Membership"):
            for gid in canary.ids[type_name]:
                for mutation in MUTATIONS[type_name]:
                    answer = await _ask(deployment, other, mutation, {"id": gid}, leader)
                    assert codes(answer) == ["BAD_USER_INPUT"], answer
                # The same local id in the other realm's name: with its own database that is
                # one of its own rows (its business); in a shared database, no row at all.
                forged = ids.encode(type_name, ids.decode(gid).local_id, realm=other)
                for mutation in MUTATIONS[type_name]:
                    answer = await _ask(deployment, other, mutation, {"id": forged}, leader)
                    assert canary.token not in json.dumps(answer)
                    if len(deployment.services) == 1:
                        assert answer.get("errors"), answer
        after = await _ask(deployment, owner, probe, variables, leader)
        assert after == before


async def test_unknown_realm_path_is_a_404_graphql_error(deployment: Deployment) -> None:
    client, _ = deployment.clients["alpha"]
    response = await client.post("/realms/gamma/graphql", json={"query": "{ semesters { id } }"})
    assert response.status_code == 404
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "REALM_NOT_FOUND"
    assert "gamma" in body["errors"][0]["message"]
