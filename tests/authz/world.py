"""The authorisation matrix's world, shared by the in-process test (``test_matrix.py``) and
the process test (``test_matrix_processes.py``): the matrix, who holds what, the seeding, the
operations and the check of one case.

Everything here talks to the system through two things only: SQLAlchemy sessions (to seed and
to take snapshots) and an :data:`Ask` callable (to run GraphQL as a viewer), so the same cases
run against objects in one event loop or against processes over HTTP.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pek.hub import models as hub_models
from pek.realm import models
from pek.schema import ids

MATRIX: dict[str, Any] = json.loads(
    (Path(__file__).parent / "matrix.json").read_text(encoding="utf-8"))
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
#: The matrix's operations that only read; every other operation is a write.
READS = frozenset({"view_group", "view_members", "view_scoreboard", "view_subgroup_scoreboard",
                   "view_full_profile"})
#: Writes answered by the hub (profiles, policies); the others are answered by a realm.
HUB_WRITES = frozenset({"grant_policy", "edit_own_profile", "edit_other_profile"})

#: Run GraphQL as a viewer (a hub-local user id, None: anonymous): (viewer, query, variables)
#: -> the response body.
Ask = Callable[[int | None, str, dict[str, Any]], Awaitable[dict[str, Any]]]
#: A snapshot of everything a write could change in one realm (and the hub), by realm id.
Snapshot = Callable[[str], Awaitable[Any]]


@dataclass
class RealmRefs:
    """The local ids of the seeded rows of one realm."""

    #: group name -> local id
    groups: dict[str, int] = field(default_factory=dict)
    #: (holder key, group name) -> local membership id
    memberships: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (group name, semester name) -> local guideline id
    guidelines: dict[tuple[str, str], int] = field(default_factory=dict)


def matrix_cases(keep: Callable[[str, str, bool], bool] = lambda role, op, expected: True
                 ) -> list[Any]:
    """``pytest.param(role, operation, realm index)`` for every applicable matrix entry that
    ``keep(role, operation, expected)`` accepts."""
    return [
        pytest.param(role, operation, index, id=f"{role}-{operation}-{REALMS[index]}")
        for role, row in MATRIX["expected"].items()
        for operation, outcomes in row.items()
        for index, outcome in enumerate(outcomes)
        if outcome is not None and keep(role, operation, outcome)
    ]


# --- seeding ----------------------------------------------------------------------------------


async def seed_hub_users(session: AsyncSession) -> None:
    """Users 1..USERS in the hub's database (user ``ADMIN`` is the top-level admin)."""
    for user_id in range(1, USERS + 1):
        session.add(hub_models.User(
            id=user_id, username=f"user{user_id}", first_name=f"U{user_id}",
            last_name="Test", email=f"user{user_id}@example.org",
            is_admin=user_id == ADMIN,
        ))


async def seed_realm(sessions: async_sessionmaker[AsyncSession], realm_id: str) -> RealmRefs:
    """The matrix's group tree, memberships, posts, semesters and scores in ``realm_id``
    (``sessions`` are bound to that realm)."""
    h = HOLDERS[realm_id]
    day = dt.date(2025, 9, 1)
    refs = RealmRefs()
    async with sessions.begin() as session:
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
            refs.memberships[(key, group.name)] = row.id

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
            membership_id=refs.memberships[("target", "Circle")], points=8))
        refs.groups = {g.name: g.id for g in (resort, other, circle, sub)}
        refs.guidelines = {key: g.id for key, g in guidelines.items()}
    return refs


# --- snapshots --------------------------------------------------------------------------------


async def snapshot(realm_sessions: async_sessionmaker[AsyncSession],
                   hub_sessions: async_sessionmaker[AsyncSession]) -> Any:
    """Everything a write could change in a realm (``realm_sessions`` are bound to it), and
    the hub's policies and nicknames."""
    async with realm_sessions() as session:
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
    async with hub_sessions() as session:
        policies = len(list(await session.scalars(select(hub_models.PolicyStatement.id)))), [
            (u.id, u.nickname) for u in await session.scalars(
                select(hub_models.User).order_by(hub_models.User.id))]
    return groups, members, posts, scores, policies


# --- operations -------------------------------------------------------------------------------


def gid(realm_id: str, type_name: str, local: int) -> str:
    return ids.encode(type_name, local, realm=realm_id)


