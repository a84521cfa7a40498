"""Organisations (with models, limits and a budget, like teams), users' model lists, the
organisation on each spend row, and the spend log's daily rollup (filled from the log).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OWNERS = ("organization_id", "team_id", "user_id", "key_id")
SUMS = (
    "requests",
    "errors",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
)


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("models", sa.JSON(), nullable=True),
        sa.Column("rpm", sa.Integer(), nullable=True),
        sa.Column("tpm", sa.Integer(), nullable=True),
        sa.Column("budget_usd", sa.Float(), nullable=True),
        sa.Column("budget_period", sa.String(10), nullable=False),
        sa.Column("budget_soft", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_organizations"),
        sa.UniqueConstraint("name", name="uq_organizations_name"),
    )
    # The free-text ``organization`` column was never set by any API: it gives way to a
    # reference to the new table.
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("organization")
        batch.add_column(sa.Column("organization_id", sa.String(40), nullable=True))
        batch.create_foreign_key(
            "fk_teams_organization_id_organizations",
            "organizations",
            ["organization_id"],
            ["id"],
        )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("models", sa.JSON(), nullable=True))
    with op.batch_alter_table("spend_log") as batch:
        batch.add_column(sa.Column("organization_id", sa.String(40), nullable=True))
    op.create_table(
        "spend_daily",
        sa.Column("day", sa.Date(), nullable=False),
        *(sa.Column(owner, sa.String(40), nullable=False) for owner in OWNERS),
        sa.Column("model", sa.String(200), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in SUMS[:5]),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("day", *OWNERS, "model", name="pk_spend_daily"),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    day = "substr(created_at, 1, 10)" if sqlite else "(created_at AT TIME ZONE 'UTC')::date"
    op.execute(
        f"INSERT INTO spend_daily (day, {', '.join(OWNERS)}, model, {', '.join(SUMS)}) "
        f"SELECT {day}, '', COALESCE(team_id, ''), COALESCE(user_id, ''), "
        "COALESCE(key_id, ''), model, COUNT(*), "
        "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END), SUM(prompt_tokens), "
        "SUM(completion_tokens), SUM(cost_usd), SUM(latency_ms) "
        "FROM spend_log GROUP BY 1, 2, 3, 4, 5, 6"
    )


def downgrade() -> None:
    op.drop_table("spend_daily")
    with op.batch_alter_table("spend_log") as batch:
        batch.drop_column("organization_id")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("models")
    with op.batch_alter_table("teams") as batch:
        batch.drop_constraint("fk_teams_organization_id_organizations", type_="foreignkey")
        batch.drop_column("organization_id")
        batch.add_column(
            sa.Column("organization", sa.String(200), nullable=False, server_default="default")
        )
    op.drop_table("organizations")
