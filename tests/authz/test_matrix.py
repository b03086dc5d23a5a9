"""The authorisation matrix (``matrix.json``) generates these tests: every role x operation x
realm is run for real (hub and two realms in-process behind the gateway and the realm-routing
layer, hub tokens minted by ``TokenSigner``) and must be allowed or denied as the file says.
A denied write must answer FORBIDDEN/UNAUTHENTICATED and leave the data unchanged.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from pek.hub import models as hub_models
from pek.hub.service import HubSubgraph
from pek.realm import models
from pek.realm.index import InProcessIndexSink
from pek.realm.policy_source import InProcessPolicySource
from pek.realm.service import RealmSubgraph
from pek.router.composition import SubgraphDefinition, compose
from pek.router.gateway import Gateway
from pek.router.realms.wiring import realm_routing_in_process
from pek.router.transport import InProcessTransport
from pek.schema import ids
from pek.schema.tokens import TokenSigner
from pek.settings import Settings
from tests.authz.world import (
    ADMIN,
    HOLDERS,
    REALMS,
    RealmRefs,
    check_case,
    gid,
    matrix_cases,
    seed_hub_users,
    seed_realm,
    snapshot,
)


@dataclass
class World:
    hub: HubSubgraph
    realm: RealmSubgraph
    gateway: Gateway
    settings: Settings
    #: realm id -> the local ids of its seeded rows.
    refs: dict[str, RealmRefs]

    async def ask(self, viewer: int | None, query: str, variables: dict[str, Any]
                  ) -> dict[str, Any]:
        headers = {}
        if viewer is not None:
            token, _ = TokenSigner.from_settings(self.settings).mint(viewer)
            headers["authorization"] = f"Bearer {token}"
        return await self.gateway.execute(query, variables, headers=headers)

    async def snapshot(self, realm_id: str) -> Any:
        return await snapshot(self.realm.sessions_of(realm_id), self.hub.sessionmaker)


@dataclass
class Template:
    folder: Path
    refs: dict[str, RealmRefs]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    folder = tmp_path_factory.mktemp("authz")
    url = f"sqlite+aiosqlite:///{folder / 'world.sqlite3'}"
    settings = Settings(hub_database_url=url, realm_database_url=url, realm_ids="alpha,beta",
                        key_dir=str(folder / "keys"))

    async def build() -> dict[str, RealmRefs]:
        hub = HubSubgraph(settings, demo_realms=[])
        await hub.start()
        async with hub.sessionmaker.begin() as session:
            await seed_hub_users(session)
            for realm_id in REALMS:
                session.add(hub_models.Realm(id=realm_id, name=realm_id,
                                             url=f"in-process://{realm_id}"))
        realm = RealmSubgraph(settings, index_sink=InProcessIndexSink(hub),
                              policy_source=InProcessPolicySource(hub))
        await realm.start()
        refs = {realm_id: await seed_realm(realm.sessions_of(realm_id), realm_id)
                for realm_id in REALMS}
        await realm.aclose()
        await hub.aclose()
        return refs

    return Template(folder, asyncio.run(build()))


@pytest.fixture
async def world(template: Template, tmp_path: Path) -> AsyncIterator[World]:
    shutil.copy(template.folder / "world.sqlite3", tmp_path / "world.sqlite3")
    url = f"sqlite+aiosqlite:///{tmp_path / 'world.sqlite3'}"
    settings = Settings(hub_database_url=url, realm_database_url=url, realm_ids="alpha,beta",
                        key_dir=str(tmp_path / "keys"))
    hub = HubSubgraph(settings, demo_realms=[])
    realm = RealmSubgraph(settings, index_sink=InProcessIndexSink(hub),
                          policy_source=InProcessPolicySource(hub))
    supergraph = compose([
        SubgraphDefinition("hub", "in-process://hub", hub.sdl()),
        SubgraphDefinition("realm", "in-process://realm", realm.sdl()),
    ])
    layer = realm_routing_in_process(
        InProcessTransport({"hub": hub}), supergraph, settings,
        read_registry=hub.registry_snapshot, read_index=hub.read_federation_index,
        local=realm.for_realm,
    )
    await hub.start()
    await realm.start()
    await layer.start()
    # The drainer delivers the index (and the groups) in the background: wait for it, so
    # that the hub knows who shares which group.
    for _ in range(200):
        if await realm.pending_index_updates() == 0:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the federation index was not delivered")
    try:
        yield World(hub, realm, Gateway(supergraph, layer), settings, template.refs)
    finally:
        await layer.aclose()
        await realm.aclose()
        await hub.aclose()


@pytest.mark.parametrize(("role", "operation", "realm_index"), matrix_cases())
async def test_matrix(world: World, role: str, operation: str, realm_index: int) -> None:
    await check_case(world.ask, world.refs[REALMS[realm_index]], world.snapshot, role,
                     operation, realm_index)


async def test_creator_gets_god_and_the_grant_is_recorded(world: World) -> None:
    """Delegation: the creator of a subgroup owns it (GOD: may edit it); the parent's
    leader keeps only moveGroupOwner on it (escalation)."""
    leader = HOLDERS["alpha"]["leader"]
    circle = gid("alpha", "Group", world.refs["alpha"].groups["Circle"])
    created = await world.ask(
        HOLDERS["alpha"]["member"], "mutation($p: ID!) { createGroup(realm: \"alpha\", "
        'parentId: $p, name: "Nope", purpose: CIRCLE) { id } }', {"p": circle})
    assert created["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    created = await world.ask(
        leader, "mutation($p: ID!) { createGroup(realm: \"alpha\", parentId: $p, "
        'name: "Team", purpose: PROJECT) { id owner { id } } }', {"p": circle})
    new_id = created["data"]["createGroup"]["id"]
    assert created["data"]["createGroup"]["owner"]["id"] == ids.encode("User", leader)
    edit = await world.ask(leader, 'mutation($id: ID!) { updateGroup(id: $id, description: '
                           '"mine") { description } }', {"id": new_id})
    assert edit["data"]["updateGroup"]["description"] == "mine"
    async with world.realm.sessions_of("alpha")() as session:
        grants = list(await session.scalars(select(models.GroupGrant)))
    assert [(g.kind, g.user_id, g.granted_by) for g in grants] == [("OWNER", leader, leader)]


async def test_revoking_a_policy_takes_effect_in_the_realm(world: World) -> None:
    """Policies are the hub's: revoking the public directory hides groups from anonymous
    callers in the realm (after its cache), and the audit trail records who did it."""
    q = "query($id: ID!) { group(id: $id) { name } }"
    circle = {"id": gid("alpha", "Group", world.refs["alpha"].groups["Circle"])}
    assert (await world.ask(None, q, circle))["data"]["group"] is not None
    listed = await world.ask(ADMIN, '{ policies(realm: "alpha") { id name } }', {})
    public = next(p for p in listed["data"]["policies"] if p["name"] == "Public group directory")
    revoked = await world.ask(ADMIN, 'mutation($id: ID!) { revokePolicy(id: $id, reason: '
                              '"members only") { revokedAt revokedBy { id } } }',
                              {"id": public["id"]})
    assert revoked["data"]["revokePolicy"]["revokedBy"]["id"] == ids.encode("User", ADMIN)
    world.realm.policies.invalidate()
    assert (await world.ask(None, q, circle))["data"]["group"] is None
    assert (await world.ask(2, q, circle))["data"]["group"] is not None
    events = await world.ask(ADMIN, "{ policyEvents { kind reason actor { id } } }", {})
    assert events["data"]["policyEvents"][-1] == {
        "kind": "REVOKE", "reason": "members only", "actor": {"id": ids.encode("User", ADMIN)}}


async def test_privacy_still_filters_a_granted_full_profile(world: World) -> None:
    target = HOLDERS["alpha"]["target"]
    async with world.hub.sessionmaker.begin() as session:
        await session.execute(update(hub_models.User).where(hub_models.User.id == target)
                              .values(cell_phone="+36 1 234"))
        session.add(hub_models.PrivacySetting(user_id=target,
                                              attribute=hub_models.PrivacyAttribute.EMAIL,
                                              visible=True))
    q = "query($id: ID!) { user(id: $id) { fullProfile { email cellPhone } } }"
    body = await world.ask(HOLDERS["alpha"]["member"], q, {"id": ids.encode("User", target)})
    assert body["data"]["user"]["fullProfile"] == {
        "email": f"user{target}@example.org", "cellPhone": None}
