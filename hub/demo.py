"""Deterministic demo data of the hub: users with Hungarian names, profiles, privacy settings.

Users get the ids 1..N in creation order; the realm demo (:mod:`pek.realm.demo`) refers to
them by those ids, so both sides agree without talking to each other.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pek.hub import models

#: How many users the demo creates (the realm demo takes the same number).
DEMO_USER_COUNT = 300
_SEED = 20260901

FAMILY_NAMES = (
    "Nagy Kovács Tóth Szabó Horváth Varga Kiss Molnár Németh Farkas Balogh Papp Takács Juhász "
    "Lakatos Mészáros Oláh Simon Rácz Fekete Szilágyi Török Fehér Balázs Gál Kis Szűcs Kocsis "
    "Orsós Pintér Fodor Szalai Sipos Magyar Lukács Gulyás Biró Király Katona László Jakab Bogdán "
    "Balog Sándor Boros Fazekas Kelemen Antal Somogyi Orosz Fülöp Veres Budai Vincze Hegedűs"
).split()
GIVEN_NAMES_F = (
    "Anna Eszter Zsófia Réka Dóra Katalin Viktória Noémi Petra Boglárka Lilla Fanni Luca Hanna "
    "Kinga Júlia Nóra Orsolya Zsuzsanna Ágnes Bernadett Krisztina Tímea Csenge Emese"
).split()
GIVEN_NAMES_M = (
    "Bence Máté Levente Dávid Ádám Balázs Péter Gergő Tamás Dániel Zoltán Gábor Márton Áron "
    "Botond Csaba Kristóf Bálint Norbert Attila András Zsolt Barnabás Marcell Olivér"
).split()
NICKNAMES = (
    "Maci Zsebi Pöttöm Cica Bogyó Mókus Csiga Tücsök Süni Répa Manó Pocok Kefe Bubu Tigris "
    "Fifi Bagoly Róka Cipő Pityu Dzsoni Gombóc Zizi Pixel Kódex Lámpa Kávé Wifi Bájt"
).split()
CITIES = ("Budapest", "Debrecen", "Szeged", "Pécs", "Győr", "Miskolc", "Kecskemét", "Eger")
STREETS = ("Petőfi utca", "Kossuth Lajos utca", "Rákóczi út", "Ady Endre utca", "Fő tér")
RESIDENT_DORMS = (
    models.Dormitory.SCH,
    models.Dormitory.KARMAN,
    models.Dormitory.TETENY,
    models.Dormitory.BAROSS,
    models.Dormitory.BERCSENYI,
    models.Dormitory.VASARHELYI,
)


@dataclass(frozen=True)
class DemoRealm:
    """A realm the demo registers in the hub's realm registry."""

    id: str
    name: str
    description: str
    #: GraphQL endpoint (``http://...`` or ``in-process://<id>``); None: not known yet.
    url: str | None = None


#: The realms ``pek dev`` hosts (in-process), in display order.
DEMO_REALMS = (
    DemoRealm("hub", "Hub", "The dormitory-wide community: resorts, circles and their projects."),
    DemoRealm("kir", "KIR Dev", "The community's software developers and their teams."),
    DemoRealm("sch-events", "SCH Events", "The organisers of the community's big events."),
)


def demo_realm_name(realm_id: str) -> str:
    """The display name of a demo realm (the id itself for any other realm)."""
    return next((r.name for r in DEMO_REALMS if r.id == realm_id), realm_id)


def in_process_demo_realms(realm_ids: Sequence[str]) -> list[DemoRealm]:
    """Registry entries for realms hosted in this process (``in-process://<id>``)."""
    known = {r.id: r for r in DEMO_REALMS}
    return [
        DemoRealm(
            realm_id,
            known[realm_id].name if realm_id in known else realm_id,
            known[realm_id].description if realm_id in known else f"The {realm_id} realm.",
            f"in-process://{realm_id}",
        )
        for realm_id in realm_ids
    ]


def _ascii(value: str) -> str:
    return unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()


