"""RAG collections.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rag_collections",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("team_id", sa.String(40), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("active_index", sa.String(300), nullable=True),
        sa.Column("building_index", sa.String(300), nullable=True),
        sa.Column("last_sync", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rag_collections"),
        sa.UniqueConstraint("name", name="uq_rag_collections_name"),
    )


def downgrade() -> None:
    op.drop_table("rag_collections")
