"""The authorisation matrix (``matrix.json``) generates these tests: every role x operation x
realm is run for real (hub and two realms in-process behind the gateway and the realm-routing
layer, hub tokens minted by ``TokenSigner``) and must be allowed or denied as the file says.
A denied write must answer FORBIDDEN/UNAUTHENTICATED and leave the data unchanged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
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

MATRIX = json.loads((Path(__file__).parent / "matrix.json").read_text(encoding="utf-8"))
REALMS = ("alpha", "beta")
SEMESTER = "2025-2026/1"
SPRING = "2025-2026/2"
#: Who holds what in each realm (hub-local user ids); group ids are the same in both.
HOLDERS = {
    "alpha": {"member": 3, "leader": 4, "assistant": 5, "helper": 6, "resort_leader": 7,
              "other_resort_leader": 8, "god": 9, "applicant": 10, "target": 12},
    "beta": {"member": 13, "leader": 11, "assistant": 17, "helper": 18, "resort_leader": 19,
             "other_resort_leader": 20, "god": 14, "applicant": 15, "target": 16},
}
ADMIN = 1
USERS = 20


@dataclass
class World:
    hub: HubSubgraph
    realm: RealmSubgraph
    gateway: Gateway
    settings: Settings
    #: "<realm>:<group name>" -> local id.
    groups: dict[str, int]

    async def ask(self, viewer: int | None, query: str, variables: dict[str, Any]
                  ) -> dict[str, Any]:
        headers = {}
        if viewer is not None:
            token, _ = TokenSigner.from_settings(self.settings).mint(viewer)
            headers["authorization"] = f"Bearer {token}"
        return await self.gateway.execute(query, variables, headers=headers)


async def _seed_realm(realm: RealmSubgraph, realm_id: str) -> tuple[dict[str, int],
                                                                     dict[tuple[str, str], int]]:
    h = HOLDERS[realm_id]
    day = dt.date(2025, 9, 1)
    memberships: dict[tuple[str, str], int] = {}
    async with realm.sessions_of(realm_id).begin() as session:
        # The autumn semester is being judged; the spring one takes submissions.
        autumn = models.Semester(name=SEMESTER, starts_on=day, ends_on=dt.date(2026, 1, 31),
                                 season=models.Season.JUDGING)
        spring = models.Semester(name=SPRING, starts_on=dt.date(2026, 2, 1),
                                 ends_on=dt.date(2026, 6, 30), season=models.Season.SUBMISSION)
        session.add_all([autumn, spring])
        resort = models.Group(name="Resort", purpose=models.GroupPurpose.RESORT)
        other = models.Group(name="Other resort", purpose=models.GroupPurpose.RESORT)
        session.add_all([resort, other])
        await session.flush()
        circle = models.Group(name="Circle", purpose=models.GroupPurpose.CIRCLE,
                              parent_id=resort.id)
        session.add(circle)
        await session.flush()
        sub = models.Group(name="Subgroup", purpose=models.GroupPurpose.PROJECT,
                           parent_id=circle.id, owner_id=h["god"])
        session.add(sub)
        await session.flush()

        async def member(group: models.Group, key: str, status: models.MembershipStatus,
                         post: models.PostKind | None = None) -> None:
            row = models.Membership(group_id=group.id, user_id=h[key], joined_at=day,
                                    status=status)
            session.add(row)
            await session.flush()
            session.add(models.MembershipStatusPeriod(membership_id=row.id, status=status,
                                                      since=day))
            if post is not None:
                session.add(models.Post(membership_id=row.id, kind=post, since=day))
            memberships[(key, group.name)] = row.id

        active, P = models.MembershipStatus.ACTIVE, models.PostKind
        await member(circle, "member", active)
        await member(circle, "leader", active, P.LEADER)
        await member(circle, "assistant", active, P.LEADER_ASSISTANT)
        await member(circle, "helper", active, P.EVALUATION_HELPER)
        await member(circle, "target", active)
        await member(circle, "applicant", models.MembershipStatus.NEWBIE)
        await member(resort, "resort_leader", active, P.LEADER)
        await member(other, "other_resort_leader", active, P.LEADER)
        # The circle's autumn evaluation is submitted (PENDING points for the target); each
        # group scores against one guideline in each semester.
        work = models.GuidelineCategory.WORK
        guidelines = {
            (group.name, semester.name): models.Guideline(
                group_id=group.id, semester_id=semester.id, name="Work", category=work,
                max_per_member=10)
            for group in (circle, sub) for semester in (autumn, spring)
        }
        session.add_all(guidelines.values())
        evaluation = models.Evaluation(
            group_id=circle.id, semester_id=autumn.id, point_status=models.ReviewStatus.PENDING,
            entry_status=models.ReviewStatus.NOT_SUBMITTED, version=1)
        session.add(evaluation)
        await session.flush()
        session.add(models.PointEntry(
            evaluation_id=evaluation.id, guideline_id=guidelines[("Circle", SEMESTER)].id,
            membership_id=memberships[("target", "Circle")], points=8))
        groups = {"resort": resort.id, "circle": circle.id, "sub": sub.id}
    return groups, memberships


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("authz")
    url = f"sqlite+aiosqlite:///{folder / 'world.sqlite3'}"
    settings = Settings(hub_database_url=url, realm_database_url=url, realm_ids="alpha,beta",
                        key_dir=str(folder / "keys"))

    async def build() -> None:
        hub = HubSubgraph(settings, demo_realms=[])
        await hub.start()
        async with hub.sessionmaker.begin() as session:
            for user_id in range(1, USERS + 1):
                session.add(hub_models.User(
                    id=user_id, username=f"user{user_id}", first_name=f"U{user_id}",
                    last_name="Test", email=f"user{user_id}@example.org",
                    is_admin=user_id == ADMIN,
                ))
            for realm_id in REALMS:
                session.add(hub_models.Realm(id=realm_id, name=realm_id,
                                             url=f"in-process://{realm_id}"))
        realm = RealmSubgraph(settings, index_sink=InProcessIndexSink(hub),
                              policy_source=InProcessPolicySource(hub))
        await realm.start()
        for realm_id in REALMS:
            await _seed_realm(realm, realm_id)
        await realm.aclose()
        await hub.aclose()

    asyncio.run(build())
    return folder


@pytest.fixture
async def world(template: Path, tmp_path: Path) -> AsyncIterator[World]:
    shutil.copy(template / "world.sqlite3", tmp_path / "world.sqlite3")
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
    groups: dict[str, int] = {}
    for realm_id in REALMS:
        async with realm.sessions_of(realm_id)() as session:
            for row in await session.scalars(select(models.Group)):
                groups[f"{realm_id}:{row.name}"] = row.id
    try:
        yield World(hub, realm, Gateway(supergraph, layer), settings, groups)
    finally:
        await layer.aclose()
        await realm.aclose()
        await hub.aclose()


async def _snapshot(world: World, realm_id: str) -> Any:
    """Everything a write could change in a realm, and the hub's policies."""
    async with world.realm.sessions_of(realm_id)() as session:
        groups = [(g.id, g.name, g.description, g.owner_id, g.parent_id)
                  for g in await session.scalars(select(models.Group).order_by(models.Group.id))]
        members = [(m.id, m.status) for m in
                   await session.scalars(select(models.Membership).order_by(models.Membership.id))]
        posts = len(list(await session.scalars(select(models.Post.id))))
        scores = [
            [(e.point_status, e.entry_status, e.version, e.judged_by)
             for e in await session.scalars(select(models.Evaluation))],
            [(p.membership_id, p.guideline_id, p.points)
             for p in await session.scalars(select(models.PointEntry))],
            [(g.group_id, g.name) for g in await session.scalars(select(models.Guideline))],
            [(t.name, t.season) for t in await session.scalars(select(models.Semester))],
        ]
    async with world.hub.sessionmaker() as session:
        policies = len(list(await session.scalars(select(hub_models.PolicyStatement.id)))), [
            (u.id, u.nickname) for u in await session.scalars(
                select(hub_models.User).order_by(hub_models.User.id))]
    return groups, members, posts, scores, policies


