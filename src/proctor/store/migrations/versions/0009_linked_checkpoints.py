"""audit: checkpoints linked into a chain, refused signatures counted, entries by time

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Checkpoints signed before this revision keep NULL here and verify as before.
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.add_column(sa.Column("number", sa.BigInteger().with_variant(sa.Integer(), "sqlite")))
        batch.add_column(sa.Column("prev_hash", sa.String(length=64)))
    op.create_table(
        "audit_refusals",
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("last_at", sa.String(length=40), nullable=False),
        sa.Column("last_reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", name=op.f("pk_audit_refusals")),
    )
    op.create_index(
        "ix_audit_entries_tenant_created_at",
        "audit_entries",
        ["tenant", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_audit_entries_tenant_created_at", table_name="audit_entries")
    op.drop_table("audit_refusals")
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.drop_column("prev_hash")
        batch.drop_column("number")
