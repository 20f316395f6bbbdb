"""The tables, as SQLAlchemy Core. Alembic migrations in ``migrations/`` create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use the injected clock")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSON: sa.types.TypeEngine[Any] = sa.JSON().with_variant(JSONB(), "postgresql")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(128), nullable=False),
    sa.Column("workflow", sa.String(128), nullable=False),
    sa.Column("agent", sa.String(128), nullable=False),
    sa.Column("role", sa.String(128), nullable=False),
    sa.Column("requester", sa.String(128), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(64)),
    sa.Column("reason_detail", sa.Text),
    sa.Column("budget", JSON, nullable=False),
    sa.Column("usage", JSON, nullable=False),
    sa.Column("bundle_version", sa.String(128), nullable=False),
    sa.Column("invalid_actions", sa.Integer, nullable=False),
    sa.Column("max_invalid_actions", sa.Integer, nullable=False),
    sa.Column("paused_s", sa.Float, nullable=False),
    sa.Column("owner", sa.String(64)),
    sa.Column("lease_until", UTCDateTime()),
    # Raised by every take-over of the run; a worker's writes hold only while it is theirs.
    sa.Column("lease_generation", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime()),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("conversation", JSON),
    sa.Column("purged_at", UTCDateTime()),
    # The framework's conversation (a LangGraph thread, an MCP session) the run serves.
    sa.Column("session", sa.String(256)),
    # What was asked and the final answer, redacted as every stored text is.
    sa.Column("request", sa.Text),
    sa.Column("answer", sa.Text),
    # Where the run came from: live traffic, an eval, the demo (kept out of the live queue).
    sa.Column("origin", sa.String(16), nullable=False, server_default="live"),
    # The release the run was opened under (stable or canary); None before any release.
    sa.Column("release", sa.String(64)),
    sa.Index("ix_runs_tenant_state", "tenant", "state"),
    sa.Index("ix_runs_release_created_at", "release", "created_at"),
    sa.Index("ix_runs_tenant_session", "tenant", "session"),
    sa.Index("ix_runs_created_at", "created_at"),
)

steps = sa.Table(
    "steps",
    metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("tool", sa.String(128), nullable=False),
    sa.Column("args", JSON, nullable=False),
    sa.Column("args_hash", sa.String(64), nullable=False),
    sa.Column("sealed_args", sa.Text),
    sa.Column("sealed_result", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("decision", JSON, nullable=False),
    sa.Column("idempotency_key", sa.String(160), nullable=False),
    sa.Column("approval_id", sa.String(64)),
    sa.Column("result", JSON),
    sa.Column("error", JSON),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("timings_us", JSON, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
    # The caller's own id for the call; proposing it again replays this step.
    sa.Column("call_id", sa.String(256)),
)

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("tenant", sa.String(128), nullable=False),
    sa.Column("tool", sa.String(128), nullable=False),
    sa.Column("roles", JSON, nullable=False),
    sa.Column("policy_ids", JSON, nullable=False),
    sa.Column("requester", sa.String(128), nullable=False),
    sa.Column("agent", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("decided_at", UTCDateTime()),
    sa.Column("decided_by", sa.String(128)),
    sa.Column("decider_role", sa.String(128)),
    sa.Column("decision_reason", sa.Text),
    sa.Index("ix_approvals_status_tenant", "status", "tenant"),
)

audit_entries = sa.Table(
    "audit_entries",
    metadata,
    sa.Column("tenant", sa.String(128), primary_key=True),
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("entry_id", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("step", sa.Integer),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("bundle_version", sa.String(128), nullable=False),
    sa.Column("payload_hash", sa.String(64), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_entries_run_id", "run_id"),
    # Retention decides from the hashed envelope's time, not the payload row's.
    sa.Index("ix_audit_entries_tenant_created_at", "tenant", "created_at"),
)

audit_payloads = sa.Table(
    "audit_payloads",
    metadata,
    sa.Column("entry_id", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    # Retention empties ``body`` and says when, under which rule, and which
    # ``retention.purged`` entry of the chain accounts for it.
    sa.Column("purged_at", UTCDateTime()),
    sa.Column("purge_rule", sa.String(200)),
    sa.Column("purge_entry", sa.String(64)),
    sa.Index("ix_audit_payloads_tenant_created_at", "tenant", "created_at"),
)

audit_heads = sa.Table(
    "audit_heads",
    metadata,
    sa.Column("tenant", sa.String(128), primary_key=True),
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
    sa.Column("head_hash", sa.String(64), nullable=False),
)

audit_refusals = sa.Table(
    "audit_refusals",
    metadata,
    # Times the signer refused to sign a tenant's chain because it did not verify
    # (/metrics), and the last refusal: at which entry, when and why.
    sa.Column("tenant", sa.String(128), primary_key=True),
    sa.Column("refused", sa.Integer, nullable=False),
    sa.Column("last_seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
    sa.Column("last_at", sa.String(40), nullable=False),
    sa.Column("last_reason", sa.Text, nullable=False),
)

audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("tenant", sa.String(128), primary_key=True),
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("head_hash", sa.String(64), nullable=False),
    sa.Column("signed_at", sa.String(40), nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("signature", sa.String(128), nullable=False),
    # The chain of checkpoints: this one's number in the tenant's sequence (from 1) and
    # the hash of the one before. NULL on checkpoints signed before they were linked.
    sa.Column("number", sa.BigInteger().with_variant(sa.Integer, "sqlite")),
    sa.Column("prev_hash", sa.String(64)),
)

budget_usage = sa.Table(
    "budget_usage",
    metadata,
    sa.Column("scope", sa.String(300), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("nano_usd_spent", sa.BigInteger, nullable=False),
    sa.Column("nano_usd_reserved", sa.BigInteger, nullable=False),
    sa.Column("tokens_spent", sa.BigInteger, nullable=False),
    sa.Column("tokens_reserved", sa.BigInteger, nullable=False),
)

budget_holds = sa.Table(
    "budget_holds",
    metadata,
    # A model call's worst case, held against daily budgets until its real cost is known;
    # kept as a row so the hold of a worker that died can be found and released.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("scopes", JSON, nullable=False),
    sa.Column("nano_usd", sa.BigInteger, nullable=False),
    sa.Column("tokens", sa.BigInteger, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

model_calls = sa.Table(
    "model_calls",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("tenant", sa.String(128), nullable=False),
    sa.Column("workflow", sa.String(128), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("answered_by", sa.String(200), nullable=False),
    sa.Column("input_tokens", sa.Integer, nullable=False),
    sa.Column("cached_input_tokens", sa.Integer, nullable=False),
    sa.Column("output_tokens", sa.Integer, nullable=False),
    sa.Column("reasoning_tokens", sa.Integer, nullable=False),
    sa.Column("nano_usd", sa.BigInteger, nullable=False),
    sa.Column("reserved_nano_usd", sa.BigInteger, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("tool_calls", sa.Integer, nullable=False),
    sa.Column("stop_reason", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    # When the call was made, on the same clock as ``created_at`` (when it answered).
    sa.Column("started_at", UTCDateTime()),
    # The provider's id for its answer, the server asked, and the request's parameters.
    sa.Column("response_id", sa.String(256)),
    sa.Column("server_address", sa.String(256)),
    sa.Column("server_port", sa.Integer),
    sa.Column("params", JSON),
    sa.Index("ix_model_calls_run_id", "run_id"),
    sa.Index("ix_model_calls_tenant_created_at", "tenant", "created_at"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("tenant", sa.String(128)),
    sa.Column("policy_roles", JSON),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime()),
)

policy_bundles = sa.Table(
    "policy_bundles",
    metadata,
    # Each bundle version's files, kept from its first use so evidence can show them later.
    sa.Column("version", sa.String(128), primary_key=True),
    sa.Column("label", sa.String(128), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("files", JSON, nullable=False),
    sa.Column("first_used_at", UTCDateTime(), nullable=False),
)

releases = sa.Table(
    "releases",
    metadata,
    # A release: what defines an agent's behaviour (the manifest), hashed, and a person's note.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False, index=True),
    sa.Column("manifest", JSON, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

release_channels = sa.Table(
    "release_channels",
    metadata,
    # Which release serves each channel (stable, canary, shadow, dry_run) and its share.
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("release", sa.String(64), sa.ForeignKey("releases.id"), nullable=False),
    sa.Column("share", sa.Float, nullable=False),
    sa.Column("since", UTCDateTime(), nullable=False),
    sa.Column("set_by", sa.String(128), nullable=False),
)

shadow_runs = sa.Table(
    "shadow_runs",
    metadata,
    # A live run and what the candidate did with the same calls in its shadow run.
    sa.Column("live_run", sa.String(64), primary_key=True),
    sa.Column("candidate", sa.String(64), nullable=False),
    sa.Column("shadow_run", sa.String(64), nullable=False),
    sa.Column("comparison", JSON, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_shadow_runs_candidate", "candidate"),
)

dry_run_decisions = sa.Table(
    "dry_run_decisions",
    metadata,
    # A live call decided again by a candidate bundle in log-only mode.
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),
    sa.Column("candidate", sa.String(64), nullable=False),
    sa.Column("tool", sa.String(128), nullable=False),
    sa.Column("live", sa.String(32), nullable=False),
    sa.Column("dry_run", sa.String(32), nullable=False),
    sa.Column("live_policies", JSON, nullable=False),
    sa.Column("dry_run_policies", JSON, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_dry_run_decisions_candidate", "candidate"),
)
