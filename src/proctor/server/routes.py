"""The routes under ``/api/v1``. Every one needs a bearer token; a tenant-scoped token
sees only its tenant: lists leave the rest out, and a single resource of another
tenant is answered 404, as if it did not exist."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from proctor.approvals import ApprovalRequest, Approver
from proctor.errors import ApprovalError, ApprovalNotFound, RunBusy, RunNotFound
from proctor.runs.journal import load_run
from proctor.runs.run import Run
from proctor.runtime import Runtime
from proctor.server import queries
from proctor.server.auth import Auditor, Caller, Decider, RuntimeDep
from proctor.server.errors import ErrorBody
from proctor.server.schemas import (
    ApprovalOut,
    AuditProblem,
    AuditStatus,
    Costs,
    Decide,
    DecisionResult,
    RunDetail,
    RunPage,
)
from proctor.server.tokens import ApiToken
from proctor.states import ApprovalStatus, Reason, RunState

_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody} for status in (401, 403, 404, 409, 422)
}

router = APIRouter(prefix="/api/v1", responses=_ERRORS)


def _resumes(request: Request) -> bool:
    """Whether this server was started with the app's tools, so it can resume runs."""
    return bool(request.app.state.resume_runs)


Resumes = Annotated[bool, Depends(_resumes)]


def _scope(token: ApiToken, asked: str | None) -> str | None:
    """The tenant a list is confined to: the token's own, whatever was asked."""
    return token.tenant if token.tenant is not None else asked


@router.get("/runs", summary="Runs, newest first, with filters")
def list_runs(
    runtime: RuntimeDep,
    token: Caller,
    tenant: str | None = None,
    workflow: str | None = None,
    state: RunState | None = None,
    reason: Reason | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cost_above: Annotated[Decimal | None, Query(ge=0, description="USD")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> RunPage:
    if token.tenant is not None and tenant not in (None, token.tenant):
        return RunPage(items=[], total=0, limit=limit, offset=offset)
    f = queries.RunFilter(_scope(token, tenant), workflow, state, reason, since, until, cost_above)
    with runtime.store.read() as conn:
        return queries.list_runs(conn, f, limit, offset)


@router.get("/runs/{run_id}", summary="One run: steps, decisions, approvals, tokens and cost")
def get_run(run_id: str, runtime: RuntimeDep, token: Caller) -> RunDetail:
    with runtime.store.read() as conn:
        tenant = queries.run_tenant(conn, run_id)
        if tenant is None or not token.sees(tenant):
            raise RunNotFound(f"no run {run_id}")
        return queries.run_detail(conn, run_id)


@router.get("/approvals", summary="Pending approval requests, oldest first")
def list_approvals(
    runtime: RuntimeDep, token: Caller, tenant: str | None = None
) -> list[ApprovalOut]:
    if token.tenant is not None and tenant not in (None, token.tenant):
        return []
    pending = runtime.approvals.list(tenant=_scope(token, tenant), status=ApprovalStatus.PENDING)
    return [ApprovalOut.of(r) for r in pending]


def _decide(
    runtime: Runtime, approval_id: str, token: ApiToken, body: Decide, verdict: ApprovalStatus
) -> ApprovalRequest:
    request = runtime.approvals.get(approval_id)
    if not token.sees(request.tenant):
        raise ApprovalNotFound(f"no approval request {approval_id}")
    role = body.role
    if role is None:
        if len(request.roles) != 1:
            raise ApprovalError(
                f"approval {approval_id} may be decided in the role {' or '.join(request.roles)}; "
                "say which in `role`"
            )
        role = request.roles[0]
    approver = Approver(token.name, role)
    if verdict is ApprovalStatus.APPROVED:
        return runtime.approvals.approve(approval_id, approver, body.reason)
    return runtime.approvals.deny(approval_id, approver, body.reason)


async def _settle(runtime: Runtime, resume: bool, request: ApprovalRequest) -> DecisionResult:
    """After the decision: resume the run here if this server has the tools, else say who does."""
    run_id = request.run_id
    busy = ""
    if resume:
        try:
            run = await runtime.resume(run_id)
        except RunBusy as exc:  # the decision stands; the worker holding the run goes on
            busy = f" ({exc})"
        else:
            return await _resumed(request, run)

    def state() -> RunState:
        with runtime.store.read() as conn:
            return load_run(conn, run_id).state

    return DecisionResult(
        approval=ApprovalOut.of(request),
        run_id=run_id,
        resumed=False,
        run_state=await run_in_threadpool(state),
        message=(
            f"run {run_id} is ready to resume, by a worker with its tools: "
            f"`proctor run --resume {run_id}` or `proctor runs resume {run_id} --app MODULE:APP`"
            + busy
        ),
    )


async def _resumed(request: ApprovalRequest, run: Run) -> DecisionResult:
    run_id = request.run_id
    try:
        outcome = await run.resume_pending()
    finally:
        await run.release()  # the agent's own worker continues it from here
    step = f"step {outcome.step} ({outcome.tool}) {outcome.status.value}" if outcome else ""
    return DecisionResult(
        approval=ApprovalOut.of(request),
        run_id=run_id,
        resumed=True,
        run_state=run.state,
        message=f"run {run_id} resumed here: {step}".rstrip(": "),
    )


async def _decide_and_settle(
    runtime: Runtime,
    resume: bool,
    approval_id: str,
    token: ApiToken,
    body: Decide,
    verdict: ApprovalStatus,
) -> DecisionResult:
    request = await run_in_threadpool(_decide, runtime, approval_id, token, body, verdict)
    return await _settle(runtime, resume, request)


@router.post(
    "/approvals/{approval_id}/approve",
    summary="Approve a call, as the token's name; nobody approves a request they raised",
)
async def approve(
    approval_id: str, body: Decide, runtime: RuntimeDep, resume: Resumes, token: Decider
) -> DecisionResult:
    return await _decide_and_settle(
        runtime, resume, approval_id, token, body, ApprovalStatus.APPROVED
    )


@router.post("/approvals/{approval_id}/deny", summary="Deny a call: it never runs")
async def deny(
    approval_id: str, body: Decide, runtime: RuntimeDep, resume: Resumes, token: Decider
) -> DecisionResult:
    return await _decide_and_settle(
        runtime, resume, approval_id, token, body, ApprovalStatus.DENIED
    )


@router.get("/costs", summary="Model costs per tenant, workflow, model and UTC day")
def get_costs(
    runtime: RuntimeDep,
    token: Caller,
    tenant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    top: Annotated[int, Query(ge=1, le=100, description="How many costly runs")] = 10,
) -> Costs:
    if token.tenant is not None and tenant not in (None, token.tenant):
        return Costs(rows=[], top_runs=[], total_usd=Decimal(0))
    with runtime.store.read() as conn:
        return queries.costs(conn, _scope(token, tenant), since, until, top)


@router.get("/audit/status", summary="Verify the audit log (a tenant token: its tenant only)")
def audit_status(runtime: RuntimeDep, token: Auditor) -> AuditStatus:
    report = runtime.verify_audit(tenant=token.tenant)
    return AuditStatus(
        ok=report.ok,
        checked=report.checked,
        tenants=report.tenants,
        checkpoints=report.checkpoints,
        problems=[
            AuditProblem(
                tenant=p.tenant,
                seq=p.seq,
                entry_id=p.entry_id,
                tamper=p.tamper.value,
                detail=p.detail,
            )
            for p in report.problems
        ],
    )
