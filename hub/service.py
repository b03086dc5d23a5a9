"""The hub subgraph service: schema + database + HTTP app (see :class:`HubSubgraph`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pek.hub import models
from pek.hub.demo import seed_hub
from pek.hub.loaders import HubLoaders
from pek.hub.schema import HubContext, build_schema
from pek.schema.context import resolve_viewer
from pek.schema.subgraph import SubgraphSchema, SubgraphService

MIGRATIONS = str(Path(__file__).parent / "migrations")
VERSION_TABLE = "hub_alembic_version"


class HubSubgraph(SubgraphService):
    """The hub: users, profiles, privacy settings and the realm registry.

    ``start()`` creates the engine on ``settings.hub_database_url``, migrates, and seeds the
    demo users (and registers the configured realm) when ``settings.demo_data`` is set.
    """

    role = "hub"

    def build_schema(self) -> SubgraphSchema:
        return build_schema()

    def database_url(self) -> str:
        return self.settings.hub_database_url

    def migrations(self) -> tuple[str, str]:
        return MIGRATIONS, VERSION_TABLE

    def make_sessionmaker(self, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
        return async_sessionmaker(engine, expire_on_commit=False)

    async def seed_demo_data(self) -> None:
        realm = models.Realm(
            id=self.settings.realm_id,
            name=self.settings.realm_name,
            description=f"The {self.settings.realm_name} realm (demo).",
            url=self.settings.realm_url or None,
        )
        async with self.sessionmaker.begin() as session:
            await seed_hub(session, realm=realm)

    async def register_realm(
        self, realm_id: str, name: str, description: str | None = None, url: str | None = None
    ) -> None:
        """Add or update a realm of the registry (``Query.realms``)."""
        async with self.sessionmaker.begin() as session:
            row = await session.get(models.Realm, realm_id)
            if row is None:
                session.add(models.Realm(id=realm_id, name=name, description=description, url=url))
            else:
                row.name, row.description, row.url = name, description, url

    def make_context(self, headers: Mapping[str, str]) -> HubContext:
        return HubContext(
            settings=self.settings,
            viewer_id=resolve_viewer(self.settings, headers),
            headers=headers,
            sessions=self.sessionmaker,
            loaders=HubLoaders.create(self.sessionmaker),
        )
