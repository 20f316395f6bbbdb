"""retention: purge marks on audit payloads and runs; the files of every policy bundle version

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_payloads") as batch:
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("purge_rule", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("purge_entry", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_audit_payloads_tenant_created_at",
        "audit_payloads",
        ["tenant", "created_at"],
        unique=False,
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "policy_bundles",
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column(
            "files",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_policy_bundles")),
    )


def downgrade() -> None:
    op.drop_table("policy_bundles")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("purged_at")
    op.drop_index("ix_audit_payloads_tenant_created_at", table_name="audit_payloads")
    with op.batch_alter_table("audit_payloads") as batch:
        batch.drop_column("purge_entry")
        batch.drop_column("purge_rule")
        batch.drop_column("purged_at")
