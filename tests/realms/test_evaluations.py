"""The evaluation workflow, end to end on a realm over HTTP (ASGI): seasons, guidelines,
points, entry requests, submitting, withdrawing, judging, versions; who may do each, clear
errors, and nothing changed by a refused or failed mutation."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from pek.realm import models
from pek.realm.canary import Canary, seed_canary
from pek.realm.service import RealmSubgraph
from pek.schema import ids
from pek.settings import Settings
from tests.realms.conftest import codes, post_graphql, realm_settings, viewer_headers

SEMESTER = "2025-2026/1"
LEADER, MEMBER, APPLICANT, RESORT_LEADER = 1, 2, 3, 5
BOARD = """pointStatus entryStatus explanation version submittedBy { id } judgedBy { id }
    guidelines { id name } rows { user { id } work responsibility total points { points } }
    entryRequests { user { id } card justification }
    history { version pointStatus entryStatus explanation judgedBy { id } archivedBy { id }
              totals { user { id } total } }"""
SET_POINTS = """mutation($g: ID!, $s: String!, $p: [PointsInput!]!) {
    setPoints(groupId: $g, semester: $s, points: $p) { """ + BOARD + " } }"
SET_ENTRIES = """mutation($g: ID!, $s: String!, $r: [EntryRequestInput!]!) {
    setEntryRequests(groupId: $g, semester: $s, requests: $r) { """ + BOARD + " } }"
ADD_GUIDELINE = """mutation($g: ID!, $s: String!, $n: String!, $c: GuidelineCategory!,
    $m: Int!) { addGuideline(groupId: $g, semester: $s, name: $n, category: $c,
    maxPerMember: $m) { id name category maxPerMember } }"""
SUBMIT = "mutation($g: ID!, $s: String!) { submitEvaluation(groupId: $g, semester: $s) { %s } }"
WITHDRAW = ("mutation($g: ID!, $s: String!) { withdrawEvaluation(groupId: $g, semester: $s) "
            "{ %s } }")
JUDGE = """mutation($g: ID!, $s: String!, $p: Verdict, $e: Verdict, $x: String) {
    judgeEvaluation(groupId: $g, semester: $s, points: $p, entries: $e, explanation: $x)
    { """ + BOARD + " } }"
SEASON = """mutation($s: String!, $season: Season!) {
    setSeason(realm: "alpha", semester: $s, season: $season) { name season } }"""


class World:
    def __init__(self, service: RealmSubgraph, client: httpx.AsyncClient, canary: Canary,
                 settings: Settings) -> None:
        self.service, self.client, self.canary, self.settings = service, client, canary, settings
        self.circle = canary.ids["Group"][1]
        self.resort = canary.ids["Group"][0]
        self.guideline = canary.ids["Guideline"][0]
        leader, member, applicant = canary.ids["Membership"]
        self.memberships = {LEADER: leader, MEMBER: member, APPLICANT: applicant}

    async def ask(self, query: str, variables: dict[str, Any], as_user: int | None = None,
                  realm: str = "alpha") -> dict[str, Any]:
        headers = viewer_headers(self.settings, as_user) if as_user is not None else {}
        return await post_graphql(self.client, f"/realms/{realm}/graphql", query, variables,
                                  headers)

    async def do(self, query: str, variables: dict[str, Any], as_user: int) -> dict[str, Any]:
        """A mutation that must succeed: its one field's value."""
        answer = await self.ask(query, variables, as_user)
        assert "errors" not in answer, answer
        value: dict[str, Any] = next(iter(answer["data"].values()))
        return value

    async def refused(self, query: str, variables: dict[str, Any], as_user: int | None,
                      code: str) -> str:
        """A mutation that must be refused with ``code`` and change nothing: its message."""
        before = await self.state()
        answer = await self.ask(query, variables, as_user)
        assert codes(answer) == [code], answer
        assert await self.state() == before, "a refused mutation changed data"
        message: str = answer["errors"][0]["message"]
        return message

    async def state(self) -> Any:
        """Everything the workflow may write in realm alpha."""
        m = models
        async with self.service.sessions_of("alpha")() as session:
            def rows(model: Any) -> Any:
                return session.scalars(select(model).order_by(model.id))

            evaluations = [(e.point_status, e.entry_status, e.explanation, e.version,
                            e.submitted_by, e.judged_by) for e in await rows(m.Evaluation)]
            points = [(p.membership_id, p.guideline_id, p.points)
                      for p in await rows(m.PointEntry)]
            entries = [(e.membership_id, e.card, e.justification)
                       for e in await rows(m.EntryRequest)]
            guidelines = [(g.name, g.max_per_member) for g in await rows(m.Guideline)]
            versions = [(v.version, v.snapshot) for v in await rows(m.EvaluationVersion)]
            seasons = [(s.name, s.season) for s in await rows(m.Semester)]
        return evaluations, points, entries, guidelines, versions, seasons


def points(membership: str, guideline: str, value: int) -> dict[str, Any]:
    return {"membershipId": membership, "guidelineId": guideline, "points": value}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    settings = realm_settings(
        tmp_path, realm_ids="alpha,beta",
        realm_database_url=f"sqlite+aiosqlite:///{tmp_path / 'realm.sqlite3'}",
    )
    service = RealmSubgraph(settings)
    await service.start()
    day = dt.date(2025, 9, 1)
    async with service.sessions_of("alpha").begin() as session:
        canary = await seed_canary(session, "alpha", user_ids=(LEADER, MEMBER, APPLICANT))
        # The resort (the circle's parent, top level) is led by RESORT_LEADER, who is on the
        # leaders' council for it.
        resort_id = canary.local_ids["Group"][0]
        row = models.Membership(group_id=resort_id, user_id=RESORT_LEADER, joined_at=day,
                                status=models.MembershipStatus.ACTIVE)
        session.add(row)
        await session.flush()
        session.add(models.Post(membership_id=row.id, kind=models.PostKind.LEADER, since=day))
    async with service.sessions_of("beta").begin() as session:
        await seed_canary(session, "beta", user_ids=(LEADER, MEMBER, APPLICANT))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.asgi_app()), base_url="http://realm"
    ) as client:
        yield World(service, client, canary, settings)
    await service.aclose()


async def test_a_semester_of_evaluation_from_submission_to_a_second_version(
    world: World,
) -> None:
    w, term = world, {"g": world.circle, "s": SEMESTER}
    leader_m, member_m = w.memberships[LEADER], w.memberships[MEMBER]

    # The canary's evaluation is submitted (PENDING) and the semester is in JUDGING.
    message = await w.refused(SET_POINTS, {**term, "p": [points(member_m, w.guideline, 3)]},
                              LEADER, "FAILED_PRECONDITION")
    assert "only in the SUBMISSION season" in message
    # Seasons belong to the council: the circle's leader is not on it.
    await w.refused(SEASON, {"s": SEMESTER, "season": "SUBMISSION"}, LEADER, "FORBIDDEN")
    await w.refused(SEASON, {"s": SEMESTER, "season": "SUBMISSION"}, None, "UNAUTHENTICATED")
    assert await w.do(SEASON, {"s": SEMESTER, "season": "SUBMISSION"}, RESORT_LEADER) == {
        "name": SEMESTER, "season": "SUBMISSION"}

    # Submitted points are withdrawn before they change; a member may not withdraw them.
    message = await w.refused(SET_POINTS, {**term, "p": [points(member_m, w.guideline, 3)]},
                              LEADER, "FAILED_PRECONDITION")
    assert "withdraw them first" in message
    await w.refused(WITHDRAW % "version", term, MEMBER, "FORBIDDEN")
    board = await w.do(WITHDRAW % "pointStatus entryStatus", term, LEADER)
    assert board == {"pointStatus": "NOT_SUBMITTED", "entryStatus": "NOT_SUBMITTED"}

    # A new RESPONSIBILITY guideline, then points against both guidelines.
    added = await w.do(ADD_GUIDELINE, {**term, "n": "Vezetés", "c": "RESPONSIBILITY", "m": 20},
                       LEADER)
    assert added["category"] == "RESPONSIBILITY" and added["maxPerMember"] == 20
    await w.refused(ADD_GUIDELINE, {**term, "n": "Vezetés", "c": "WORK", "m": 5}, LEADER,
                    "BAD_USER_INPUT")
    await w.refused(ADD_GUIDELINE, {**term, "n": "Sok", "c": "WORK", "m": 51}, LEADER,
                    "BAD_USER_INPUT")
    lead = added["id"]
    board = await w.do(SET_POINTS, {**term, "p": [
        points(member_m, w.guideline, 10), points(member_m, lead, 15),
        points(leader_m, w.guideline, 2),
    ]}, LEADER)
    rows = {r["user"]["id"]: r for r in board["rows"]}
    member_row = rows[ids.encode("User", MEMBER)]
    assert (member_row["work"], member_row["responsibility"], member_row["total"]) == (10, 15, 25)
    # The leader's own 7 (seeded) became 2: a raw total of 2 counts 0.
    assert rows[ids.encode("User", LEADER)]["total"] == 0
    assert board["pointStatus"] == "NOT_SUBMITTED" and board["version"] == 1

    # Bad lines are refused whole, naming the problem, and change nothing.
    for line, words in (
        (points(member_m, w.guideline, 11), "must be 0-10"),
        (points(member_m, w.guideline, -1), "must be 0-10"),
        (points(w.memberships[APPLICANT], w.guideline, 1), "NEWBIE"),
        (points(member_m, w.circle, 1), "Invalid ID"),
        (points(member_m, ids.encode("Guideline", 1, realm="beta"), 1), "Invalid ID"),
    ):
        message = await w.refused(SET_POINTS, {**term, "p": [points(member_m, lead, 1), line]},
                                  LEADER, "BAD_USER_INPUT")
        assert words in message, message

    # Entry requests: one per active member, with a justification.
    await w.refused(SET_ENTRIES, {**term, "r": [
        {"membershipId": member_m, "card": "KDO", "justification": "  "}]}, LEADER,
        "BAD_USER_INPUT")
    board = await w.do(SET_ENTRIES, {**term, "r": [
        {"membershipId": member_m, "card": "KDO", "justification": "Egész félévben dolgozott"}]},
        LEADER)
    assert board["entryRequests"] == [{"user": {"id": ids.encode("User", MEMBER)},
                                       "card": "KDO",
                                       "justification": "Egész félévben dolgozott"}]

    # Submitting makes both parts PENDING; judging waits for the JUDGING season.
    board = await w.do(SUBMIT % BOARD, term, LEADER)
    assert (board["pointStatus"], board["entryStatus"]) == ("PENDING", "PENDING")
    assert board["submittedBy"] == {"id": ids.encode("User", LEADER)}
    judge = {**term, "p": "ACCEPT", "e": "ACCEPT", "x": None}
    message = await w.refused(JUDGE, judge, RESORT_LEADER, "FAILED_PRECONDITION")
    assert "only in the JUDGING season" in message
    await w.do(SEASON, {"s": SEMESTER, "season": "JUDGING"}, RESORT_LEADER)

    # The circle's own leader does not judge it; a rejection needs an explanation.
    await w.refused(JUDGE, judge, LEADER, "FORBIDDEN")
    await w.refused(JUDGE, {**judge, "p": "REJECT"}, RESORT_LEADER, "BAD_USER_INPUT")
    board = await w.do(JUDGE, {**judge, "p": "REJECT", "x": "Túl sok pont"}, RESORT_LEADER)
    assert (board["pointStatus"], board["entryStatus"]) == ("REJECTED", "ACCEPTED")
    assert board["explanation"] == "Túl sok pont"
    assert board["judgedBy"] == {"id": ids.encode("User", RESORT_LEADER)}
    await w.refused(JUDGE, judge, RESORT_LEADER, "FAILED_PRECONDITION")  # judged already

    # A change after judging (in the next SUBMISSION season) makes version 2 and keeps
    # version 1 as it was judged.
    await w.refused(SET_POINTS, {**term, "p": [points(member_m, lead, 5)]}, LEADER,
                    "FAILED_PRECONDITION")
    await w.do(SEASON, {"s": SEMESTER, "season": "SUBMISSION"}, RESORT_LEADER)
    board = await w.do(SET_POINTS, {**term, "p": [points(member_m, lead, 5)]}, LEADER)
    assert board["version"] == 2
    assert (board["pointStatus"], board["entryStatus"]) == ("NOT_SUBMITTED", "ACCEPTED")
    assert board["explanation"] is None and board["judgedBy"] is None
    # (the canary seeds an archived version 0 before it)
    assert [v["version"] for v in board["history"]] == [0, 1]
    first = board["history"][1]
    assert (first["pointStatus"], first["entryStatus"]) == ("REJECTED", "ACCEPTED")
    assert first["explanation"] == "Túl sok pont"
    assert first["judgedBy"] == {"id": ids.encode("User", RESORT_LEADER)}
    assert first["archivedBy"] == {"id": ids.encode("User", LEADER)}
    assert {t["user"]["id"]: t["total"] for t in first["totals"]} == {
        ids.encode("User", MEMBER): 25, ids.encode("User", LEADER): 0}
    # Further changes stay in version 2; the accepted entry requests stay accepted.
    await w.do(SET_POINTS, {**term, "p": [points(member_m, lead, 6)]}, LEADER)
    board = await w.do(SUBMIT % BOARD, term, LEADER)
    assert (board["pointStatus"], board["entryStatus"], board["version"]) == (
        "PENDING", "ACCEPTED", 2)
    assert len(board["history"]) == 2
    message = await w.refused(SUBMIT % "version", term, LEADER, "FAILED_PRECONDITION")
    assert "nothing to submit" in message


async def test_who_may_edit_scores(world: World) -> None:
    w, term = world, {"g": world.circle, "s": SEMESTER}
    await w.do(SEASON, {"s": SEMESTER, "season": "SUBMISSION"}, RESORT_LEADER)
    await w.do(WITHDRAW % "version", term, LEADER)
    line = {**term, "p": [points(w.memberships[MEMBER], w.guideline, 4)]}
    await w.refused(SET_POINTS, line, None, "UNAUTHENTICATED")
    await w.refused(SET_POINTS, line, MEMBER, "FORBIDDEN")
    await w.refused(SET_POINTS, line, 99, "FORBIDDEN")  # an outsider
    # Escalation: the parent's leader judges the circle but does not edit its scores.
    await w.refused(SET_POINTS, line, RESORT_LEADER, "FORBIDDEN")
    await w.do(SET_POINTS, line, LEADER)
    # The same group's ID in another realm names another realm's group: the request is
    # sent to alpha, so it is refused as an ID of another realm.
    other = {**line, "g": ids.encode("Group", w.canary.local_ids["Group"][1], realm="beta")}
    message = await w.refused(SET_POINTS, other, LEADER, "BAD_USER_INPUT")
    assert "Invalid ID" in message
    # An unknown semester and a malformed one.
    assert "Unknown semester" in await w.refused(
        SET_POINTS, {**line, "s": "2030-2031/1"}, LEADER, "BAD_USER_INPUT")
    assert "Invalid semester" in await w.refused(
        SET_POINTS, {**line, "s": "autumn"}, LEADER, "BAD_USER_INPUT")


async def test_creating_a_semester(world: World) -> None:
    create = """mutation($n: String!, $a: Date!, $b: Date!) { createSemester(realm: "alpha",
        name: $n, startsOn: $a, endsOn: $b) { name season startsOn } }"""
    spring = {"n": "2025-2026/2", "a": "2026-02-01", "b": "2026-06-30"}
    await world.refused(create, spring, LEADER, "FORBIDDEN")
    assert await world.do(create, spring, RESORT_LEADER) == {
        "name": "2025-2026/2", "season": "OFF", "startsOn": "2026-02-01"}
    await world.refused(create, spring, RESORT_LEADER, "BAD_USER_INPUT")  # exists
    await world.refused(create, {**spring, "n": "2025-2027/1"}, RESORT_LEADER,
                    "BAD_USER_INPUT")
    await world.refused(create, {"n": "2026-2027/1", "a": "2026-09-01", "b": "2026-08-01"},
                    RESORT_LEADER, "BAD_USER_INPUT")

