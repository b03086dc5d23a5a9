"""The evaluation workflow: who submitted and judged an evaluation, its version, and the
archive of judged versions

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUS = sa.Enum(
    "NOT_SUBMITTED", "PENDING", "ACCEPTED", "REJECTED", name="review_status",
    native_enum=False, length=32,
)


def upgrade() -> None:
    with op.batch_alter_table("realm_evaluations") as batch:
        batch.add_column(sa.Column("submitted_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("judged_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("judged_by", sa.Integer(), nullable=True))
    op.create_table(
        "realm_evaluation_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("point_status", _STATUS, nullable=False),
        sa.Column("entry_status", _STATUS, nullable=False),
        sa.Column("explanation", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_by", sa.Integer(), nullable=True),
        sa.Column("judged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("judged_by", sa.Integer(), nullable=True),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_by", sa.Integer(), nullable=False),
        sa.Column("realm_id", sa.String(length=63), nullable=False),
        sa.ForeignKeyConstraint(
            ["realm_id", "evaluation_id"],
            ["realm_evaluations.realm_id", "realm_evaluations.id"],
            name="fk_realm_eval_versions_evaluation", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("realm_id", "evaluation_id", "version", name="uq_realm_eval_versions"),
    )
    op.create_index(
        op.f("ix_realm_evaluation_versions_evaluation_id"), "realm_evaluation_versions",
        ["evaluation_id"], unique=False,
    )
    op.create_index(
        op.f("ix_realm_evaluation_versions_realm_id"), "realm_evaluation_versions",
        ["realm_id"], unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_realm_evaluation_versions_realm_id"), table_name="realm_evaluation_versions"
    )
    op.drop_index(
        op.f("ix_realm_evaluation_versions_evaluation_id"), table_name="realm_evaluation_versions"
    )
    op.drop_table("realm_evaluation_versions")
    with op.batch_alter_table("realm_evaluations") as batch:
        batch.drop_column("judged_by")
        batch.drop_column("judged_at")
        batch.drop_column("version")
        batch.drop_column("submitted_by")
