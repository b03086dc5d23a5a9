"""The realm subgraph's GraphQL schema: groups, memberships, posts, semesters, scoreboards.

Nothing here knows which realm it serves beyond stamping the realm into the global IDs it
issues (and checking it in those it receives); the data layer scopes every query.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import strawberry
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet
from strawberry.types import Info

from pek.realm import models
from pek.realm.loaders import RealmLoaders
from pek.realm.permissions import Permissions
from pek.realm.points import GuidelineScore, counted_points, member_score
from pek.realm.routing import fanout, owner
from pek.schema import ids
from pek.schema.context import ClientError, RequestContext, decode_id
from pek.schema.database import codepoint_order, contains_words
from pek.schema.node import Node
from pek.schema.pagination import Connection, PageInfo, build_connection, page_window
from pek.schema.policies import Action
from pek.schema.subgraph import SubgraphSchema

strawberry.enum(models.GroupPurpose, description="What a group is for.")
strawberry.enum(models.MembershipStatus, description="Where a membership is in its lifecycle.")
strawberry.enum(models.PostKind, description="A post (title) a member holds in a group.")
strawberry.enum(models.Season, description="The evaluation season of a semester.")
strawberry.enum(models.GuidelineCategory)
strawberry.enum(models.ReviewStatus, description="Review state of submitted points or entries.")
strawberry.enum(models.EntryCard, description="Entry-card kinds a group may request.")

SEMESTER_RE = re.compile(r"^(\d{4})-(\d{4})/([12])$")
MAX_SEARCH_LENGTH = 200


@dataclass
class RealmContext(RequestContext):
    realm_id: str = ""
    sessions: async_sessionmaker[AsyncSession] | None = None
    loaders: RealmLoaders | None = None
    #: Called after a committed membership change (wakes the federation-index drainer).
    notify_index: Callable[[], None] | None = None
    permissions: Permissions | None = None

    def perms(self) -> Permissions:
        assert self.permissions is not None
        return self.permissions

    def db(self) -> async_sessionmaker[AsyncSession]:
        assert self.sessions is not None
        return self.sessions

    def load(self) -> RealmLoaders:
        assert self.loaders is not None
        return self.loaders

    def global_id(self, type_name: str, local_id: int) -> strawberry.ID:
        return strawberry.ID(ids.encode(type_name, local_id, realm=self.realm_id))

    def local_id(self, value: str, type_name: str) -> int:
        return decode_id(value, type_name, realm=self.realm_id)


RealmInfo = Info[RealmContext, None]


@strawberry.federation.type(
    keys=[Key(fields=FieldSet("id"), resolvable=False)],
    description="A realm of the federation (owned by the hub, which resolves its name).",
)
class Realm:
    id: strawberry.ID


def _realm_of_request(info: RealmInfo) -> Realm:
    return Realm(id=strawberry.ID(info.context.realm_id))


def realm_field() -> Realm:
    """The ``realm: Realm!`` field of every realm-owned type."""
    result: Realm = strawberry.field(
        resolver=_realm_of_request, description="The realm this object belongs to."
    )
    return result


@strawberry.federation.type(keys=["id"], description="A person (owned by the hub).")
class User(Node):
    id: strawberry.ID
    local_id: strawberry.Private[int]

    @classmethod
    def of(cls, local_id: int) -> User:
        return cls(id=strawberry.ID(ids.encode("User", local_id)), local_id=local_id)

    @classmethod
    def resolve_reference(cls, info: RealmInfo, id: strawberry.ID) -> User:
        return cls.of(decode_id(id, "User"))

    @strawberry.field(
        description="The user's memberships in this realm, by join date.",
        directives=[fanout("joinedAt")],
    )
    async def memberships(self, info: RealmInfo) -> list[Membership]:
        rows = await info.context.load().memberships_of_user.load(self.local_id)
        return [Membership.of(info, row) for row in rows if await can_view_membership(info, row)]


@strawberry.type(description="A semester: `2025-2026/1` is autumn, `2025-2026/2` spring.")
class Semester(Node):
    id: strawberry.ID
    name: str
    starts_on: dt.date
    ends_on: dt.date
    season: models.Season
    realm: Realm = realm_field()

    @classmethod
    def of(cls, info: RealmInfo, row: models.Semester) -> Semester:
        return cls(
            id=info.context.global_id("Semester", row.id),
            name=row.name,
            starts_on=row.starts_on,
            ends_on=row.ends_on,
            season=row.season,
        )


@strawberry.type(description="A principle a group scores its members against in a semester.")
class Guideline(Node):
    id: strawberry.ID
    name: str
    category: models.GuidelineCategory
    max_per_member: int
    realm: Realm = realm_field()

    @classmethod
    def of(cls, info: RealmInfo, row: models.Guideline) -> Guideline:
        return cls(
            id=info.context.global_id("Guideline", row.id),
            name=row.name,
            category=row.category,
            max_per_member=row.max_per_member,
        )


@strawberry.type(description="One period of a membership's status history.")
class MembershipStatusPeriod:
    status: models.MembershipStatus
    since: dt.date
    until: dt.date | None = strawberry.field(description="Null while the period lasts.")


@strawberry.type(description="A post held by a member.")
class Post(Node):
    id: strawberry.ID
    kind: models.PostKind
    title: str | None = strawberry.field(description="The title of a group-specific post.")
    since: dt.date
    realm: Realm = realm_field()
    row: strawberry.Private[models.Post]

    @classmethod
    def of(cls, info: RealmInfo, row: models.Post) -> Post:
        return cls(
            id=info.context.global_id("Post", row.id),
            kind=row.kind,
            title=row.title,
            since=row.since,
            row=row,
        )

    @strawberry.field(description="The membership that holds the post.")
    async def membership(self, info: RealmInfo) -> Membership:
        row = await info.context.load().membership.load(self.row.membership_id)
        assert row is not None  # a composite foreign key guarantees it
        return Membership.of(info, row)


@strawberry.federation.type(keys=["id"], description="A user's membership in a group.")
class Membership(Node):
    id: strawberry.ID
    status: models.MembershipStatus = strawberry.field(description="The current status.")
    joined_at: dt.date
    realm: Realm = realm_field()
    row: strawberry.Private[models.Membership]

    @classmethod
    def of(cls, info: RealmInfo, row: models.Membership) -> Membership:
        return cls(
            id=info.context.global_id("Membership", row.id),
            status=row.status,
            joined_at=row.joined_at,
            row=row,
        )

    @classmethod
    async def resolve_reference(cls, info: RealmInfo, id: strawberry.ID) -> Membership | None:
        row = await info.context.load().membership.load(info.context.local_id(id, "Membership"))
        return await visible_membership(info, row)

    @strawberry.field
    async def group(self, info: RealmInfo) -> Group:
        row = await info.context.load().group.load(self.row.group_id)
        assert row is not None  # a composite foreign key guarantees it
        return Group.of(info, row)

    @strawberry.field
    def user(self) -> User:
        return User.of(self.row.user_id)

    @strawberry.field
    async def status_history(self, info: RealmInfo) -> list[MembershipStatusPeriod]:
        rows = await info.context.load().status_history.load(self.row.id)
        return [MembershipStatusPeriod(status=r.status, since=r.since, until=r.until) for r in rows]

    @strawberry.field
    async def posts(self, info: RealmInfo) -> list[Post]:
        rows = await info.context.load().posts.load(self.row.id)
        return [Post.of(info, r) for r in rows]


@strawberry.type(description="A member's points for one guideline.")
class GuidelinePoints:
    guideline: Guideline
    points: int = strawberry.field(description="The points as submitted.")
    counted: int = strawberry.field(description="The points as they count (capped).")


@strawberry.type(description="One member's line of a scoreboard.")
class ScoreboardRow:
    membership: Membership
    user: User
    points: list[GuidelinePoints]
    work: int = strawberry.field(description="WORK points, capped at 30.")
    responsibility: int = strawberry.field(description="RESPONSIBILITY points, capped at 20.")
    total: int = strawberry.field(description="Final points: 1-2 count 0, 3-4 count 5, max 50.")


@strawberry.type(description="A request for an entry card, with its justification.")
class EntryRequest(Node):
    id: strawberry.ID
    membership: Membership
    user: User
    card: models.EntryCard
    justification: str
    realm: Realm = realm_field()


@strawberry.type(description="One grant on a group: OWNER (created it), MOVE_OWNER, POST or "
                 "END_POST (with the post's kind).")
class GrantRecord:
    kind: str
    user: User
    previous_owner: User | None
    post_kind: models.PostKind | None
    granted_by: User
    granted_at: dt.datetime

    @classmethod
    def of(cls, row: models.GroupGrant) -> GrantRecord:
        return cls(kind=row.kind, user=User.of(row.user_id),
                   previous_owner=_user_or_none(row.previous_user_id), post_kind=row.post_kind,
                   granted_by=User.of(row.granted_by), granted_at=row.granted_at)


@strawberry.type(description="A judged version of an evaluation, kept when the evaluation "
                 "was changed after judging.")
class EvaluationVersion:
    version: int
    point_status: models.ReviewStatus
    entry_status: models.ReviewStatus
    explanation: str | None
    submitted_at: dt.datetime | None
    submitted_by: User | None
    judged_at: dt.datetime | None
    judged_by: User | None
    archived_at: dt.datetime
    archived_by: User
    row: strawberry.Private[models.EvaluationVersion]

    @classmethod
    def of(cls, row: models.EvaluationVersion) -> EvaluationVersion:
        return cls(
            version=row.version, point_status=row.point_status, entry_status=row.entry_status,
            explanation=row.explanation, submitted_at=row.submitted_at,
            submitted_by=_user_or_none(row.submitted_by), judged_at=row.judged_at,
            judged_by=_user_or_none(row.judged_by), archived_at=row.archived_at,
            archived_by=User.of(row.archived_by), row=row,
        )

    @strawberry.field(description="Each member's final points in this version.")
    def totals(self, info: RealmInfo) -> list[MemberTotal]:
        return [
            MemberTotal(membership_id=info.context.global_id("Membership", membership),
                        user=User.of(user), total=total)
            for membership, user, total in self.row.snapshot.get("totals", [])
        ]


@strawberry.type(description="A member's final points in an archived version.")
class MemberTotal:
    membership_id: strawberry.ID
    user: User
    total: int


def _user_or_none(user_id: int | None) -> User | None:
    return User.of(user_id) if user_id is not None else None


@strawberry.type(description="A group's evaluation for one semester.")
class Scoreboard:
    group: Group
    semester: Semester
    point_status: models.ReviewStatus
    entry_status: models.ReviewStatus
    explanation: str | None = strawberry.field(description="The reason of a rejection.")
    version: int = strawberry.field(
        description="1 at first; a change after judging makes the next version."
    )
    submitted_at: dt.datetime | None
    submitted_by: User | None
    judged_at: dt.datetime | None
    judged_by: User | None
    guidelines: list[Guideline]
    rows: list[ScoreboardRow]
    entry_requests: list[EntryRequest]
    evaluation_id: strawberry.Private[int | None]

    @strawberry.field(description="The judged versions before this one, oldest first.")
    async def history(self, info: RealmInfo) -> list[EvaluationVersion]:
        if self.evaluation_id is None:
            return []
        rows = await info.context.load().evaluation_versions.load(self.evaluation_id)
        return [EvaluationVersion.of(row) for row in rows]


async def build_scoreboard(
    info: RealmInfo, group: models.Group, semester_row: models.Semester
) -> Scoreboard:
    """The scoreboard of ``group`` in ``semester_row`` (the caller checked viewScores)."""
    loaders = info.context.load()
    term = (group.id, semester_row.id)
    guideline_rows, evaluation = await asyncio.gather(
        loaders.guidelines.load(term), loaders.evaluation.load(term)
    )
    guidelines = {g.id: Guideline.of(info, g) for g in guideline_rows}
    by_guideline = {g.id: g for g in guideline_rows}
    board = Scoreboard(
        group=Group.of(info, group),
        semester=Semester.of(info, semester_row),
        point_status=models.ReviewStatus.NOT_SUBMITTED,
        entry_status=models.ReviewStatus.NOT_SUBMITTED,
        explanation=None,
        version=1,
        submitted_at=None,
        submitted_by=None,
        judged_at=None,
        judged_by=None,
        guidelines=list(guidelines.values()),
        rows=[],
        entry_requests=[],
        evaluation_id=None,
    )
    if evaluation is None:
        return board
    board.evaluation_id = evaluation.id
    board.point_status, board.entry_status = evaluation.point_status, evaluation.entry_status
    board.explanation, board.version = evaluation.explanation, evaluation.version
    board.submitted_at = evaluation.submitted_at
    board.submitted_by = _user_or_none(evaluation.submitted_by)
    board.judged_at, board.judged_by = evaluation.judged_at, _user_or_none(evaluation.judged_by)
    point_rows, entry_rows = await asyncio.gather(
        loaders.points.load(evaluation.id), loaders.entry_requests.load(evaluation.id)
    )
    per_member: dict[int, list[models.PointEntry]] = defaultdict(list)
    for entry in point_rows:
        per_member[entry.membership_id].append(entry)
    member_ids = list(per_member) + [e.membership_id for e in entry_rows]
    member_rows = await loaders.membership.load_many(list(dict.fromkeys(member_ids)))
    members = {m.id: Membership.of(info, m) for m in member_rows if m is not None}

    for membership_id, entries in per_member.items():
        score = member_score(
            GuidelineScore(
                by_guideline[e.guideline_id].category,
                by_guideline[e.guideline_id].max_per_member,
                e.points,
            )
            for e in entries
        )
        member = members[membership_id]
        board.rows.append(
            ScoreboardRow(
                membership=member,
                user=User.of(member.row.user_id),
                points=[
                    GuidelinePoints(
                        guideline=guidelines[e.guideline_id],
                        points=e.points,
                        counted=counted_points(
                            e.points, by_guideline[e.guideline_id].max_per_member
                        ),
                    )
                    for e in entries
                ],
                work=score.work,
                responsibility=score.responsibility,
                total=score.total,
            )
        )
    board.rows.sort(key=lambda r: (-r.total, r.membership.row.id))
    board.entry_requests = [
        EntryRequest(
            id=info.context.global_id("EntryRequest", e.id),
            membership=members[e.membership_id],
            user=User.of(members[e.membership_id].row.user_id),
            card=e.card,
            justification=e.justification,
        )
        for e in entry_rows
    ]
    return board


@strawberry.federation.type(keys=["id"], description="A group of a realm (a circle, a resort...).")
class Group(Node):
    id: strawberry.ID
    name: str
    description: str | None
    purpose: models.GroupPurpose
    founded_at: dt.date | None
    webpage: str | None
    mailing_list: str | None
    users_can_apply: bool
    archived: bool
    realm: Realm = realm_field()
    row: strawberry.Private[models.Group]

    @classmethod
    def of(cls, info: RealmInfo, row: models.Group) -> Group:
        return cls(
            id=info.context.global_id("Group", row.id),
            name=row.name,
            description=row.description,
            purpose=row.purpose,
            founded_at=row.founded_at,
            webpage=row.webpage,
            mailing_list=row.mailing_list,
            users_can_apply=row.users_can_apply,
            archived=row.archived,
            row=row,
        )

    @classmethod
    async def resolve_reference(cls, info: RealmInfo, id: strawberry.ID) -> Group | None:
        row = await info.context.load().group.load(info.context.local_id(id, "Group"))
        return await visible_group(info, row)

    @strawberry.field(description="The parent group (null for a top-level group, or one the "
                      "viewer may not view).")
    async def parent(self, info: RealmInfo) -> Group | None:
        if self.row.parent_id is None:
            return None
        row = await info.context.load().group.load(self.row.parent_id)
        return await visible_group(info, row)

    @strawberry.field(description="The subgroups the viewer may view, by name.")
    async def children(self, info: RealmInfo) -> list[Group]:
        rows = await info.context.load().children.load(self.row.id)
        perms = info.context.perms()
        return [Group.of(info, row) for row in rows if await perms.can(Action.VIEW_GROUP, row)]

    @strawberry.field(description="The owner of the group (GOD: full control of it); null "
                      "for a group that has none.")
    def owner(self) -> User | None:
        return User.of(self.row.owner_id) if self.row.owner_id is not None else None

    @strawberry.field(
        description="The group's memberships, optionally of one current status; null where "
        "the viewer may not view the members (viewMembers)."
    )
    async def memberships(
        self, info: RealmInfo, status: models.MembershipStatus | None = None
    ) -> list[Membership] | None:
        if not await info.context.perms().can(Action.VIEW_MEMBERS, self.row):
            return None
        rows = await info.context.load().memberships_of_group.load(self.row.id)
        return [Membership.of(info, r) for r in rows if status is None or r.status is status]

    @strawberry.field(
        description="Who gave what on this group and when (ownership, posts), oldest first; "
        "null where the viewer may not manage its members (editMembers)."
    )
    async def grant_history(self, info: RealmInfo) -> list[GrantRecord] | None:
        if not await info.context.perms().can(Action.EDIT_MEMBERS, self.row):
            return None
        G = models.GroupGrant
        async with info.context.db()() as session:
            rows = await session.scalars(
                select(G).where(G.group_id == self.row.id).order_by(G.granted_at, G.id)
            )
            return [GrantRecord.of(row) for row in rows]

    @strawberry.field(
        description="The evaluation of a semester (`2025-2026/1`); null where the viewer may "
        "not view the scores (viewScores: the group's managers, the parent's leader, the "
        "leaders' council)."
    )
    async def scoreboard(self, info: RealmInfo, semester: str) -> Scoreboard | None:
        if not SEMESTER_RE.match(semester):
            raise ClientError("Invalid semester: expected a name like 2025-2026/1")
        if not await info.context.perms().can(Action.VIEW_SCORES, self.row):
            return None
        semester_row = await info.context.load().semester_by_name.load(semester)
        if semester_row is None:
            raise ClientError(f"Unknown semester {semester}")
        return await build_scoreboard(info, self.row, semester_row)


@strawberry.type
class Query:
    @strawberry.field(
        description="Groups by name, optionally searched and filtered by purpose.",
        directives=[fanout("name")],
    )
    async def groups(
        self,
        info: RealmInfo,
        search: Annotated[
            str | None, strawberry.argument(description="Words to find in name or description.")
        ] = None,
        purpose: models.GroupPurpose | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Group]:
        window = page_window(first, after)
        if search is not None and len(search) > MAX_SEARCH_LENGTH:
            raise ClientError(f"`search` must be at most {MAX_SEARCH_LENGTH} characters")
        G = models.Group
        statement = select(G)
        visible = await info.context.perms().visible_group_ids()
        if visible is not None:
            statement = statement.where(G.id.in_(visible))
        if purpose is not None:
            statement = statement.where(G.purpose == purpose)
        if search:
            statement = statement.where(*contains_words((G.name, G.description), search))
        sessions = info.context.db()
        async with sessions() as session:
            rows = list(
                await session.scalars(
                    statement.order_by(codepoint_order(G.name), G.id)
                    .offset(window.offset)
                    .limit(window.limit + 1)
                )
            )

        async def count_total() -> int:
            async with sessions() as session:
                counted = await session.scalar(
                    statement.with_only_columns(func.count(G.id)).order_by(None)
                )
            return int(counted or 0)

        return build_connection([Group.of(info, r) for r in rows], window, count_total)

    @strawberry.field(
        description="A group by global ID; null if there is none.", directives=[owner("id")]
    )
    async def group(self, info: RealmInfo, id: strawberry.ID) -> Group | None:
        row = await info.context.load().group.load(info.context.local_id(id, "Group"))
        return await visible_group(info, row)

    @strawberry.field(
        description="A membership by global ID; null if there is none.",
        directives=[owner("id")],
    )
    async def membership(self, info: RealmInfo, id: strawberry.ID) -> Membership | None:
        row = await info.context.load().membership.load(info.context.local_id(id, "Membership"))
        return await visible_membership(info, row)

    @strawberry.field(
        description="The semesters by name (`2024-2025/2` before `2025-2026/1`: oldest first).",
        directives=[fanout("name")],
    )
    async def semesters(self, info: RealmInfo) -> list[Semester]:
        async with info.context.db()() as session:
            rows = await session.scalars(
                select(models.Semester).order_by(codepoint_order(models.Semester.name))
            )
            return [Semester.of(info, r) for r in rows]

    @strawberry.federation.field(
        description="The object with the global ID `id` (Relay): an object of a realm is "
        "resolved by that realm, a hub-owned one (a User) by the hub; null plus an error for a "
        "forged ID.",
        # Routed by the ID's realm; an ID of the hub may go to any realm, which answers with the
        # entity's reference for the router to complete from the hub.
        directives=[owner("id", hub_ids=True)],
    )
    async def node(self, info: RealmInfo, id: strawberry.ID) -> Node | None:
        return await resolve_node(info, id)


async def visible_group(info: RealmInfo, row: models.Group | None) -> Group | None:
    """``row`` as a Group if the viewer may view it (viewGroup), else None."""
    if row is None or not await info.context.perms().can(Action.VIEW_GROUP, row):
        return None
    return Group.of(info, row)


async def can_view_membership(info: RealmInfo, row: models.Membership | None) -> bool:
    """One's own memberships, and those of groups whose members the viewer may view."""
    if row is None:
        return False
    if info.context.viewer_id == row.user_id:
        return True
    group = await info.context.load().group.load(row.group_id)
    return await info.context.perms().can(Action.VIEW_MEMBERS, group)


