"""Each spend row's entry id, so that the spend journal's replay writes a row at most once.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("spend_log") as batch:
        batch.add_column(sa.Column("entry_id", sa.String(32), nullable=True))
    op.create_index("uq_spend_log_entry_id", "spend_log", ["entry_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_spend_log_entry_id", "spend_log")
    with op.batch_alter_table("spend_log") as batch:
        batch.drop_column("entry_id")
