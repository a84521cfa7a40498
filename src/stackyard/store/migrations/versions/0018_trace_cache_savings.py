"""A trace records a cache hit's tier (exact or semantic) and what the hit saved (the first
answer's upstream cost less the hit's price), so that the console and ``stackyard cache stats``
show savings by tier, team and model, not only hit counts.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("traces") as batch:
        batch.add_column(sa.Column("cache_tier", sa.String(16), nullable=True))
        batch.add_column(
            sa.Column("saved_usd", sa.Float(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("traces") as batch:
        batch.drop_column("saved_usd")
        batch.drop_column("cache_tier")
