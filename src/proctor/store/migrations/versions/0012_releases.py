"""releases: what defines an agent's behaviour, hashed; release_channels: which release
serves stable, canary, shadow and dry-run traffic; shadow_runs and dry_run_decisions: what
a candidate did beside live traffic; runs: the release each run was opened under

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("manifest", JSON, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_releases")),
    )
    op.create_index(op.f("ix_releases_digest"), "releases", ["digest"], unique=False)
    op.create_table(
        "release_channels",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("release", sa.String(length=64), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["release"], ["releases.id"], name=op.f("fk_release_channels_release_releases")
        ),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_release_channels")),
    )
    op.create_table(
        "shadow_runs",
        sa.Column("live_run", sa.String(length=64), nullable=False),
        sa.Column("candidate", sa.String(length=64), nullable=False),
        sa.Column("shadow_run", sa.String(length=64), nullable=False),
        sa.Column("comparison", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("live_run", name=op.f("pk_shadow_runs")),
    )
    op.create_index(op.f("ix_shadow_runs_candidate"), "shadow_runs", ["candidate"], unique=False)
    op.create_table(
        "dry_run_decisions",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("candidate", sa.String(length=64), nullable=False),
        sa.Column("tool", sa.String(length=128), nullable=False),
        sa.Column("live", sa.String(length=32), nullable=False),
        sa.Column("dry_run", sa.String(length=32), nullable=False),
        sa.Column("live_policies", JSON, nullable=False),
        sa.Column("dry_run_policies", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "step", name=op.f("pk_dry_run_decisions")),
    )
    op.create_index(
        op.f("ix_dry_run_decisions_candidate"), "dry_run_decisions", ["candidate"], unique=False
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("release", sa.String(length=64), nullable=True))
        batch.create_index("ix_runs_release_created_at", ["release", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_release_created_at")
        batch.drop_column("release")
    op.drop_index(op.f("ix_dry_run_decisions_candidate"), table_name="dry_run_decisions")
    op.drop_table("dry_run_decisions")
    op.drop_index(op.f("ix_shadow_runs_candidate"), table_name="shadow_runs")
    op.drop_table("shadow_runs")
    op.drop_table("release_channels")
    op.drop_index(op.f("ix_releases_digest"), table_name="releases")
    op.drop_table("releases")
