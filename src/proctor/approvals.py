"""The approval queue: who may approve which call, until when, and the record of it.

This module owns the approvals table: it opens, decides and expires requests.
What a decision does to the run (its state, its step, its audit entries) is
written by the run's recorder, which the queue is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa

from proctor.audit.events import ApprovalRevealed
from proctor.errors import (
    ApprovalAlreadyDecided,
    ApprovalError,
    ApprovalExpired,
    ApprovalNotFound,
    NotAllowedToApprove,
)
from proctor.ids import identity_key, same_identity
from proctor.services import Services
from proctor.states import ApprovalStatus, RunState
from proctor.store.tables import approvals, runs, steps

REQUESTER = "requester"
"""The role in which whoever asked for a run refuses a call held in it."""


@dataclass(frozen=True)
class Approver:
    """A person deciding an approval, in the role they act in."""

    name: str
    role: str


@dataclass(frozen=True)
class ApprovalRequest:
    id: str
    run_id: str
    step: int
    tenant: str
    tool: str
    roles: tuple[str, ...]
    policy_ids: tuple[str, ...]
    requester: str
    agent: str
    status: ApprovalStatus
    created_at: datetime
    expires_at: datetime
    decided_by: str | None = None
    decider_role: str | None = None
    decision_reason: str | None = None

    @classmethod
    def from_row(cls, row: sa.Row[tuple[object, ...]]) -> ApprovalRequest:
        """A request as the approvals table holds it."""
        m = row._mapping
        return cls(
            id=m["id"],
            run_id=m["run_id"],
            step=m["step"],
            tenant=m["tenant"],
            tool=m["tool"],
            roles=tuple(m["roles"]),
            policy_ids=tuple(m["policy_ids"]),
            requester=m["requester"],
            agent=m["agent"],
            status=ApprovalStatus(m["status"]),
            created_at=m["created_at"],
            expires_at=m["expires_at"],
            decided_by=m["decided_by"],
            decider_role=m["decider_role"],
            decision_reason=m["decision_reason"],
        )

    def overdue(self, now: datetime) -> bool:
        return self.status is ApprovalStatus.PENDING and now >= self.expires_at


def open_request(conn: sa.Connection, request: ApprovalRequest) -> None:
    """A new pending request, in the caller's transaction (the one that pauses the run)."""
    conn.execute(
        approvals.insert(),
        {
            "id": request.id,
            "run_id": request.run_id,
            "step": request.step,
            "tenant": request.tenant,
            "tool": request.tool,
            "roles": list(request.roles),
            "policy_ids": list(request.policy_ids),
            "requester": request.requester,
            "agent": request.agent,
            "status": request.status.value,
            "created_at": request.created_at,
            "expires_at": request.expires_at,
        },
    )


class RunWriter(Protocol):
    """What a decision or an expiry writes to the run (the recorder does)."""

    def approval_decided(
        self,
        conn: sa.Connection,
        request: ApprovalRequest,
        approver: Approver,
        verdict: ApprovalStatus,
        reason: str,
    ) -> None: ...

    def approval_expired(self, conn: sa.Connection, request: ApprovalRequest) -> bool: ...