def _gid(realm_id: str, type_name: str, local: int) -> str:
    return ids.encode(type_name, local, realm=realm_id)


async def _membership_id(world: World, realm_id: str, key: str) -> str:
    async with world.realm.sessions_of(realm_id)() as session:
        local = await session.scalar(select(models.Membership.id).where(
            models.Membership.user_id == HOLDERS[realm_id][key]))
    assert local is not None
    return _gid(realm_id, "Membership", local)


async def _guideline_id(world: World, realm_id: str, group: str, semester: str) -> str:
    G, S = models.Guideline, models.Semester
    async with world.realm.sessions_of(realm_id)() as session:
        local = await session.scalar(
            select(G.id).join(S, S.id == G.semester_id)
            .where(G.group_id == world.groups[f"{realm_id}:{group}"], S.name == semester))
    assert local is not None
    return _gid(realm_id, "Guideline", local)


async def perform(world: World, viewer: int | None, operation: str, realm_id: str
                  ) -> tuple[bool, dict[str, Any], bool]:
    """Run ``operation`` in ``realm_id`` as ``viewer``: (allowed, response, is a write)."""
    circle = _gid(realm_id, "Group", world.groups[f"{realm_id}:Circle"])
    sub = _gid(realm_id, "Group", world.groups[f"{realm_id}:Subgroup"])
    group_q = "query($id: ID!) { group(id: $id) { name %s } }"
    scores = 'scoreboard(semester: "2025-2026/1") { pointStatus }'
    if operation in ("view_group", "view_members", "view_scoreboard", "view_subgroup_scoreboard"):
        selection = {"view_group": "", "view_members": "memberships { id }",
                     "view_scoreboard": scores, "view_subgroup_scoreboard": scores}[operation]
        target = sub if operation == "view_subgroup_scoreboard" else circle
        body = await world.ask(viewer, group_q % selection, {"id": target})
        group = (body.get("data") or {}).get("group")
        if operation == "view_group":
            return group is not None, body, False
        field = "memberships" if operation == "view_members" else "scoreboard"
        return group is not None and group[field] is not None, body, False
    if operation == "view_full_profile":
        user = ids.encode("User", HOLDERS[realm_id]["target"])
        body = await world.ask(viewer, "query($id: ID!) { user(id: $id) { fullProfile "
                               "{ dormitory } } }", {"id": user})
        return body["data"]["user"]["fullProfile"] is not None, body, False
    if operation in ("edit_group", "edit_subgroup"):
        body = await world.ask(
            viewer, 'mutation($id: ID!) { updateGroup(id: $id, description: "changed") { id } }',
            {"id": sub if operation == "edit_subgroup" else circle})
    elif operation == "accept_membership":
        body = await world.ask(viewer, "mutation($id: ID!) { acceptMembership(membershipId: $id)"
                               " { status } }", {"id": await _membership_id(world, realm_id,
                                                                            "applicant")})
    elif operation == "set_status":
        body = await world.ask(viewer, "mutation($id: ID!) { setMembershipStatus(membershipId:"
                               " $id, status: FORMER) { status } }",
                               {"id": await _membership_id(world, realm_id, "target")})
    elif operation in ("create_subgroup", "create_top_level_group"):
        body = await world.ask(
            viewer, "mutation($realm: String!, $parent: ID) { createGroup(realm: $realm, "
            'parentId: $parent, name: "Brand new", purpose: CIRCLE) { id owner { id } } }',
            {"realm": realm_id, "parent": circle if operation == "create_subgroup" else None})
    elif operation == "move_group_owner":
        body = await world.ask(viewer, "mutation($g: ID!, $u: ID!) { moveGroupOwner(groupId: "
                               "$g, userId: $u) { owner { id } } }",
                               {"g": sub, "u": ids.encode("User", 2)})
    elif operation == "grant_policy":
        body = await world.ask(viewer, "mutation($u: ID!) { grantPolicy(input: {name: \"x\", "
                               "actions: [VIEW_SCORES], grantee: USER, granteeUserId: $u, "
                               "realm: \"alpha\"}) { id grantedBy { id } } }",
                               {"u": ids.encode("User", 2)})
    elif operation in ("assign_post", "assign_leader_post"):
        body = await world.ask(
            viewer, "mutation($m: ID!, $k: PostKind!) { assignPost(membershipId: $m, kind: $k) "
            "{ posts { kind } } }", {"m": await _membership_id(world, realm_id, "target"),
                                     "k": "LEADER" if operation == "assign_leader_post"
                                     else "TREASURER"})
    elif operation in ("edit_own_profile", "edit_other_profile"):
        target = None if operation == "edit_own_profile" else ids.encode(
            "User", HOLDERS[realm_id]["target"])
        body = await world.ask(viewer, "mutation($u: ID) { updateProfile(userId: $u, input: "
                               '{nickname: "Matrix"}) { nickname } }', {"u": target})
    elif operation == "edit_scores":
        guideline = await _guideline_id(world, realm_id, "Circle", SPRING)
        body = await world.ask(
            viewer, "mutation($g: ID!, $s: String!, $p: [PointsInput!]!) { setPoints(groupId: "
            "$g, semester: $s, points: $p) { pointStatus rows { total } } }",
            {"g": circle, "s": SPRING, "p": [{
                "membershipId": await _membership_id(world, realm_id, "target"),
                "guidelineId": guideline, "points": 6}]})
    elif operation == "judge_evaluation":
        body = await world.ask(
            viewer, "mutation($g: ID!, $s: String!) { judgeEvaluation(groupId: $g, semester: "
            "$s, points: ACCEPT) { pointStatus judgedBy { id } } }", {"g": circle, "s": SEMESTER})
    elif operation == "set_season":
        body = await world.ask(
            viewer, "mutation($r: String!, $s: String!) { setSeason(realm: $r, semester: $s, "
            "season: JUDGING) { season } }", {"r": realm_id, "s": SPRING})
    elif operation == "add_subgroup_guideline":
        body = await world.ask(
            viewer, "mutation($g: ID!, $s: String!) { addGuideline(groupId: $g, semester: $s, "
            'name: "Projekt", category: WORK, maxPerMember: 5) { id } }', {"g": sub, "s": SPRING})
    else:
        raise AssertionError(operation)
    return not body.get("errors"), body, True


