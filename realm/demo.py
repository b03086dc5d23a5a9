"""Deterministic demo data of one realm: a group tree, memberships, posts, evaluations.

The random generator is seeded from the realm id, so every realm gets different (but always
the same) groups and members; users are the hub's demo users ``1..user_count``.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pek.realm import models
from pek.realm.models import GroupPurpose, MembershipStatus, PostKind

RESORTS = (
    ("Simonyi Károly Szakkollégium", GroupPurpose.PROFESSIONAL),
    ("Kultúr Reszort", GroupPurpose.CULTURE),
    ("Sport Reszort", GroupPurpose.SPORT),
    ("Szolgáltatási Reszort", GroupPurpose.SERVICE),
    ("Közéleti Reszort", GroupPurpose.COMMITTEE),
    ("Rendezvény Reszort", GroupPurpose.EVENT),
    ("Kollégiumi Szintek", GroupPurpose.FLOOR),
    ("Schönherz Lovagrend", GroupPurpose.RESORT),
)
CIRCLE_WORDS = (
    "Kir-Dev", "Lego", "Budavári Schönherz Stúdió", "Schönherz Elektronikai Műhely", "Fotókör",
    "Kosárkör", "Röplabda Kör", "Szauna Kör", "Konyha Kör", "Mozi Kör", "Tánckör", "Kávézó",
    "Zenekar", "Társasjáték Kör", "Sakk Kör", "Hegymászó Kör", "Robotika Kör", "Hallgatói Lap",
    "Rádió", "Nyomda", "Kertész Kör", "Barkács Kör", "Szerepjáték Kör", "Borkör", "Biciklis Kör",
    "Vívókör", "Jóga Kör", "Asztalitenisz Kör", "Filmklub", "Esport Kör", "Szerviz Kör",
)
PROJECT_WORDS = (
    "Gólyatábor", "Schönherz Qpa", "Szakmai Hét", "Nyári Tábor", "Weboldal Projekt",
    "Felújítás", "Bál", "Kupa", "Hackathon", "Kiállítás", "Jótékonysági Est", "Workshop",
)


@dataclass(frozen=True)
class Catalogue:
    """The group names a realm's demo draws from: top-level groups, circles, project words."""

    resorts: tuple[tuple[str, GroupPurpose], ...]
    circles: tuple[str, ...]
    projects: tuple[str, ...]


#: The dormitory-wide community (the default, and the "hub" realm).
SCH = Catalogue(RESORTS, CIRCLE_WORDS, PROJECT_WORDS)
#: A software-development circle with its teams.
KIR_DEV = Catalogue(
    resorts=(
        ("Kir-Dev Fejlesztőkör", GroupPurpose.PROFESSIONAL),
        ("Kir-Dev Üzemeltetés", GroupPurpose.SERVICE),
        ("Kir-Dev Oktatás", GroupPurpose.PROFESSIONAL),
        ("Kir-Dev Közösség", GroupPurpose.CULTURE),
        ("Kir-Dev Vezetőség", GroupPurpose.COMMITTEE),
        ("Kir-Dev Projektek", GroupPurpose.PROJECT),
    ),
    circles=(
        "PéK csapat", "SCH Pincér csapat", "Körök Weboldal csapat", "Mobil csapat",
        "Frontend műhely", "Backend műhely", "DevOps kör", "Biztonsági kör", "Adatbázis kör",
        "UX műhely", "Tesztelő kör", "Nyílt forráskód kör", "Hackathon szervezők",
        "Mentorprogram", "Tech Talk szervezők", "Gólyaképzés", "Dokumentációs kör",
        "Monitoring csapat", "Hálózati kör", "Szerverterem csapat", "API műhely",
    ),
    projects=(
        "Átírás", "Migráció", "Hackathon", "Tanfolyam", "Release", "Biztonsági audit",
        "Workshop", "Prototípus",
    ),
)
#: The organisers of the community's events.
SCH_EVENTS = Catalogue(
    resorts=(
        ("Rendezvényszervezők", GroupPurpose.EVENT),
        ("Schönherz Qpa Szervezőség", GroupPurpose.EVENT),
        ("Gólyatábor Szervezőség", GroupPurpose.EVENT),
        ("Szakmai Hét Szervezőség", GroupPurpose.PROFESSIONAL),
        ("Sportnapok Szervezőség", GroupPurpose.SPORT),
        ("Kulturális Estek", GroupPurpose.CULTURE),
    ),
    circles=(
        "Jegyértékesítés", "Hangtechnika", "Fénytechnika", "Színpadépítés", "Dekoráció",
        "Büfé", "Rendezői csapat", "Fotós csapat", "Videós csapat", "Marketing",
        "Szponzoráció", "Programszervezés", "Önkéntes koordináció", "Logisztika",
        "Elsősegély", "Arculat", "Fellépők kapcsolattartása", "Vetélkedő szervezők",
        "Sportversenyek", "Koncertszervezés", "Akkreditáció",
    ),
    projects=(
        "Tavaszi Fesztivál", "Őszi Bál", "Gólyabál", "Qpa", "Koncert", "Kupa", "Kiállítás",
        "Filmest",
    ),
)
#: The catalogue of each demo realm; any other realm gets :data:`SCH`.
CATALOGUES = {"hub": SCH, "kir": KIR_DEV, "sch-events": SCH_EVENTS}