class ApprovalQueue:
    """Approve, deny and expire requests. Deciding does not run the call: resuming the run does."""

    def __init__(self, services: Services, runs: RunWriter) -> None:
        self._s = services
        self._runs = runs

    def list(
        self, *, tenant: str | None = None, status: ApprovalStatus | None = ApprovalStatus.PENDING
    ) -> Sequence[ApprovalRequest]:
        query = sa.select(approvals).order_by(approvals.c.created_at)
        if tenant is not None:
            query = query.where(approvals.c.tenant == tenant)
        if status is not None:
            query = query.where(approvals.c.status == status.value)
        with self._s.store.read() as conn:
            return [ApprovalRequest.from_row(r) for r in conn.execute(query)]

    def get(self, approval_id: str) -> ApprovalRequest:
        with self._s.store.read() as conn:
            return self._get(conn, approval_id)

    def approve(self, approval_id: str, approver: Approver, reason: str) -> ApprovalRequest:
        return self._decide(approval_id, approver, reason, ApprovalStatus.APPROVED)

    def deny(self, approval_id: str, approver: Approver, reason: str) -> ApprovalRequest:
        return self._decide(approval_id, approver, reason, ApprovalStatus.DENIED)

    def reveal(self, approval_id: str, approver: Approver) -> dict[str, Any]:
        """The held call's arguments whole, for a person who may decide it.

        What the store keeps is masked where the tool marks an argument sensitive; the
        person deciding must see what they approve. The arguments are unsealed for them
        alone, and the audit log records who saw which fields, in which role. Anyone the
        request does not let approve (another role, its requester, its agent) is refused
        with ``NotAllowedToApprove``; once decided, nothing is revealed."""
        with self._s.store.write() as conn:
            request = self._get(conn, approval_id)
            if request.status is not ApprovalStatus.PENDING:
                raise ApprovalAlreadyDecided(
                    f"approval {approval_id} was already {request.status.value}; "
                    "only a pending request's arguments are revealed"
                )
            self._check_approver(request, approver, ApprovalStatus.APPROVED)
            row = conn.execute(
                sa.select(steps.c.args, steps.c.sealed_args).where(
                    steps.c.run_id == request.run_id, steps.c.idx == request.step
                )
            ).one()
            stored: dict[str, Any] = dict(row.args or {})
            if row.sealed_args is None:
                return stored  # nothing was masked
            whole: dict[str, Any] = self._s.sealer.open(row.sealed_args)
            fields = sorted(k for k in whole if whole[k] != stored.get(k))
            event = ApprovalRevealed(request.id, approver.name, approver.role, fields)
            self._s.audit.append(
                conn,
                request.tenant,
                event,
                run_id=request.run_id,
                step=request.step,
                bundle_version=self._s.version,
            )
        return whole

    def expire(self, approval_id: str) -> bool:
        """Expire one overdue request: its run hands off. False if it was not overdue."""
        with self._s.store.write() as conn:
            request = self._get(conn, approval_id, lock=True)
            if not request.overdue(self._s.clock.now()):
                return False
            ended = self._expire(conn, request)
        if ended:
            self._s.run_ended(request.run_id)
        return True

    def expire_overdue(self) -> int:
        """Expire every overdue request; returns how many."""
        now = self._s.clock.now()
        overdue = [r.id for r in self.list() if r.overdue(now)]
        return sum(self.expire(approval_id) for approval_id in overdue)

    # -- internals ---------------------------------------------------------------------

    def _get(self, conn: sa.Connection, approval_id: str, *, lock: bool = False) -> ApprovalRequest:
        query = sa.select(approvals).where(approvals.c.id == approval_id)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise ApprovalNotFound(
                f"no approval request {approval_id}; `proctor approvals list` shows pending ones"
            )
        return ApprovalRequest.from_row(row)

    def _decide(
        self, approval_id: str, approver: Approver, reason: str, verdict: ApprovalStatus
    ) -> ApprovalRequest:
        if not reason.strip():
            raise ApprovalError("give a reason for the decision; it goes into the audit log")
        expired = ended = False
        withdrawn: RunState | None = None
        now = self._s.clock.now()
        with self._s.store.write() as conn:
            request = self._get(conn, approval_id, lock=True)
            if request.status is not ApprovalStatus.PENDING:
                raise ApprovalAlreadyDecided(
                    f"approval {approval_id} was already {request.status.value}"
                    + (f" by {request.decided_by}" if request.decided_by else "")
                )
            run_state = RunState(
                conn.execute(
                    sa.select(runs.c.state).where(runs.c.id == request.run_id)
                ).scalar_one()
            )
            if run_state.terminal:
                # The run ended without this call: the request is withdrawn, never revived.
                self._mark(conn, request, ApprovalStatus.EXPIRED, now)
                withdrawn = run_state
            elif request.overdue(now):
                expired = True
                ended = self._expire(conn, request)
            else:
                self._check_approver(request, approver, verdict)
                # A person's words: stored, so redacted.
                reason = self._s.redaction.text(request.tenant, reason)
                self._mark(conn, request, verdict, now, approver, reason)
                self._runs.approval_decided(conn, request, approver, verdict, reason)
        if withdrawn is not None:
            raise ApprovalExpired(
                f"approval {approval_id} was withdrawn: run {request.run_id} already ended "
                f"{withdrawn.value}; nothing will run"
            )
        if expired:
            if ended:
                self._s.run_ended(request.run_id)
            raise ApprovalExpired(
                f"approval {approval_id} expired at {request.expires_at:%Y-%m-%d %H:%M:%S} UTC; "
                f"run {request.run_id} was handed off to a person"
            )
        return self.get(approval_id)

    @staticmethod
    def _check_approver(
        request: ApprovalRequest, approver: Approver, verdict: ApprovalStatus
    ) -> None:
        """Separation of duties, on names compared in their normal form (``ids.identity_key``):
        ``Alice``, `` alice `` and a full-width alice are all the requester. The requester
        may refuse a call held in their own run, in any role; never approve it."""
        if not identity_key(approver.name):
            raise NotAllowedToApprove("an approver needs a name; it goes into the audit log")
        if same_identity(approver.name, request.agent):
            raise NotAllowedToApprove(
                f"{approver.name} is the agent that proposed this call; an agent never approves"
            )
        if same_identity(approver.name, request.requester):
            if verdict is ApprovalStatus.DENIED:
                return  # a refusal of one's own request: it only ever stops a call
            raise NotAllowedToApprove(
                f"{approver.name} requested run {request.run_id}; nobody approves their own request"
            )
        if approver.role not in request.roles:
            raise NotAllowedToApprove(
                f"approval {request.id} needs the role {' or '.join(request.roles)}; "
                f"{approver.name} acts as {approver.role}"
            )

    @staticmethod
    def _mark(
        conn: sa.Connection,
        request: ApprovalRequest,
        status: ApprovalStatus,
        now: datetime,
        approver: Approver | None = None,
        reason: str | None = None,
    ) -> None:
        values: dict[str, object] = {"status": status.value, "decided_at": now}
        if approver is not None:
            values.update(
                decided_by=approver.name, decider_role=approver.role, decision_reason=reason
            )
        conn.execute(approvals.update().where(approvals.c.id == request.id).values(**values))

    def _expire(self, conn: sa.Connection, request: ApprovalRequest) -> bool:
        """Expire ``request``; True if that ended its run (it was waiting on it)."""
        self._mark(conn, request, ApprovalStatus.EXPIRED, self._s.clock.now())
        return self._runs.approval_expired(conn, request)
