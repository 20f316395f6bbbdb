"""What the audit log records: one dataclass per kind of entry."""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, ClassVar


class EntryKind(StrEnum):
    RUN_OPENED = "run.opened"
    RUN_STATE = "run.state"
    RUN_ROUTED = "run.routed"
    RUN_MODE = "run.mode"
    RUN_RECLAIMED = "run.reclaimed"
    RUN_PLANNED = "run.planned"
    ACTION_INVALID = "action.invalid"
    ACTION_DENIED = "action.denied"
    ACTION_APPROVAL_REQUESTED = "action.approval_requested"
    APPROVAL_DECIDED = "approval.decided"
    APPROVAL_REVEALED = "approval.revealed"
    ACTION_INTENT = "action.intent"
    ACTION_OUTCOME = "action.outcome"
    ACTION_RECONCILED = "action.reconciled"
    RETENTION_PURGED = "retention.purged"
    RELEASE_CREATED = "release.created"
    RELEASE_MOVED = "release.moved"
    RELEASE_SLO_BREACHED = "release.slo_breached"


class AuditEvent:
    """Base of the payloads; ``payload()`` is what gets hashed and stored."""

    kind: ClassVar[EntryKind]
    _names: ClassVar[tuple[str, ...]] = ()

    def payload(self) -> dict[str, Any]:
        names = type(self)._names or tuple(f.name for f in fields(self))  # type: ignore[arg-type]
        type(self)._names = names
        return {"kind": self.kind.value, **{n: getattr(self, n) for n in names}}


@dataclass(frozen=True)
class RunOpened(AuditEvent):
    kind = EntryKind.RUN_OPENED
    agent: str
    role: str
    requester: str
    workflow: str
    mode: str
    budget: dict[str, Any]


@dataclass(frozen=True)
class RunStateChanged(AuditEvent):
    kind = EntryKind.RUN_STATE
    previous: str
    state: str
    reason: str | None
    detail: str | None


@dataclass(frozen=True)
class RunRouted(AuditEvent):
    """Which intent a request was read as, and which tier of model serves it, and why."""

    kind = EntryKind.RUN_ROUTED
    intent: str
    tier: str
    model: str
    reason: str


@dataclass(frozen=True)
class RunModeChanged(AuditEvent):
    """The run moved to another mode (to safe mode, after a denial or untrusted input)."""

    kind = EntryKind.RUN_MODE
    previous: str
    mode: str
    reason: str


@dataclass(frozen=True)
class RunPlanned(AuditEvent):
    """The calls the run committed to, from the requester's words, before outside content."""

    kind = EntryKind.RUN_PLANNED
    calls: list[dict[str, Any]]
    source: str


@dataclass(frozen=True)
class RunReclaimed(AuditEvent):
    """The lease of the worker that held the run lapsed (it died or hung): the run was
    released for another worker, and that worker fenced off."""

    kind = EntryKind.RUN_RECLAIMED
    owner: str
    lease_until: str
    generation: int


@dataclass(frozen=True)
class ActionInvalid(AuditEvent):
    """A proposed call that did not validate; it never executed."""

    kind = EntryKind.ACTION_INVALID
    tool: str
    field: str | None
    error: str
    invalid_so_far: int


@dataclass(frozen=True)
class ActionDenial(AuditEvent):
    """Policy denied a proposed call; it never executed."""

    kind = EntryKind.ACTION_DENIED
    tool: str
    args: dict[str, Any]
    reason: str | None
    decision: dict[str, Any]


@dataclass(frozen=True)
class ActionApprovalRequested(AuditEvent):
    kind = EntryKind.ACTION_APPROVAL_REQUESTED
    tool: str
    args: dict[str, Any]
    reason: str | None
    decision: dict[str, Any]
    approval_id: str
    roles: list[str]
    expires_at: str


@dataclass(frozen=True)
class ApprovalDecided(AuditEvent):
    kind = EntryKind.APPROVAL_DECIDED
    approval_id: str
    verdict: str
    approver: str
    approver_role: str
    reason: str


@dataclass(frozen=True)
class ApprovalRevealed(AuditEvent):
    """A call's masked arguments shown whole to a person who may decide it."""

    kind = EntryKind.APPROVAL_REVEALED
    approval_id: str
    revealed_to: str
    role: str
    fields: list[str]


@dataclass(frozen=True)
class ActionIntent(AuditEvent):
    """Written, durably, before the side effect runs."""

    kind = EntryKind.ACTION_INTENT
    tool: str
    args: dict[str, Any]
    reason: str | None
    decision: dict[str, Any]
    idempotency_key: str
    approval_id: str | None
    scopes: list[str]


@dataclass(frozen=True)
class ActionOutcome(AuditEvent):
    kind = EntryKind.ACTION_OUTCOME
    tool: str
    status: str
    result_digest: str | None
    error: dict[str, Any] | None
    attempts: int
    duration_us: float


@dataclass(frozen=True)
class ActionReconciled(AuditEvent):
    """After a crash: what the tool's system of record said about the step."""

    kind = EntryKind.ACTION_RECONCILED
    tool: str
    happened: bool | None
    detail: str


@dataclass(frozen=True)
class RetentionPurged(AuditEvent):
    """Retention purged one batch of a tenant's audit payloads or finished runs.

    For payloads, ``first_seq``..``last_seq`` bounds the entries whose bodies went:
    verification accepts an emptied payload only when such an entry covers it.
    """

    kind = EntryKind.RETENTION_PURGED
    what: str
    rule: str
    cutoff: str
    count: int
    oldest: str
    newest: str
    first_seq: int | None
    last_seq: int | None
    run_ids: list[str]


@dataclass(frozen=True)
class ReleaseCreated(AuditEvent):
    """A release was recorded: its manifest's digest and the note of the person who made it."""

    kind = EntryKind.RELEASE_CREATED
    release: str
    digest: str
    policy_version: str
    note: str
    actor: str


@dataclass(frozen=True)
class ReleaseMoved(AuditEvent):
    """Which release serves a channel changed: a shadow, a canary, a promotion, a rollback."""

    kind = EntryKind.RELEASE_MOVED
    action: str
    """``shadow``, ``canary``, ``promote``, ``rollback``, ``dry_run`` or ``stop``."""
    channel: str
    release: str | None
    """The release the channel serves now; None when the channel was emptied."""
    previous: str | None
    share: float
    actor: str
    reason: str


@dataclass(frozen=True)
class ReleaseSloBreached(AuditEvent):
    """The SLO monitor found the canary breaching its targets, with the figures it saw."""

    kind = EntryKind.RELEASE_SLO_BREACHED
    canary: str
    stable: str
    failures: list[dict[str, Any]]
