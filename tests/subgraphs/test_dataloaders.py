"""N+1 check: the number of SQL statements does not grow with the number of groups."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import event

from pek.realm import models
from pek.realm.models import GroupPurpose, GuidelineCategory, MembershipStatus, PostKind
from pek.realm.service import RealmSubgraph
from pek.settings import Settings
from tests.subgraphs.conftest import run, sqlite_url

QUERY = """
query($first: Int!) {
  groups(first: $first) {
    totalCount
    edges { node {
      id name parent { id name } children { id name }
      memberships {
        id status joinedAt user { id }
        statusHistory { status since until }
        posts { kind title }
        group { id }
      }
      scoreboard(semester: "2025-2026/1") {
        pointStatus guidelines { name }
        rows { user { id } total points { guideline { name } counted } }
        entryRequests { card membership { id } }
      }
    } }
  }
}
"""


async def _seed(service: RealmSubgraph, group_count: int) -> None:
    day = dt.date(2025, 9, 1)
    async with service.sessionmaker.begin() as session:
        semester = models.Semester(
            name="2025-2026/1", starts_on=day, ends_on=dt.date(2026, 1, 31)
        )
        root = models.Group(name="Root", purpose=GroupPurpose.RESORT)
        session.add_all([semester, root])
        await session.flush()
        # The viewer leads the parent group: viewScores on every group (the escalation rule),
        # decided without a query per group.
        lead = models.Membership(group_id=root.id, user_id=1, joined_at=day,
                                 status=models.MembershipStatus.ACTIVE)
        session.add(lead)
        await session.flush()
        session.add(models.Post(membership_id=lead.id, kind=models.PostKind.LEADER, since=day))
        for index in range(group_count):
            group = models.Group(
                name=f"Group {index:03d}", purpose=GroupPurpose.CIRCLE, parent_id=root.id
            )
            session.add(group)
            await session.flush()
            guideline = models.Guideline(
                group_id=group.id, semester_id=semester.id, name="Work",
                category=GuidelineCategory.WORK, max_per_member=10,
            )
            evaluation = models.Evaluation(
                group_id=group.id, semester_id=semester.id,
                point_status=models.ReviewStatus.PENDING, entry_status=models.ReviewStatus.PENDING,
            )
            session.add_all([guideline, evaluation])
            await session.flush()
            for user_id in range(1, 4):
                membership = models.Membership(
                    group_id=group.id, user_id=index * 3 + user_id,
                    status=MembershipStatus.ACTIVE, joined_at=day,
                )
                session.add(membership)
                await session.flush()
                session.add_all([
                    models.MembershipStatusPeriod(
                        membership_id=membership.id, status=MembershipStatus.ACTIVE, since=day
                    ),
                    models.Post(membership_id=membership.id, kind=PostKind.TREASURER, since=day),
                    models.PointEntry(
                        evaluation_id=evaluation.id, guideline_id=guideline.id,
                        membership_id=membership.id, points=7,
                    ),
                ])
            session.add(
                models.EntryRequest(
                    evaluation_id=evaluation.id, membership_id=membership.id,
                    card=models.EntryCard.KB, justification="Great work",
                )
            )


async def _count_statements(service: RealmSubgraph, first: int) -> tuple[int, dict[str, Any]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        statements.append(sql)

    event.listen(service.engine.sync_engine, "before_cursor_execute", count)
    try:
        response = await run(service, QUERY, {"first": first}, viewer="1")
    finally:
        event.remove(service.engine.sync_engine, "before_cursor_execute", count)
    return len(statements), response


async def test_statement_count_does_not_grow_with_the_number_of_groups(tmp_path: Any) -> None:
    url = sqlite_url(tmp_path / "n1.sqlite3")
    service = RealmSubgraph(Settings(dev=True, realm_database_url=url, realm_id="n1"))
    await service.start()
    try:
        await _seed(service, group_count=60)
        few, small = await _count_statements(service, 5)
        many, large = await _count_statements(service, 50)
    finally:
        await service.aclose()
    assert "errors" not in small and "errors" not in large, (small, large)
    assert len(small["data"]["groups"]["edges"]) == 5
    edges = large["data"]["groups"]["edges"]
    assert len(edges) == 50
    # Every level really was resolved (not an empty answer that needs no queries).
    node = edges[-1]["node"]
    assert node["parent"]["name"] == "Root"
    assert len(node["memberships"]) == 3
    assert node["memberships"][0]["posts"][0]["kind"] == "TREASURER"
    assert [r["total"] for r in node["scoreboard"]["rows"]] == [7, 7, 7]
    assert few == many, (few, many)
    # One statement per relation, not per item: list + count + about a dozen loaders, plus
    # the viewer's standing for the permission checks (memberships, posts, led top-level
    # groups), read once per request.
    assert few <= 19, few
