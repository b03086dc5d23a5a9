"""Alembic environment of the realm (version table ``realm_alembic_version``)."""

from pek.realm.models import Base
from pek.schema.migration_env import run

run(Base.metadata, default_version_table="realm_alembic_version")
