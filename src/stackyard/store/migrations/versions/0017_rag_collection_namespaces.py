"""RAG collection names are unique per team, not across the gateway: one team could learn
another's collection names from a 409 on create. The master key's own collections (no team)
keep unique names through a partial unique index, since NULL team ids never collide in a
unique constraint.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

MASTER_NAMES = sa.text("team_id IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("rag_collections") as batch:
        batch.drop_constraint("uq_rag_collections_name", type_="unique")
        batch.create_unique_constraint("uq_rag_collections_team_id_name", ["team_id", "name"])
    op.create_index(
        "uq_rag_collections_master_name",
        "rag_collections",
        ["name"],
        unique=True,
        sqlite_where=MASTER_NAMES,
        postgresql_where=MASTER_NAMES,
    )


def downgrade() -> None:
    shared = op.get_bind().execute(
        sa.text("SELECT name FROM rag_collections GROUP BY name HAVING COUNT(*) > 1")
    )
    names = sorted(row[0] for row in shared)
    if names:
        raise RuntimeError(
            "cannot go back to gateway-wide collection names: several teams have "
            f"{', '.join(names)}; rename or delete all but one of each first"
        )
    op.drop_index("uq_rag_collections_master_name", table_name="rag_collections")
    with op.batch_alter_table("rag_collections") as batch:
        batch.drop_constraint("uq_rag_collections_team_id_name", type_="unique")
        batch.create_unique_constraint("uq_rag_collections_name", ["name"])