GROUP_SPECIFIC_TITLES = ("DJ", "Webmester", "Fotós", "Hangtechnikus", "Szakács", "Edző")
GUIDELINES = (
    ("Rendezvényszervezés", models.GuidelineCategory.WORK, 15),
    ("Heti ügyelet", models.GuidelineCategory.WORK, 10),
    ("Projektmunka", models.GuidelineCategory.WORK, 20),
    ("Körvezetés", models.GuidelineCategory.RESPONSIBILITY, 20),
    ("Gazdasági feladatok", models.GuidelineCategory.RESPONSIBILITY, 10),
)
SEMESTERS = (
    ("2024-2025/2", dt.date(2025, 2, 1), dt.date(2025, 6, 30), models.Season.OFF),
    ("2025-2026/1", dt.date(2025, 9, 1), dt.date(2026, 1, 31), models.Season.JUDGING),
    ("2025-2026/2", dt.date(2026, 2, 1), dt.date(2026, 6, 30), models.Season.SUBMISSION),
)
JUSTIFICATIONS = (
    "Egész félévben kiemelkedő munkát végzett a kör rendezvényein.",
    "Megszervezte a félév legnagyobb rendezvényét.",
    "Folyamatosan segítette az újoncok beilleszkedését.",
    "Átvette a kör gazdasági ügyeinek intézését.",
)


def _day_between(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randint(0, max(0, (end - start).days)))


