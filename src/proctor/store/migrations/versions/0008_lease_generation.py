"""runs: the lease generation, a fencing token for every write of the worker that holds it;
budget holds: each model call's reserved worst case, so a dead worker's hold is released

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("lease_generation", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "budget_holds",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column(
            "scopes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("nano_usd", sa.BigInteger(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_holds")),
    )
    op.create_index(op.f("ix_budget_holds_run_id"), "budget_holds", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_budget_holds_run_id"), table_name="budget_holds")
    op.drop_table("budget_holds")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("lease_generation")
