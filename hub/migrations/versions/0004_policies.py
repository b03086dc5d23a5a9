"""policies: statements with their audit trail, admins, published group memberships

Revision ID: 0004_policies
Revises: 0003_auth
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_policies"
down_revision: str | None = "0003_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hub_users") as batch:
        batch.add_column(
            sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "hub_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("actions", sa.String(length=500), nullable=False),
        sa.Column("grantee", sa.String(length=32), nullable=False),
        sa.Column("grantee_user_id", sa.Integer(), nullable=True),
        sa.Column("grantee_role", sa.String(length=32), nullable=True),
        sa.Column("realm_id", sa.String(length=63), nullable=True),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("subtree", sa.Boolean(), nullable=False),
        sa.Column("target_user_id", sa.Integer(), nullable=True),
        sa.Column("granted_by", sa.Integer(), nullable=True),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_by", sa.Integer(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_hub_policies_realm_id", "hub_policies", ["realm_id"])
    op.create_table(
        "hub_policy_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_hub_policy_events_policy_id", "hub_policy_events", ["policy_id"])
    op.create_table(
        "hub_index_groups",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("realm_id", sa.String(length=63), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "realm_id", "group_id"),
    )
    op.create_index("ix_hub_index_groups_group_id", "hub_index_groups", ["group_id"])


def downgrade() -> None:
    op.drop_index("ix_hub_index_groups_group_id", table_name="hub_index_groups")
    op.drop_table("hub_index_groups")
    op.drop_index("ix_hub_policy_events_policy_id", table_name="hub_policy_events")
    op.drop_table("hub_policy_events")
    op.drop_index("ix_hub_policies_realm_id", table_name="hub_policies")
    op.drop_table("hub_policies")
    with op.batch_alter_table("hub_users") as batch:
        batch.drop_column("is_admin")
