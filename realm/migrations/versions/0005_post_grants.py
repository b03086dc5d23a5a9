"""Post appointments in the grant audit trail

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("realm_group_grants") as batch:
        batch.add_column(sa.Column(
            "post_kind",
            sa.Enum("LEADER", "FORMER_LEADER", "TREASURER", "LEADER_ASSISTANT",
                    "EVALUATION_HELPER", "NEW_MEMBER", "GROUP_SPECIFIC", name="post_kind",
                    native_enum=False, length=32),
            nullable=True,
        ))


def downgrade() -> None:
    with op.batch_alter_table("realm_group_grants") as batch:
        batch.drop_column("post_kind")
