"""GOD on a group: the group's owner, and the audit trail of ownership grants

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("realm_groups") as batch:
        batch.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
    op.create_table(
        "realm_group_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("previous_user_id", sa.Integer(), nullable=True),
        sa.Column("granted_by", sa.Integer(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("realm_id", sa.String(length=63), nullable=False),
        sa.ForeignKeyConstraint(
            ["realm_id", "group_id"], ["realm_groups.realm_id", "realm_groups.id"],
            name="fk_realm_group_grants_group", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_realm_group_grants_group_id"), "realm_group_grants", ["group_id"], unique=False
    )
    op.create_index(
        op.f("ix_realm_group_grants_realm_id"), "realm_group_grants", ["realm_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_realm_group_grants_realm_id"), table_name="realm_group_grants")
    op.drop_index(op.f("ix_realm_group_grants_group_id"), table_name="realm_group_grants")
    op.drop_table("realm_group_grants")
    with op.batch_alter_table("realm_groups") as batch:
        batch.drop_column("owner_id")
