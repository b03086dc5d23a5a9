"""profile columns edited by hand (kept over the provider's claims)

Revision ID: 0005_profile_edits
Revises: 0004_policies
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_profile_edits"
down_revision: str | None = "0004_policies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hub_users") as batch:
        batch.add_column(
            sa.Column("edited_fields", sa.String(length=500), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("hub_users") as batch:
        batch.drop_column("edited_fields")