async def visible_membership(info: RealmInfo, row: models.Membership | None) -> Membership | None:
    return Membership.of(info, row) if row is not None and await can_view_membership(
        info, row) else None


async def resolve_node(info: RealmInfo, value: str) -> Node | None:
    """The realm-owned object a global ID names, if it is this realm's."""
    try:
        gid = ids.decode(value)
    except ids.InvalidGlobalId as exc:
        raise ClientError(str(exc)) from None
    if gid.realm is None:
        if gid.type_name == "User":
            return User.of(gid.local_id)  # a hub entity: the router fetches it from the hub
        raise ClientError("Invalid ID: it does not name an object")
    if gid.realm != info.context.realm_id:
        raise ClientError("Invalid ID: it does not name an object of this realm")
    loaders = info.context.load()
    local = gid.local_id
    match gid.type_name:
        case "Group":
            return await visible_group(info, await loaders.group.load(local))
        case "Membership":
            return await visible_membership(info, await loaders.membership.load(local))
        case "Post":
            post = await loaders.post.load(local)
            if post is None:
                return None
            holder = await loaders.membership.load(post.membership_id)
            return Post.of(info, post) if await can_view_membership(info, holder) else None
        case "Semester":
            semester = await loaders.semester.load(local)
            return Semester.of(info, semester) if semester is not None else None
        case "Guideline":
            guideline = await loaders.guideline.load(local)
            return Guideline.of(info, guideline) if guideline is not None else None
        case "EntryRequest":
            entry = await loaders.entry_request.load(local)
            if entry is None:
                return None
            member = await loaders.membership.load(entry.membership_id)
            assert member is not None  # a composite foreign key guarantees it
            scored = await loaders.group.load(member.group_id)
            if not await info.context.perms().can(Action.VIEW_SCORES, scored):
                return None
            return EntryRequest(
                id=info.context.global_id("EntryRequest", entry.id),
                membership=Membership.of(info, member),
                user=User.of(member.user_id),
                card=entry.card,
                justification=entry.justification,
            )
    raise ClientError(f"Invalid ID: a {gid.type_name} is not an object of a realm")


def build_schema() -> SubgraphSchema:
    """The realm's federation schema (the same for every realm)."""
    from pek.realm.mutations import Mutation  # the mutations build on the types above

    return SubgraphSchema(
        query=Query,
        mutation=Mutation,
        types=[
            User, Group, Membership, Post, Semester, Guideline, EntryRequest, Realm, PageInfo,
        ],
    )
