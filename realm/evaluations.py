"""The evaluation workflow ("pontozás"): semesters and their seasons, guidelines, points,
entry-card requests, submitting, withdrawing and judging.

The rules (domain.md):

* a group's scores are edited by whoever holds ``editScores`` on it (its leaders and
  evaluation helpers, its owner), only in the semester's SUBMISSION season and only while the
  part (points, or entry requests) is not submitted; a submitted part is withdrawn first;
* ``evaluateScores`` (the parent group's leader, the leaders' council) judges a submitted
  part in the JUDGING season; a rejection needs an explanation;
* a change after judging archives the judged state (:class:`models.EvaluationVersion`: who
  submitted and judged it, its points, entries and totals) and makes the next version;
* seasons are set, and semesters created, by ``evaluateScores`` on the realm (the council).

Every permission is checked before anything is read for the answer or written, through
:mod:`pek.realm.permissions`; each mutation is one transaction, so a refused one changes
nothing. All are ``@realmOwner``: the router sends them to the realm of their group ID or
``realm`` argument.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import defaultdict
from typing import Any

import strawberry
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pek.realm import models
from pek.realm.loaders import RealmLoaders
from pek.realm.permissions import signed_in
from pek.realm.points import GuidelineScore, member_score
from pek.realm.routing import owner
from pek.realm.schema import (
    SEMESTER_RE,
    Guideline,
    RealmInfo,
    Scoreboard,
    Semester,
    build_scoreboard,
)
from pek.schema.context import ClientError
from pek.schema.policies import Action

#: The largest ``maxPerMember`` of a guideline (a member's final points are capped at 50).
MAX_GUIDELINE_POINTS = 50
MAX_NAME_LENGTH = 200
MAX_TEXT_LENGTH = 5000
#: The most lines one setPoints / setEntryRequests may carry.
MAX_LINES = 5000
#: A request that cannot be done in the current state (season, status): not a permission
#: matter and not malformed input.
FAILED_PRECONDITION = "FAILED_PRECONDITION"

Status = models.ReviewStatus


@strawberry.enum(description="A judge's decision on a submitted part of an evaluation.")
class Verdict(enum.Enum):
    ACCEPT = "ACCEPT"
    REJECT = "REJECT"


@strawberry.input(description="A member's points for one guideline; 0 removes them.")
class PointsInput:
    membership_id: strawberry.ID
    guideline_id: strawberry.ID
    points: int


@strawberry.input(description="An entry-card request for one member.")
class EntryRequestInput:
    membership_id: strawberry.ID
    card: models.EntryCard
    justification: str


class _Part(enum.Enum):
    POINTS = "points"
    ENTRIES = "entry requests"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(value: str, what: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_NAME_LENGTH:
        raise ClientError(f"`{what}` must be 1-{MAX_NAME_LENGTH} characters")
    return value


def _semester_name(value: str) -> str:
    if not SEMESTER_RE.match(value):
        raise ClientError("Invalid semester: expected a name like 2025-2026/1")
    first, second = int(value[:4]), int(value[5:9])
    if second != first + 1:
        raise ClientError("Invalid semester: the years must follow each other (2025-2026/1)")
    return value


class _Term:
    """The group and semester a mutation is about, read in the mutation's transaction."""

    def __init__(self, group: models.Group, semester: models.Semester) -> None:
        self.group, self.semester = group, semester

    @classmethod
    async def load(
        cls, info: RealmInfo, session: AsyncSession, group_id: str, semester: str,
        action: Action, message: str,
    ) -> _Term:
        signed_in(info.context.viewer_id)
        local = info.context.local_id(group_id, "Group")
        name = _semester_name(semester)
        group = await session.get(models.Group, local)
        perms = info.context.perms()
        if group is None or not await perms.can(Action.VIEW_GROUP, group):
            raise ClientError("No group with this ID")
        await perms.require(action, group, message)
        row = await session.scalar(select(models.Semester).where(models.Semester.name == name))
        if row is None:
            raise ClientError(f"Unknown semester {name}")
        return cls(group, row)

    def require_season(self, season: models.Season, doing: str) -> None:
        if self.semester.season is not season:
            raise ClientError(
                f"{doing} only in the {season.value} season; {self.semester.name} is in "
                f"{self.semester.season.value}",
                code=FAILED_PRECONDITION,
            )

    async def evaluation(self, session: AsyncSession, create: bool) -> models.Evaluation | None:
        E = models.Evaluation
        row = await session.scalar(
            select(E).where(E.group_id == self.group.id, E.semester_id == self.semester.id)
        )
        if row is None and create:
            row = E(
                group_id=self.group.id, semester_id=self.semester.id,
                point_status=Status.NOT_SUBMITTED, entry_status=Status.NOT_SUBMITTED, version=1,
            )
            session.add(row)
            await session.flush()
        return row

    async def guidelines(self, session: AsyncSession) -> dict[int, models.Guideline]:
        G = models.Guideline
        rows = await session.scalars(
            select(G).where(G.group_id == self.group.id, G.semester_id == self.semester.id)
        )
        return {row.id: row for row in rows}


