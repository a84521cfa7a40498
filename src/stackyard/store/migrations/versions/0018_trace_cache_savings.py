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


def _columns() -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns("traces")}


# Plain ALTER TABLE statements (SQLite has had ADD and DROP COLUMN since 3.35), each only when
# needed: SQLite runs DDL outside the transaction, so a downgrade that fails at an earlier
# migration leaves this one's columns dropped while the version still names it.
def upgrade() -> None:
    present = _columns()
    with op.batch_alter_table("traces", recreate="never") as batch:
        if "cache_tier" not in present:
            batch.add_column(sa.Column("cache_tier", sa.String(16), nullable=True))
        if "saved_usd" not in present:
            batch.add_column(
                sa.Column("saved_usd", sa.Float(), nullable=False, server_default=sa.text("0"))
            )


def downgrade() -> None:
    present = _columns()
    with op.batch_alter_table("traces", recreate="never") as batch:
        for column in ("saved_usd", "cache_tier"):
            if column in present:
                batch.drop_column(column)
