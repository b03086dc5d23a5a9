"""The realm subgraph service: schema + realm-scoped database + HTTP app."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pek.hub.demo import DEMO_USER_COUNT
from pek.realm.demo import seed_realm
from pek.realm.loaders import RealmLoaders
from pek.realm.schema import RealmContext, build_schema
from pek.realm.scoping import realm_sessionmaker
from pek.schema.context import resolve_viewer
from pek.schema.subgraph import SubgraphSchema, SubgraphService
from pek.settings import Settings

MIGRATIONS = str(Path(__file__).parent / "migrations")
VERSION_TABLE = "realm_alembic_version"


class RealmSubgraph(SubgraphService):
    """One realm: groups, memberships, posts, semesters and evaluations of ``settings.realm_id``.

    Its database (``settings.realm_database_url``) may hold other realms too; every session
    of this service is bound to its own realm (:mod:`pek.realm.scoping`).
    """

    role = "realm"

    def __init__(self, settings: Settings, *, demo_user_count: int = DEMO_USER_COUNT) -> None:
        #: The demo refers to the hub's demo users 1..demo_user_count.
        self.demo_user_count = demo_user_count
        super().__init__(settings)

    @property
    def realm_id(self) -> str:
        return self.settings.realm_id

    def build_schema(self) -> SubgraphSchema:
        return build_schema()

    def database_url(self) -> str:
        return self.settings.realm_database_url

    def migrations(self) -> tuple[str, str]:
        return MIGRATIONS, VERSION_TABLE

    def make_sessionmaker(self, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
        return realm_sessionmaker(engine, self.settings.realm_id)

    async def seed_demo_data(self) -> None:
        async with self.sessionmaker.begin() as session:
            await seed_realm(session, self.settings.realm_id, self.demo_user_count)

    def make_context(self, headers: Mapping[str, str]) -> RealmContext:
        return RealmContext(
            settings=self.settings,
            viewer_id=resolve_viewer(self.settings, headers),
            headers=headers,
            realm_id=self.settings.realm_id,
            sessions=self.sessionmaker,
            loaders=RealmLoaders.create(self.sessionmaker),
        )