def _status(evaluation: models.Evaluation, part: _Part) -> Status:
    return evaluation.point_status if part is _Part.POINTS else evaluation.entry_status


def _set_status(evaluation: models.Evaluation, part: _Part, status: Status) -> None:
    if part is _Part.POINTS:
        evaluation.point_status = status
    else:
        evaluation.entry_status = status


async def _archive(session: AsyncSession, evaluation: models.Evaluation, actor: int) -> None:
    """Keep the judged state as a version of its own and start the next version."""
    P, R = models.PointEntry, models.EntryRequest
    points = list(await session.scalars(
        select(P).where(P.evaluation_id == evaluation.id).order_by(P.id)
    ))
    entries = list(await session.scalars(
        select(R).where(R.evaluation_id == evaluation.id).order_by(R.id)
    ))
    guidelines = {
        g.id: g for g in await session.scalars(
            select(models.Guideline).where(
                models.Guideline.id.in_({p.guideline_id for p in points})
            )
        )
    }
    holders = {
        m.id: m.user_id for m in await session.scalars(
            select(models.Membership).where(
                models.Membership.id.in_({p.membership_id for p in points})
            )
        )
    }
    per_member: dict[int, list[GuidelineScore]] = defaultdict(list)
    for p in points:
        g = guidelines[p.guideline_id]
        per_member[p.membership_id].append(GuidelineScore(g.category, g.max_per_member, p.points))
    snapshot: dict[str, Any] = {
        "points": [[p.membership_id, p.guideline_id, p.points] for p in points],
        "entries": [[e.membership_id, e.card.value, e.justification] for e in entries],
        "totals": [
            [membership, holders[membership], member_score(scores).total]
            for membership, scores in per_member.items()
        ],
    }
    session.add(models.EvaluationVersion(
        evaluation_id=evaluation.id, version=evaluation.version,
        point_status=evaluation.point_status, entry_status=evaluation.entry_status,
        explanation=evaluation.explanation, submitted_at=evaluation.submitted_at,
        submitted_by=evaluation.submitted_by, judged_at=evaluation.judged_at,
        judged_by=evaluation.judged_by, snapshot=snapshot, archived_at=_now(),
        archived_by=actor,
    ))
    evaluation.version += 1
    evaluation.judged_at = evaluation.judged_by = None
    evaluation.explanation = None


async def _open_for_change(
    session: AsyncSession, term: _Term, part: _Part, actor: int
) -> models.Evaluation:
    """The evaluation, ready for a change of ``part``: SUBMISSION season, not submitted; a
    judged evaluation is archived first (a change after judging makes a new version)."""
    term.require_season(models.Season.SUBMISSION, "Scores can be changed")
    evaluation = await term.evaluation(session, create=True)
    assert evaluation is not None
    if _status(evaluation, part) is Status.PENDING:
        raise ClientError(
            f"The {part.value} are submitted: withdraw them first (withdrawEvaluation)",
            code=FAILED_PRECONDITION,
        )
    if evaluation.judged_at is not None:
        await _archive(session, evaluation, actor)
    _set_status(evaluation, part, Status.NOT_SUBMITTED)
    return evaluation


async def _scored_memberships(
    session: AsyncSession, info: RealmInfo, group: models.Group, values: set[str],
    statuses: tuple[models.MembershipStatus, ...],
) -> dict[str, models.Membership]:
    """The memberships ``values`` name, each of ``group`` and in one of ``statuses``."""
    local = {value: info.context.local_id(value, "Membership") for value in values}
    M = models.Membership
    rows = {
        m.id: m for m in await session.scalars(select(M).where(M.id.in_(set(local.values()))))
    }
    found: dict[str, models.Membership] = {}
    for value, local_id in local.items():
        row = rows.get(local_id)
        if row is None or row.group_id != group.id:
            raise ClientError(f"{value} is not a membership of this group")
        if row.status not in statuses:
            raise ClientError(
                f"{value} is {row.status.value}: only "
                f"{' or '.join(s.value for s in statuses)} members are scored"
            )
        found[value] = row
    return found