def demo_users(count: int = DEMO_USER_COUNT) -> list[models.User]:
    """The demo users with ids 1..count (the same list every time)."""
    rng = random.Random(_SEED)
    users: list[models.User] = []
    for local_id in range(1, count + 1):
        female = rng.random() < 0.4
        first = rng.choice(GIVEN_NAMES_F if female else GIVEN_NAMES_M)
        last = rng.choice(FAMILY_NAMES)
        username = f"{_ascii(first)}.{_ascii(last)}{local_id}"
        resident = rng.random() < 0.75
        dorm = rng.choice(RESIDENT_DORMS) if resident else rng.choice(
            (models.Dormitory.EXTERNAL, models.Dormitory.UNKNOWN)
        )
        users.append(
            models.User(
                id=local_id,
                subject=f"00000000-0000-4000-8000-{local_id:012d}",
                username=username,
                first_name=first,
                last_name=last,
                nickname=rng.choice(NICKNAMES) if rng.random() < 0.6 else None,
                avatar_url=f"https://avatars.example.org/{username}.png"
                if rng.random() < 0.5
                else None,
                email=f"{username}@example.org",
                cell_phone=f"+36 30 {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
                room_number=f"{rng.randint(1, 18)}{rng.randint(1, 30):02d}" if resident else None,
                dormitory=dorm,
                gender=models.Gender.FEMALE if female else models.Gender.MALE,
                date_of_birth=dt.date(
                    rng.randint(1995, 2007), rng.randint(1, 12), rng.randint(1, 28)
                ),
                home_address=f"{rng.randint(1000, 9999)} {rng.choice(CITIES)}, "
                f"{rng.choice(STREETS)} {rng.randint(1, 120)}.",
                webpage=f"https://{_ascii(last)}.example.org" if rng.random() < 0.2 else None,
                student_status=rng.choices(
                    (models.StudentStatus.ACTIVE, models.StudentStatus.GRADUATED,
                     models.StudentStatus.OTHER),
                    weights=(80, 15, 5),
                )[0],
            )
        )
    return users


def demo_privacy(users: list[models.User]) -> list[models.PrivacySetting]:
    rng = random.Random(_SEED + 1)
    settings: list[models.PrivacySetting] = []
    for user in users:
        for attribute in models.PrivacyAttribute:
            settings.append(
                models.PrivacySetting(
                    user_id=user.id, attribute=attribute, visible=rng.random() < 0.6
                )
            )
    return settings


def demo_external_accounts(users: list[models.User]) -> list[models.ExternalAccount]:
    rng = random.Random(_SEED + 2)
    accounts: list[models.ExternalAccount] = []
    for user in users:
        for protocol in ("GITHUB", "JABBER", "SKYPE"):
            if rng.random() < 0.15:
                accounts.append(
                    models.ExternalAccount(
                        user_id=user.id, protocol=protocol, account_name=user.username
                    )
                )
    return accounts


async def seed_hub(
    session: AsyncSession,
    *,
    user_count: int = DEMO_USER_COUNT,
    realms: Sequence[DemoRealm] = (),
) -> bool:
    """Create the demo data unless the hub already has users; return True if it seeded.

    ``realms`` are registered (in that display order) unless the registry has them already.
    """
    existing = await session.scalar(select(func.count(models.User.id)))
    if existing:
        return False
    users = demo_users(user_count)
    # The last demo user is the top-level admin (manages policies, creates top-level groups).
    users[-1].is_admin = True
    session.add_all(users)
    await session.flush()
    session.add_all(demo_privacy(users))
    session.add_all(demo_external_accounts(users))
    for position, realm in enumerate(realms):
        if await session.get(models.Realm, realm.id) is None:
            session.add(models.Realm(
                id=realm.id, name=realm.name, description=realm.description, url=realm.url,
                position=position,
            ))
    await session.flush()
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        # Explicit ids do not advance the serial sequence; later inserts would collide.
        await session.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('hub_users', 'id'), "
                "(SELECT max(id) FROM hub_users))"
            )
        )
    return True
