"""Evaluation runs (experiments), for the console and the prompts' evaluation gate.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("target", sa.String(400), nullable=False),
        sa.Column("prompt", sa.String(200), nullable=True),
        sa.Column("prompt_version", sa.Integer(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("baseline_id", sa.String(40), nullable=True),
        sa.Column("team_id", sa.String(40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("run", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_eval_runs"),
    )
    op.create_index("ix_eval_runs_name_created", "eval_runs", ["name", "created_at"])
    op.create_index("ix_eval_runs_prompt", "eval_runs", ["prompt", "prompt_version"])


def downgrade() -> None:
    op.drop_index("ix_eval_runs_prompt", "eval_runs")
    op.drop_index("ix_eval_runs_name_created", "eval_runs")
    op.drop_table("eval_runs")