async def _answer(info: RealmInfo, term: _Term) -> Scoreboard:
    """The scoreboard as it is after the mutation (fresh loaders: nothing cached before)."""
    info.context.loaders = RealmLoaders.create(info.context.db())
    return await build_scoreboard(info, term.group, term.semester)


EDIT = (Action.EDIT_SCORES, "Only the group's leaders and evaluation helpers may edit its scores")
JUDGE = (Action.EVALUATE_SCORES,
         "Only the parent group's leader or the leaders' council may judge this evaluation")


@strawberry.type
class EvaluationMutation:
    @strawberry.mutation(
        description="Add a guideline (a principle members are scored against) to a group's "
        "evaluation of `semester` (editScores; SUBMISSION season; points not submitted).",
        directives=[owner("groupId")],
    )
    async def add_guideline(
        self, info: RealmInfo, group_id: strawberry.ID, semester: str, name: str,
        category: models.GuidelineCategory, max_per_member: int,
    ) -> Guideline:
        viewer = signed_in(info.context.viewer_id)
        name = _name(name, "name")
        if not 1 <= max_per_member <= MAX_GUIDELINE_POINTS:
            raise ClientError(f"`maxPerMember` must be 1-{MAX_GUIDELINE_POINTS}")
        async with info.context.db().begin() as session:
            term = await _Term.load(info, session, group_id, semester, *EDIT)
            await _open_for_change(session, term, _Part.POINTS, viewer)
            if any(g.name == name for g in (await term.guidelines(session)).values()):
                raise ClientError("The group has a guideline of this name in this semester")
            row = models.Guideline(group_id=term.group.id, semester_id=term.semester.id,
                                   name=name, category=category, max_per_member=max_per_member)
            session.add(row)
        return Guideline.of(info, row)

    @strawberry.mutation(
        description="Remove a guideline and the points given for it (editScores; SUBMISSION "
        "season; points not submitted).",
        directives=[owner("id")],
    )
    async def remove_guideline(self, info: RealmInfo, id: strawberry.ID) -> Scoreboard:
        viewer = signed_in(info.context.viewer_id)
        local = info.context.local_id(id, "Guideline")
        async with info.context.db().begin() as session:
            row = await session.get(models.Guideline, local)
            if row is None:
                raise ClientError("No guideline with this ID")
            group = await session.get(models.Group, row.group_id)
            semester = await session.get(models.Semester, row.semester_id)
            assert group is not None and semester is not None  # composite foreign keys
            term = await _Term.load(info, session, info.context.global_id("Group", group.id),
                                    semester.name, *EDIT)
            await _open_for_change(session, term, _Part.POINTS, viewer)
            await session.execute(
                delete(models.PointEntry).where(models.PointEntry.guideline_id == row.id)
            )
            await session.delete(row)
        return await _answer(info, term)

    @strawberry.mutation(
        description="Set members' points for guidelines of `semester` (editScores; SUBMISSION "
        "season; points not submitted). Points are 0 to the guideline's maxPerMember; 0 "
        "removes a member's points for that guideline. Lines not given stay as they are.",
        directives=[owner("groupId")],
    )
    async def set_points(
        self, info: RealmInfo, group_id: strawberry.ID, semester: str,
        points: list[PointsInput],
    ) -> Scoreboard:
        viewer = signed_in(info.context.viewer_id)
        if not points or len(points) > MAX_LINES:
            raise ClientError(f"`points` must have 1-{MAX_LINES} lines")
        async with info.context.db().begin() as session:
            term = await _Term.load(info, session, group_id, semester, *EDIT)
            evaluation = await _open_for_change(session, term, _Part.POINTS, viewer)
            guidelines = await term.guidelines(session)
            members = await _scored_memberships(
                session, info, term.group, {line.membership_id for line in points},
                (models.MembershipStatus.ACTIVE, models.MembershipStatus.FORMER),
            )
            wanted: dict[tuple[int, int], int] = {}
            for line in points:
                guideline = guidelines.get(info.context.local_id(line.guideline_id, "Guideline"))
                if guideline is None:
                    raise ClientError(
                        f"{line.guideline_id} is not a guideline of this group in {semester}"
                    )
                if not 0 <= line.points <= guideline.max_per_member:
                    raise ClientError(
                        f"Points for {guideline.name!r} must be 0-{guideline.max_per_member}"
                    )
                key = (members[line.membership_id].id, guideline.id)
                if key in wanted:
                    raise ClientError("A member's points for a guideline are given twice")
                wanted[key] = line.points
            P = models.PointEntry
            existing = {
                (p.membership_id, p.guideline_id): p for p in await session.scalars(
                    select(P).where(P.evaluation_id == evaluation.id)
                )
            }
            for (membership, guideline_id), value in wanted.items():
                row = existing.get((membership, guideline_id))
                if value == 0:
                    if row is not None:
                        await session.delete(row)
                elif row is None:
                    session.add(P(evaluation_id=evaluation.id, guideline_id=guideline_id,
                                  membership_id=membership, points=value))
                else:
                    row.points = value
        return await _answer(info, term)

    @strawberry.mutation(
        description="Replace the group's entry-card requests of `semester` (editScores; "
        "SUBMISSION season; entry requests not submitted). One request per member, each with "
        "a justification; an empty list removes them all.",
        directives=[owner("groupId")],
    )
    async def set_entry_requests(
        self, info: RealmInfo, group_id: strawberry.ID, semester: str,
        requests: list[EntryRequestInput],
    ) -> Scoreboard:
        viewer = signed_in(info.context.viewer_id)
        if len(requests) > MAX_LINES:
            raise ClientError(f"`requests` may have at most {MAX_LINES} lines")
        async with info.context.db().begin() as session:
            term = await _Term.load(info, session, group_id, semester, *EDIT)
            evaluation = await _open_for_change(session, term, _Part.ENTRIES, viewer)
            members = await _scored_memberships(
                session, info, term.group, {r.membership_id for r in requests},
                (models.MembershipStatus.ACTIVE,),
            )
            seen: set[int] = set()
            rows = []
            for request in requests:
                justification = request.justification.strip()
                if not justification or len(justification) > MAX_TEXT_LENGTH:
                    raise ClientError(
                        f"A justification must be 1-{MAX_TEXT_LENGTH} characters"
                    )
                membership = members[request.membership_id].id
                if membership in seen:
                    raise ClientError("A member has more than one entry-card request")
                seen.add(membership)
                rows.append(models.EntryRequest(
                    evaluation_id=evaluation.id, membership_id=membership, card=request.card,
                    justification=justification,
                ))
            R = models.EntryRequest
            await session.execute(delete(R).where(R.evaluation_id == evaluation.id))
            session.add_all(rows)
        return await _answer(info, term)

    @strawberry.mutation(
        description="Submit the group's points and entry requests of `semester` for judging "
        "(editScores; SUBMISSION season): each part that has content and is not submitted "
        "or accepted becomes PENDING.",
        directives=[owner("groupId")],
    )
    async def submit_evaluation(
        self, info: RealmInfo, group_id: strawberry.ID, semester: str
    ) -> Scoreboard:
        viewer = signed_in(info.context.viewer_id)
        async with info.context.db().begin() as session:
            term = await _Term.load(info, session, group_id, semester, *EDIT)
            term.require_season(models.Season.SUBMISSION, "An evaluation can be submitted")
            evaluation = await term.evaluation(session, create=False)
            if evaluation is None:
                raise ClientError("There is nothing to submit: set points or entry requests "
                                  "first", code=FAILED_PRECONDITION)
            P, R = models.PointEntry, models.EntryRequest
            has = {
                _Part.POINTS: await session.scalar(
                    select(P.id).where(P.evaluation_id == evaluation.id).limit(1)
                ) is not None,
                _Part.ENTRIES: await session.scalar(
                    select(R.id).where(R.evaluation_id == evaluation.id).limit(1)
                ) is not None,
            }
            parts = [
                part for part in _Part
                if has[part] and _status(evaluation, part) in (Status.NOT_SUBMITTED,
                                                             Status.REJECTED)
            ]
            if not parts:
                raise ClientError("There is nothing to submit: every part with content is "
                                  "submitted or accepted", code=FAILED_PRECONDITION)
            if evaluation.judged_at is not None:
                await _archive(session, evaluation, viewer)
            for part in parts:
                _set_status(evaluation, part, Status.PENDING)
            evaluation.submitted_at, evaluation.submitted_by = _now(), viewer
        return await _answer(info, term)

    @strawberry.mutation(
        description="Withdraw the submitted (PENDING) parts of the group's evaluation of "
        "`semester` so they can be changed (editScores; SUBMISSION season).",
        directives=[owner("groupId")],
    )
    async def withdraw_evaluation(
        self, info: RealmInfo, group_id: strawberry.ID, semester: str
    ) -> Scoreboard:
        async with info.context.db().begin() as session:
            term = await _Term.load(info, session, group_id, semester, *EDIT)
            term.require_season(models.Season.SUBMISSION, "An evaluation can be withdrawn")
            evaluation = await term.evaluation(session, create=False)
            pending = [p for p in _Part
                       if evaluation is not None and _status(evaluation, p) is Status.PENDING]
            if evaluation is None or not pending:
                raise ClientError("Nothing is submitted", code=FAILED_PRECONDITION)
            for part in pending:
                _set_status(evaluation, part, Status.NOT_SUBMITTED)
        return await _answer(info, term)

    @strawberry.mutation(
        description="Judge the submitted parts of a group's evaluation of `semester` "
        "(evaluateScores: the parent group's leader, the leaders' council; JUDGING season). "
        "A rejection needs an `explanation`.",
        directives=[owner("groupId")],
    )
    async def judge_evaluation(
        self, info: RealmInfo, group_id: strawberry.ID, semester: str,
        points: Verdict | None = None, entries: Verdict | None = None,
        explanation: str | None = None,
    ) -> Scoreboard:
        viewer = signed_in(info.context.viewer_id)
        verdicts = {_Part.POINTS: points, _Part.ENTRIES: entries}
        if points is None and entries is None:
            raise ClientError("Give a verdict on the `points`, the `entries` or both")
        explanation = explanation.strip() if explanation else None
        if explanation is not None and len(explanation) > MAX_TEXT_LENGTH:
            raise ClientError(f"`explanation` must be at most {MAX_TEXT_LENGTH} characters")
        if Verdict.REJECT in verdicts.values() and not explanation:
            raise ClientError("A rejection needs an `explanation`")
        async with info.context.db().begin() as session:
            term = await _Term.load(info, session, group_id, semester, *JUDGE)
            term.require_season(models.Season.JUDGING, "Evaluations are judged")
            evaluation = await term.evaluation(session, create=False)
            for part, verdict in verdicts.items():
                if verdict is not None and (
                    evaluation is None or _status(evaluation, part) is not Status.PENDING
                ):
                    raise ClientError(f"The {part.value} are not submitted",
                                      code=FAILED_PRECONDITION)
            assert evaluation is not None
            for part, verdict in verdicts.items():
                if verdict is not None:
                    _set_status(evaluation, part,
                                Status.ACCEPTED if verdict is Verdict.ACCEPT else Status.REJECTED)
            evaluation.explanation = explanation
            evaluation.judged_at, evaluation.judged_by = _now(), viewer
        return await _answer(info, term)

    @strawberry.mutation(
        description="Create a semester (`2026-2027/1`) in `realm`, in the OFF season "
        "(evaluateScores on the realm: the leaders' council, top-level admins).",
        directives=[owner("realm")],
    )
    async def create_semester(
        self, info: RealmInfo, realm: str, name: str, starts_on: dt.date, ends_on: dt.date
    ) -> Semester:
        signed_in(info.context.viewer_id)
        if realm != info.context.realm_id:
            raise ClientError("`realm` is not the realm this request was sent to")
        await info.context.perms().require(
            Action.EVALUATE_SCORES, None,
            "Only the leaders' council or a top-level admin may create semesters")
        name = _semester_name(name)
        if ends_on <= starts_on:
            raise ClientError("`endsOn` must be after `startsOn`")
        try:
            async with info.context.db().begin() as session:
                S = models.Semester
                if await session.scalar(select(S.id).where(S.name == name)) is not None:
                    raise ClientError(f"The semester {name} exists")
                row = S(name=name, starts_on=starts_on, ends_on=ends_on,
                        season=models.Season.OFF)
                session.add(row)
        except IntegrityError:
            raise ClientError(f"The semester {name} exists") from None
        return Semester.of(info, row)

    @strawberry.mutation(
        description="Set a semester's season: OFF, SUBMISSION (groups edit and submit) or "
        "JUDGING (evaluateScores on the realm: the leaders' council, top-level admins).",
        directives=[owner("realm")],
    )
    async def set_season(
        self, info: RealmInfo, realm: str, semester: str, season: models.Season
    ) -> Semester:
        signed_in(info.context.viewer_id)
        if realm != info.context.realm_id:
            raise ClientError("`realm` is not the realm this request was sent to")
        await info.context.perms().require(
            Action.EVALUATE_SCORES, None,
            "Only the leaders' council or a top-level admin may set the season")
        name = _semester_name(semester)
        async with info.context.db().begin() as session:
            S = models.Semester
            row = await session.scalar(select(S).where(S.name == name))
            if row is None:
                raise ClientError(f"Unknown semester {name}")
            row.season = season
        return Semester.of(info, row)