async def seed_realm(
    session: AsyncSession, realm_id: str, user_count: int, *, realm_name: str | None = None
) -> bool:
    """Create the demo data of ``realm_id`` unless it has groups; return True if it seeded.

    ``session`` must be bound to ``realm_id`` (see :func:`pek.realm.scoping.realm_sessionmaker`).
    The group names come from the realm's :data:`CATALOGUES` entry.
    """
    if await session.scalar(select(func.count(models.Group.id))):
        return False
    catalogue = CATALOGUES.get(realm_id, SCH)
    community = realm_name or realm_id
    rng = random.Random(f"pek-demo-realm:{realm_id}")
    today = dt.date(2025, 12, 1)

    # The group tree: resorts -> circles -> projects.
    resorts = [
        models.Group(
            name=name,
            description=f"A(z) {name}: a(z) {community} közösség része.",
            purpose=purpose,
            founded_at=dt.date(rng.randint(1970, 2005), rng.randint(1, 12), 1),
            users_can_apply=False,
        )
        for name, purpose in rng.sample(
            catalogue.resorts, rng.randint(5, len(catalogue.resorts))
        )
    ]
    session.add_all(resorts)
    await session.flush()
    circle_names = rng.sample(catalogue.circles, len(catalogue.circles))
    circles: list[models.Group] = []
    for resort in resorts:
        for _ in range(rng.randint(3, 5)):
            if not circle_names:
                break
            name = circle_names.pop()
            circles.append(
                models.Group(
                    name=name,
                    description=f"{name}: a {resort.name} köre.",
                    purpose=GroupPurpose.CIRCLE,
                    parent_id=resort.id,
                    founded_at=dt.date(rng.randint(1985, 2020), rng.randint(1, 12), 1),
                    webpage=f"https://{realm_id}.example.org/{len(circles) + 1}",
                    mailing_list=f"kor{len(circles) + 1}@{realm_id}.example.org",
                    users_can_apply=rng.random() < 0.8,
                    archived=rng.random() < 0.05,
                )
            )
    session.add_all(circles)
    await session.flush()
    projects: list[models.Group] = []
    for circle in circles:
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            year = rng.randint(2021, 2025)
            name = f"{circle.name} {rng.choice(catalogue.projects)} {year}"
            if any(p.name == name for p in projects):
                continue
            projects.append(
                models.Group(
                    name=name,
                    description=f"A(z) {circle.name} projektje, {year}.",
                    purpose=GroupPurpose.PROJECT,
                    parent_id=circle.id,
                    founded_at=dt.date(year, rng.randint(1, 12), 1),
                    users_can_apply=False,
                    archived=year < 2024,
                )
            )
    session.add_all(projects)
    await session.flush()
    groups = resorts + circles + projects

    # Memberships with their status history.
    memberships: list[tuple[models.Group, models.Membership]] = []
    for group in groups:
        size = rng.randint(4, 8) if group.purpose is GroupPurpose.PROJECT else rng.randint(8, 30)
        for user_id in rng.sample(range(1, user_count + 1), min(size, user_count)):
            joined = _day_between(rng, dt.date(2018, 9, 1), dt.date(2025, 10, 1))
            membership = models.Membership(
                group_id=group.id, user_id=user_id, joined_at=joined, status=MembershipStatus.NEWBIE
            )
            memberships.append((group, membership))
    session.add_all([m for _, m in memberships])
    await session.flush()

    periods: list[models.MembershipStatusPeriod] = []
    posts: list[models.Post] = []
    active_by_group: dict[int, list[models.Membership]] = {}
    for group, membership in memberships:
        since = membership.joined_at
        history = [MembershipStatus.NEWBIE]
        roll = rng.random()
        if roll > 0.1:
            history.append(MembershipStatus.ACTIVE)
        if roll > 0.7 and since < dt.date(2024, 1, 1):
            history.append(MembershipStatus.FORMER)
        if roll > 0.93 and since < dt.date(2022, 1, 1):
            history.append(MembershipStatus.ARCHIVED)
        for index, status in enumerate(history):
            last = index == len(history) - 1
            until = None if last else min(today, since + dt.timedelta(days=rng.randint(30, 700)))
            periods.append(
                models.MembershipStatusPeriod(
                    membership_id=membership.id, status=status, since=since, until=until
                )
            )
            if until is not None:
                since = until
        membership.status = history[-1]
        if membership.status is MembershipStatus.ACTIVE:
            active_by_group.setdefault(group.id, []).append(membership)
        if membership.status is MembershipStatus.FORMER and rng.random() < 0.2:
            posts.append(
                models.Post(membership_id=membership.id, kind=PostKind.FORMER_LEADER, since=since)
            )

    # Every group gets a leader (an active member; one is activated if there is none).
    for group in groups:
        active = active_by_group.get(group.id)
        if not active:
            membership = next(m for g, m in memberships if g.id == group.id)
            membership.status = MembershipStatus.ACTIVE
            for period in periods:
                if period.membership_id == membership.id and period.until is None:
                    period.until = today - dt.timedelta(days=60)
            periods.append(
                models.MembershipStatusPeriod(
                    membership_id=membership.id,
                    status=MembershipStatus.ACTIVE,
                    since=today - dt.timedelta(days=60),
                )
            )
            active = active_by_group[group.id] = [membership]
        staff = rng.sample(active, min(len(active), 4))
        kinds = (
            PostKind.LEADER, PostKind.TREASURER, PostKind.LEADER_ASSISTANT,
            PostKind.EVALUATION_HELPER,
        )
        for membership, kind in zip(staff, kinds, strict=False):
            posts.append(
                models.Post(
                    membership_id=membership.id,
                    kind=kind,
                    since=_day_between(rng, membership.joined_at, today),
                )
            )
        for membership in active:
            if membership.joined_at > dt.date(2025, 2, 1):
                posts.append(
                    models.Post(
                        membership_id=membership.id, kind=PostKind.NEW_MEMBER,
                        since=membership.joined_at,
                    )
                )
        if rng.random() < 0.4:
            membership = rng.choice(active)
            posts.append(
                models.Post(
                    membership_id=membership.id,
                    kind=PostKind.GROUP_SPECIFIC,
                    title=rng.choice(GROUP_SPECIFIC_TITLES),
                    since=_day_between(rng, membership.joined_at, today),
                )
            )
    session.add_all(periods)
    session.add_all(posts)

    # Two semesters of evaluations.
    semesters = [
        models.Semester(name=name, starts_on=start, ends_on=end, season=season)
        for name, start, end, season in SEMESTERS
    ]
    session.add_all(semesters)
    await session.flush()
    for semester in semesters:
        current = semester.season is not models.Season.OFF
        for group in groups:
            if group.archived:
                continue
            guidelines = [
                models.Guideline(
                    group_id=group.id, semester_id=semester.id, name=name, category=category,
                    max_per_member=cap,
                )
                for name, category, cap in rng.sample(GUIDELINES, rng.randint(2, 4))
            ]
            session.add_all(guidelines)
            if current:
                point_status = rng.choice(
                    (models.ReviewStatus.NOT_SUBMITTED, models.ReviewStatus.PENDING,
                     models.ReviewStatus.PENDING)
                )
            else:
                point_status = rng.choice(
                    (models.ReviewStatus.ACCEPTED,) * 4 + (models.ReviewStatus.REJECTED,)
                )
            if point_status is models.ReviewStatus.NOT_SUBMITTED:
                continue
            entry_status = point_status
            evaluation = models.Evaluation(
                group_id=group.id,
                semester_id=semester.id,
                point_status=point_status,
                entry_status=entry_status,
                explanation="A pontok nincsenek kellően indokolva."
                if point_status is models.ReviewStatus.REJECTED
                else None,
                submitted_at=dt.datetime.combine(
                    semester.ends_on - dt.timedelta(days=rng.randint(1, 20)),
                    dt.time(12, 0),
                    tzinfo=dt.UTC,
                ),
            )
            if point_status in (models.ReviewStatus.ACCEPTED, models.ReviewStatus.REJECTED):
                assert evaluation.submitted_at is not None
                evaluation.judged_at = evaluation.submitted_at + dt.timedelta(days=7)
            session.add(evaluation)
            await session.flush()
            scored = active_by_group.get(group.id, [])
            for membership in scored:
                for guideline in guidelines:
                    if rng.random() < 0.7:
                        session.add(
                            models.PointEntry(
                                evaluation_id=evaluation.id,
                                guideline_id=guideline.id,
                                membership_id=membership.id,
                                # Sometimes above the cap: the read model shows the capping.
                                points=rng.randint(0, guideline.max_per_member + 5),
                            )
                        )
            for membership in rng.sample(scored, min(len(scored), rng.randint(0, 3))):
                session.add(
                    models.EntryRequest(
                        evaluation_id=evaluation.id,
                        membership_id=membership.id,
                        card=rng.choice(list(models.EntryCard)),
                        justification=rng.choice(JUSTIFICATIONS),
                    )
                )
    await session.flush()
    return True
