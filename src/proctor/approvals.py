"""The approval queue: who may approve which call, until when, and the record of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from proctor.audit.events import ApprovalDecided, RunStateChanged
from proctor.errors import (
    ApprovalAlreadyDecided,
    ApprovalError,
    ApprovalExpired,
    ApprovalNotFound,
    NotAllowedToApprove,
)
from proctor.runs import journal
from proctor.states import ApprovalStatus, Reason, RunState, StepStatus
from proctor.store.tables import approvals, runs

if TYPE_CHECKING:
    from proctor.runtime import Runtime


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
    decided_by: str | None
    decider_role: str | None
    decision_reason: str | None

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


class ApprovalQueue:
    """Approve, deny and expire requests. Deciding does not run the call: resuming the run does."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    def list(
        self, *, tenant: str | None = None, status: ApprovalStatus | None = ApprovalStatus.PENDING
    ) -> Sequence[ApprovalRequest]:
        query = sa.select(approvals).order_by(approvals.c.created_at)
        if tenant is not None:
            query = query.where(approvals.c.tenant == tenant)
        if status is not None:
            query = query.where(approvals.c.status == status.value)
        with self._rt.store.read() as conn:
            return [ApprovalRequest.from_row(r) for r in conn.execute(query)]

    def get(self, approval_id: str) -> ApprovalRequest:
        with self._rt.store.read() as conn:
            return self._get(conn, approval_id)

    def approve(self, approval_id: str, approver: Approver, reason: str) -> ApprovalRequest:
        return self._decide(approval_id, approver, reason, ApprovalStatus.APPROVED)

    def deny(self, approval_id: str, approver: Approver, reason: str) -> ApprovalRequest:
        return self._decide(approval_id, approver, reason, ApprovalStatus.DENIED)

    def expire(self, approval_id: str) -> bool:
        """Expire one overdue request: its run hands off. False if it was not overdue."""
        with self._rt.store.write() as conn:
            request = self._get(conn, approval_id, lock=True)
            if not request.overdue(self._rt.clock.now()):
                return False
            ended = self._expire(conn, request)
        if ended:
            self._rt.run_ended(request.run_id)
        return True

    def expire_overdue(self) -> int:
        """Expire every overdue request; returns how many."""
        now = self._rt.clock.now()
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
        with self._rt.store.write() as conn:
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
                conn.execute(
                    approvals.update()
                    .where(approvals.c.id == request.id)
                    .values(status=ApprovalStatus.EXPIRED.value, decided_at=self._rt.clock.now())
                )
                withdrawn = run_state
            elif request.overdue(self._rt.clock.now()):
                expired = True
                ended = self._expire(conn, request)
            else:
                self._check_approver(request, approver)
                self._record(conn, request, approver, reason, verdict)
        if withdrawn is not None:
            raise ApprovalExpired(
                f"approval {approval_id} was withdrawn: run {request.run_id} already ended "
                f"{withdrawn.value}; nothing will run"
            )
        if expired:
            if ended:
                self._rt.run_ended(request.run_id)
            raise ApprovalExpired(
                f"approval {approval_id} expired at {request.expires_at:%Y-%m-%d %H:%M:%S} UTC; "
                f"run {request.run_id} was handed off to a person"
            )
        return self.get(approval_id)

    @staticmethod
    def _check_approver(request: ApprovalRequest, approver: Approver) -> None:
        if approver.name == request.agent:
            raise NotAllowedToApprove(
                f"{approver.name} is the agent that proposed this call; an agent never approves"
            )
        if approver.name == request.requester:
            raise NotAllowedToApprove(
                f"{approver.name} requested run {request.run_id}; nobody approves their own request"
            )
        if approver.role not in request.roles:
            raise NotAllowedToApprove(
                f"approval {request.id} needs the role {' or '.join(request.roles)}; "
                f"{approver.name} acts as {approver.role}"
            )

    def _record(
        self,
        conn: sa.Connection,
        request: ApprovalRequest,
        approver: Approver,
        reason: str,
        verdict: ApprovalStatus,
    ) -> None:
        rt, now = self._rt, self._rt.clock.now()
        reason = rt.redaction.text(request.tenant, reason)  # a person's words: stored, redacted
        conn.execute(
            approvals.update()
            .where(approvals.c.id == request.id)
            .values(
                status=verdict.value,
                decided_at=now,
                decided_by=approver.name,
                decider_role=approver.role,
                decision_reason=reason,
            )
        )
        if verdict is ApprovalStatus.DENIED:
            journal.close_step(conn, request.run_id, request.step, StepStatus.APPROVAL_DENIED)
        waited = (now - request.created_at).total_seconds()
        conn.execute(
            runs.update()
            .where(runs.c.id == request.run_id)
            .values(state=RunState.RUNNING.value, paused_s=runs.c.paused_s + waited, updated_at=now)
        )
        bundle_version = self._bundle_version(conn, request.run_id)
        for event in (
            ApprovalDecided(request.id, verdict.value, approver.name, approver.role, reason),
            RunStateChanged(
                RunState.AWAITING_APPROVAL.value,
                RunState.RUNNING.value,
                None,
                f"approval {request.id} {verdict.value} by {approver.name}",
            ),
        ):
            rt.audit.append(
                conn,
                request.tenant,
                event,
                run_id=request.run_id,
                step=request.step,
                bundle_version=bundle_version,
            )

    def _expire(self, conn: sa.Connection, request: ApprovalRequest) -> bool:
        """Expire ``request``; True if that ended its run (it was waiting on it)."""
        rt, now = self._rt, self._rt.clock.now()
        conn.execute(
            approvals.update()
            .where(approvals.c.id == request.id)
            .values(status=ApprovalStatus.EXPIRED.value, decided_at=now)
        )
        journal.close_step(conn, request.run_id, request.step, StepStatus.APPROVAL_EXPIRED)
        detail = f"approval {request.id} for {request.tool} expired unanswered"
        moved = conn.execute(
            runs.update()
            .where(
                runs.c.id == request.run_id,
                runs.c.state == RunState.AWAITING_APPROVAL.value,  # never revive or re-end a run
            )
            .values(
                state=RunState.HANDED_OFF.value,
                reason=Reason.APPROVAL_EXPIRED.value,
                reason_detail=detail,
                updated_at=now,
                ended_at=now,
                owner=None,
                lease_until=None,
            )
        )
        if moved.rowcount != 1:
            return False
        bundle_version = self._bundle_version(conn, request.run_id)
        rt.audit.append(
            conn,
            request.tenant,
            RunStateChanged(
                RunState.AWAITING_APPROVAL.value,
                RunState.HANDED_OFF.value,
                Reason.APPROVAL_EXPIRED.value,
                detail,
            ),
            run_id=request.run_id,
            step=request.step,
            bundle_version=bundle_version,
        )
        rt.audit.checkpoint(conn, request.tenant)
        return True

    @staticmethod
    def _bundle_version(conn: sa.Connection, run_id: str) -> str:
        return str(
            conn.execute(sa.select(runs.c.bundle_version).where(runs.c.id == run_id)).scalar_one()
        )
