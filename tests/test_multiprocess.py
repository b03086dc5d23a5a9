"""The same graph as separate processes: hub and realm on PostgreSQL, router over HTTP.

Starts ``pek hub``, ``pek realm`` and ``pek router`` as real processes on loopback (and ``pek dev``
beside them) and checks that the cross-subgraph queries give the same answers through both.

The federated side has one realm, ``hub``, registered in the hub's registry with
``pek realms add`` (its URL is known only once the realm process runs: the operator's step).
``pek dev`` hosts three demo realms by default; here it runs with ``PEK_REALM_IDS=hub`` so that
both deployments hold the very same graph (one realm, the same demo data) and every answer,
``realms`` included, can be compared whole. The many-realm topology is
``tests/test_realms_multiprocess.py``.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pek.schema.tokens import TokenSigner
from pek.settings import Settings
from tests.conftest import create_database, drop_database
from tests.processes import PekProcess, free_port, register_realm

pytestmark = pytest.mark.slow

CROSS_QUERIES = {
    "users_with_memberships": """
      query Users($n: Int!) {
        users(first: $n) {
          totalCount
          edges { cursor node { id name nickname
            memberships { status posts { kind title } group { name purpose parent { name } } } } }
          pageInfo { hasNextPage endCursor }
        }
      }""",
    "groups_members_round_trip": """
      {
        groups(first: 4) {
          edges { node {
            id name
            memberships {
              status
              user {
                name
                ... on User { memberships { group { name } } }
              }
            }
          } }
        }
      }""",
    "aliases_fragments_directives": """
      query Q($withGroups: Boolean!, $skipUsers: Boolean!) {
        first: users(first: 2) { ...U }
        second: users(first: 2, search: "a") { ...U }
        everyone: users(first: 1) @skip(if: $skipUsers) { totalCount }
        realms { id name }
        g: groups(first: 2) @include(if: $withGroups) { edges { node { title: name } } }
      }
      fragment U on UserConnection { edges { node { handle: nickname
        memberships { group { n: name } } } } }""",
}
VARIABLES: dict[str, dict[str, Any]] = {
    "users_with_memberships": {"n": 5},
    "aliases_fragments_directives": {"withGroups": True, "skipUsers": True},
}


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    logs = tmp_path_factory.mktemp("logs")
    hub_db = asyncio.run(create_database("pek_mp_hub"))
    realm_db = asyncio.run(create_database("pek_mp_realm"))
    pg = "postgresql+asyncpg://postgres@127.0.0.1:5432/"
    ports = {name: free_port() for name in ("hub", "realm", "router", "dev")}
    # The hub and `pek dev` sign with the same key, so one token is a viewer on both.
    _KEYS.append(logs / "keys")
    common = {"PEK_DEMO_DATA": "true", "PEK_LOG_LEVEL": "warning",
              "PEK_KEY_DIR": str(_KEYS[-1])}
    started: list[PekProcess] = []
    try:
        hub = PekProcess(
            ["hub", "--port", str(ports["hub"])],
            {**common, "PEK_HUB_DATABASE_URL": pg + hub_db},
            logs / "hub.log",
        )
        started.append(hub)
        hub.wait_healthy(f"http://127.0.0.1:{ports['hub']}/health")
        realm = PekProcess(
            ["realm", "--port", str(ports["realm"])],
            {**common, "PEK_REALM_DATABASE_URL": pg + realm_db},
            logs / "realm.log",
        )
        started.append(realm)
        realm.wait_healthy(f"http://127.0.0.1:{ports['realm']}/health")
        # The hub's demo registered realm `hub` without a URL; the operator gives it one.
        register_realm(pg + hub_db, "hub",
                       f"http://127.0.0.1:{ports['realm']}/realms/hub/graphql", name="Hub")
        router = PekProcess(
            ["router", "--port", str(ports["router"]),
             "--hub-url", f"http://127.0.0.1:{ports['hub']}/graphql",
             "--realm-url", f"http://127.0.0.1:{ports['realm']}/graphql"],
            {"PEK_LOG_LEVEL": "warning"},
            logs / "router.log",
        )
        started.append(router)
        router.wait_healthy(f"http://127.0.0.1:{ports['router']}/health")
        dev = PekProcess(
            ["dev", "--port", str(ports["dev"]),
             "--database-url", f"sqlite+aiosqlite:///{Path(logs) / 'dev.sqlite3'}"],
            {"PEK_LOG_LEVEL": "warning", "PEK_REALM_IDS": "hub", "PEK_KEY_DIR": str(_KEYS[-1])},
            logs / "dev.log",
        )
        started.append(dev)
        dev.wait_healthy(f"http://127.0.0.1:{ports['dev']}/health")
        yield {
            "router": f"http://127.0.0.1:{ports['router']}/graphql",
            "dev": f"http://127.0.0.1:{ports['dev']}/graphql",
        }
        # Stopping cleanly on SIGTERM is part of the contract of every role: uvicorn shuts the
        # app down, then re-raises the signal, so a clean stop exits 0 or -SIGTERM, never -SIGKILL.
        codes = {p.args[0]: p.stop() for p in reversed(started)}
        started.clear()
        assert set(codes.values()) <= {0, -signal.SIGTERM}, codes
    finally:
        for p in started:
            p.stop()
        asyncio.run(drop_database(hub_db))
        asyncio.run(drop_database(realm_db))


#: The signing-key folder of the hub and of `pek dev`.
_KEYS: list[Path] = []
#: The viewer of the queries (names are for signed-in users): a demo user.
VIEWER = 1


def _post(url: str, query: str, variables: dict[str, Any] | None = None,
          viewer: int | None = VIEWER) -> dict[str, Any]:
    headers = {}
    if viewer is not None:
        token, _ = TokenSigner.from_settings(Settings(key_dir=str(_KEYS[-1]))).mint(viewer)
        headers["authorization"] = f"Bearer {token}"
    response = httpx.post(url, json={"query": query, "variables": variables or {}},
                          headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("name", sorted(CROSS_QUERIES))
def test_federated_answers_equal_all_in_one(deployments: dict[str, str], name: str) -> None:
    query, variables = CROSS_QUERIES[name], VARIABLES.get(name)
    federated = _post(deployments["router"], query, variables)
    all_in_one = _post(deployments["dev"], query, variables)
    assert "errors" not in federated, federated["errors"]
    assert federated == all_in_one


def test_cross_subgraph_answer_has_content(deployments: dict[str, str]) -> None:
    body = _post(deployments["router"], CROSS_QUERIES["groups_members_round_trip"])
    groups = [edge["node"] for edge in body["data"]["groups"]["edges"]]
    assert len(groups) == 4
    members = [m for g in groups for m in g["memberships"]]
    assert members, "demo groups have members"
    for member in members:
        assert member["user"]["name"], "user names come from the hub"
        assert member["user"]["memberships"], "and their memberships back from the realm"


def test_bad_input_is_a_clear_error_through_the_router(deployments: dict[str, str]) -> None:
    url = deployments["router"]
    bad_id = _post(url, '{ group(id: "Zm9yZ2Vk") { name } }')
    assert bad_id["data"] == {"group": None}
    assert "Invalid ID" in bad_id["errors"][0]["message"]
    assert bad_id["errors"][0]["path"] == ["group"]
    syntax = httpx.post(url, json={"query": "{ users { "}, timeout=10)
    assert syntax.status_code in (200, 400)
    assert "data" not in syntax.json() and "Syntax Error" in syntax.json()["errors"][0]["message"]
    unknown = _post(url, "{ nope }")
    assert "data" not in unknown and "nope" in unknown["errors"][0]["message"]


def test_readme_first_query_runs_on_pek_dev(deployments: dict[str, str]) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```graphql\n(.*?)```", readme, re.S)
    assert match, "README has a first query"
    body = _post(deployments["dev"], match.group(1))
    assert "errors" not in body, body["errors"]
    assert body["data"]["users"]["edges"] and body["data"]["groups"]["edges"]
