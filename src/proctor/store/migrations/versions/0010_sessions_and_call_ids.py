"""runs: the session (a framework's conversation) a run serves; steps: the caller's own id
for each call, which replays the step when the call is proposed again

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("session", sa.String(length=256), nullable=True))
        batch.create_index("ix_runs_tenant_session", ["tenant", "session"], unique=False)
    with op.batch_alter_table("steps") as batch:
        batch.add_column(sa.Column("call_id", sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("call_id")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_tenant_session")
        batch.drop_column("session")
