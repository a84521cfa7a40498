"""When a fine-tuning job's model was deleted (``DELETE /v1/models/{id}``), so that no
instance serves it again.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("finetune_jobs") as batch:
        batch.add_column(sa.Column("model_deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("finetune_jobs") as batch:
        batch.drop_column("model_deleted_at")
