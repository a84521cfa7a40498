"""Tuned models' weights (adapters and whole models), in parts.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "finetune_weights",
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["finetune_jobs.id"],
            name="fk_finetune_weights_job_id_finetune_jobs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name", "part", name="pk_finetune_weights"),
    )


def downgrade() -> None:
    op.drop_table("finetune_weights")