CASES = [
    pytest.param(role, operation, index, id=f"{role}-{operation}-{REALMS[index]}")
    for role, row in MATRIX["expected"].items()
    for operation, outcomes in row.items()
    for index, outcome in enumerate(outcomes)
    if outcome is not None
]


@pytest.mark.parametrize(("role", "operation", "realm_index"), CASES)
async def test_matrix(world: World, role: str, operation: str, realm_index: int) -> None:
    expected = MATRIX["expected"][role][operation][realm_index]
    viewer = MATRIX["roles"][role]
    realm_id = REALMS[realm_index]
    before = await _snapshot(world, realm_id)
    allowed, body, write = await perform(world, viewer, operation, realm_id)
    assert allowed is expected, body
    if write and not allowed:
        codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
        assert codes <= {"FORBIDDEN", "UNAUTHENTICATED"} and codes, body
        assert await _snapshot(world, realm_id) == before, "a denied write changed data"
    if write and allowed:
        assert await _snapshot(world, realm_id) != before, "an allowed write changed nothing"


async def test_creator_gets_god_and_the_grant_is_recorded(world: World) -> None:
    """Delegation: the creator of a subgroup owns it (GOD: may edit it); the parent's
    leader keeps only moveGroupOwner on it (escalation)."""
    leader = HOLDERS["alpha"]["leader"]
    circle = _gid("alpha", "Group", world.groups["alpha:Circle"])
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
    circle = {"id": _gid("alpha", "Group", world.groups["alpha:Circle"])}
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
