"""runs: the request and the final answer (redacted) and where a run came from (live
traffic, an eval, the demo); model_calls: when each call started, the provider's response
id, the server it went to and the request's parameters

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("request", sa.Text(), nullable=True))
        batch.add_column(sa.Column("answer", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("origin", sa.String(length=16), nullable=False, server_default="live")
        )
    with op.batch_alter_table("model_calls") as batch:
        batch.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("response_id", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("server_address", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("server_port", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column(
                "params",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("model_calls") as batch:
        for name in ("params", "server_port", "server_address", "response_id", "started_at"):
            batch.drop_column(name)
    with op.batch_alter_table("runs") as batch:
        for name in ("origin", "answer", "request"):
            batch.drop_column(name)
