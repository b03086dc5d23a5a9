"""realm registry columns, versions, federation index

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hub_realms") as batch_op:
        batch_op.add_column(
            sa.Column("timeout_ms", sa.Integer(), server_default="5000", nullable=False)
        )
        batch_op.add_column(
            sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(sa.Column("position", sa.Integer(), server_default="0", nullable=False))
    versions = op.create_table(
        "hub_versions",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(
        versions, [{"name": "realms", "version": 1}, {"name": "federation_index", "version": 1}]
    )
    op.create_table(
        "hub_federation_index",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("realm_id", sa.String(length=63), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "realm_id"),
    )
    op.create_index(
        op.f("ix_hub_federation_index_realm_id"), "hub_federation_index", ["realm_id"]
    )
    op.create_table(
        "hub_index_realms",
        sa.Column("realm_id", sa.String(length=63), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("realm_id"),
    )
    op.create_table(
        "hub_index_nonces",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce"),
    )
    op.create_index(op.f("ix_hub_index_nonces_seen_at"), "hub_index_nonces", ["seen_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_hub_index_nonces_seen_at"), table_name="hub_index_nonces")
    op.drop_table("hub_index_nonces")
    op.drop_table("hub_index_realms")
    op.drop_index(op.f("ix_hub_federation_index_realm_id"), table_name="hub_federation_index")
    op.drop_table("hub_federation_index")
    op.drop_table("hub_versions")
    with op.batch_alter_table("hub_realms") as batch_op:
        batch_op.drop_column("position")
        batch_op.drop_column("enabled")
        batch_op.drop_column("timeout_ms")