async def perform(ask: Ask, refs: RealmRefs, viewer: int | None, operation: str, realm_id: str
                  ) -> tuple[bool, dict[str, Any], bool]:
    """Run ``operation`` in ``realm_id`` as ``viewer`` through ``ask`` (``refs``: that realm's
    seeded ids): (allowed, response, is a write)."""
    circle = gid(realm_id, "Group", refs.groups["Circle"])
    sub = gid(realm_id, "Group", refs.groups["Subgroup"])

    def membership(key: str) -> str:
        return gid(realm_id, "Membership", refs.memberships[(key, "Circle")])

    group_q = "query($id: ID!) { group(id: $id) { name %s } }"
    scores = 'scoreboard(semester: "2025-2026/1") { pointStatus }'
    if operation in ("view_group", "view_members", "view_scoreboard", "view_subgroup_scoreboard"):
        selection = {"view_group": "", "view_members": "memberships { id }",
                     "view_scoreboard": scores, "view_subgroup_scoreboard": scores}[operation]
        target = sub if operation == "view_subgroup_scoreboard" else circle
        body = await ask(viewer, group_q % selection, {"id": target})
        group = (body.get("data") or {}).get("group")
        if operation == "view_group":
            return group is not None, body, False
        field_name = "memberships" if operation == "view_members" else "scoreboard"
        return group is not None and group[field_name] is not None, body, False
    if operation == "view_full_profile":
        user = ids.encode("User", HOLDERS[realm_id]["target"])
        body = await ask(viewer, "query($id: ID!) { user(id: $id) { fullProfile "
                         "{ dormitory } } }", {"id": user})
        return body["data"]["user"]["fullProfile"] is not None, body, False
    if operation in ("edit_group", "edit_subgroup"):
        body = await ask(
            viewer, 'mutation($id: ID!) { updateGroup(id: $id, description: "changed") { id } }',
            {"id": sub if operation == "edit_subgroup" else circle})
    elif operation == "accept_membership":
        body = await ask(viewer, "mutation($id: ID!) { acceptMembership(membershipId: $id)"
                         " { status } }", {"id": membership("applicant")})
    elif operation == "set_status":
        body = await ask(viewer, "mutation($id: ID!) { setMembershipStatus(membershipId:"
                         " $id, status: FORMER) { status } }", {"id": membership("target")})
    elif operation in ("create_subgroup", "create_top_level_group"):
        body = await ask(
            viewer, "mutation($realm: String!, $parent: ID) { createGroup(realm: $realm, "
            'parentId: $parent, name: "Brand new", purpose: CIRCLE) { id owner { id } } }',
            {"realm": realm_id, "parent": circle if operation == "create_subgroup" else None})
    elif operation == "move_group_owner":
        body = await ask(viewer, "mutation($g: ID!, $u: ID!) { moveGroupOwner(groupId: "
                         "$g, userId: $u) { owner { id } } }",
                         {"g": sub, "u": ids.encode("User", 2)})
    elif operation == "move_group":
        body = await ask(viewer, "mutation($g: ID!, $p: ID) { moveGroup(id: $g, parentId: $p) "
                         "{ parent { id } } }",
                         {"g": sub, "p": gid(realm_id, "Group", refs.groups["Resort"])})
    elif operation == "grant_policy":
        body = await ask(viewer, "mutation($u: ID!) { grantPolicy(input: {name: \"x\", "
                         "actions: [VIEW_SCORES], grantee: USER, granteeUserId: $u, "
                         "realm: \"alpha\"}) { id grantedBy { id } } }",
                         {"u": ids.encode("User", 2)})
    elif operation in ("assign_post", "assign_leader_post"):
        body = await ask(
            viewer, "mutation($m: ID!, $k: PostKind!) { assignPost(membershipId: $m, kind: $k) "
            "{ posts { kind } } }", {"m": membership("target"),
                                     "k": "LEADER" if operation == "assign_leader_post"
                                     else "TREASURER"})
    elif operation in ("edit_own_profile", "edit_other_profile"):
        profile = None if operation == "edit_own_profile" else ids.encode(
            "User", HOLDERS[realm_id]["target"])
        body = await ask(viewer, "mutation($u: ID) { updateProfile(userId: $u, input: "
                         '{nickname: "Matrix"}) { nickname } }', {"u": profile})
    elif operation == "edit_scores":
        guideline = gid(realm_id, "Guideline", refs.guidelines[("Circle", SPRING)])
        body = await ask(
            viewer, "mutation($g: ID!, $s: String!, $p: [PointsInput!]!) { setPoints(groupId: "
            "$g, semester: $s, points: $p) { pointStatus rows { total } } }",
            {"g": circle, "s": SPRING, "p": [{
                "membershipId": membership("target"), "guidelineId": guideline, "points": 6}]})
    elif operation == "judge_evaluation":
        body = await ask(
            viewer, "mutation($g: ID!, $s: String!) { judgeEvaluation(groupId: $g, semester: "
            "$s, points: ACCEPT) { pointStatus judgedBy { id } } }", {"g": circle, "s": SEMESTER})
    elif operation == "set_season":
        body = await ask(
            viewer, "mutation($r: String!, $s: String!) { setSeason(realm: $r, semester: $s, "
            "season: JUDGING) { season } }", {"r": realm_id, "s": SPRING})
    elif operation == "add_subgroup_guideline":
        body = await ask(
            viewer, "mutation($g: ID!, $s: String!) { addGuideline(groupId: $g, semester: $s, "
            'name: "Projekt", category: WORK, maxPerMember: 5) { id } }', {"g": sub, "s": SPRING})
    else:
        raise AssertionError(operation)
    return not body.get("errors"), body, True


def error_codes(body: dict[str, Any]) -> set[Any]:
    return {e.get("extensions", {}).get("code") for e in body.get("errors") or []}


async def check_case(ask: Ask, refs: RealmRefs, take_snapshot: Snapshot, role: str,
                     operation: str, realm_index: int) -> None:
    """One matrix case: the outcome must be the matrix's; a denied write must answer
    FORBIDDEN/UNAUTHENTICATED and leave the data unchanged, an allowed one must change it."""
    expected = MATRIX["expected"][role][operation][realm_index]
    viewer = MATRIX["roles"][role]
    realm_id = REALMS[realm_index]
    before = await take_snapshot(realm_id)
    allowed, body, write = await perform(ask, refs, viewer, operation, realm_id)
    assert write is (operation not in READS), operation
    assert allowed is expected, body
    if write and not allowed:
        codes = error_codes(body)
        assert codes <= {"FORBIDDEN", "UNAUTHENTICATED"} and codes, body
        assert await take_snapshot(realm_id) == before, "a denied write changed data"
    if write and allowed:
        assert await take_snapshot(realm_id) != before, "an allowed write changed nothing"
