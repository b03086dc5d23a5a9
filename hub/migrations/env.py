"""Alembic environment of the hub (version table ``hub_alembic_version``)."""

from pek.hub.models import Base
from pek.schema.migration_env import run

run(Base.metadata, default_version_table="hub_alembic_version")
