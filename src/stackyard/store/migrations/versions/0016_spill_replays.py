"""The spill files' replay progress.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spill_replays",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_spill_replays"),
    )


def downgrade() -> None:
    op.drop_table("spill_replays")
