"""The routes under ``/api/v1``. Every one needs a bearer token; a tenant-scoped token
sees only its tenant: lists leave the rest out, and a single resource of another
tenant is answered 404, as if it did not exist."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from proctor.errors import Forbidden, ReportError, ReportNotFound, RunNotFound
from proctor.evals.report import Report
from proctor.runs.trace import run_spans
from proctor.runs.views import RunFilter, load_run, run_tenant
from proctor.runtime import Runtime
from proctor.server import queries, views
from proctor.server.auth import Auditor, Caller, Decider, RuntimeDep
from proctor.server.deciding import Resumer, decide_and_resume
from proctor.server.errors import ErrorBody
from proctor.server.params import (
    Identifier,
    MomentQuery,
    ReleaseQuery,
    TenantQuery,
    UsdQuery,
    WorkflowQuery,
)
from proctor.server.schemas import (
    ApprovalOut,
    AuditProblem,
    AuditStatus,
    CostPage,
    Decide,
    DecisionResult,
    EvalReportInfo,
    Page,
    RunDetail,
    RunSummary,
)
from proctor.server.tokens import ApiToken
from proctor.states import ApprovalStatus, Reason, RunState

_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody} for status in (401, 403, 404, 409, 422)
}

router = APIRouter(prefix="/api/v1", responses=_ERRORS)


def _resumer(request: Request) -> Resumer:
    resumer: Resumer = request.app.state.resumer
    return resumer


ResumerDep = Annotated[Resumer, Depends(_resumer)]


M = TypeVar("M", bound=BaseModel)


def _redacted(runtime: Runtime, tenant: str, answer: M) -> M:
    """An answer as it leaves the service: every string through the tenant's redaction
    (stored copies are redacted already; this keeps any other path from leaking)."""
    body = runtime.redaction.value(tenant, answer.model_dump(mode="json"))
    return type(answer).model_validate(body)


def _scope(token: ApiToken, asked: str | None) -> str | None:
    """The tenant a list is confined to: the token's own, whatever was asked."""
    return token.tenant if token.tenant is not None else asked


Limit = Annotated[int, Query(ge=1, le=500, description="Items per page.")]
Cursor = Annotated[
    str | None,
    Query(max_length=200, description="The `next` of the previous page; none for the first."),
]


@router.get("/runs", summary="Runs, newest first, with filters; a page at a time")
def list_runs(
    runtime: RuntimeDep,
    token: Caller,
    tenant: TenantQuery = None,
    workflow: WorkflowQuery = None,
    state: RunState | None = None,
    reason: Reason | None = None,
    since: MomentQuery = None,
    until: MomentQuery = None,
    cost_above: UsdQuery = None,
    release: ReleaseQuery = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[RunSummary]:
    if token.tenant is not None and tenant not in (None, token.tenant):
        return Page[RunSummary](items=[])
    offset = queries.cursor_offset(cursor)
    f = RunFilter(
        _scope(token, tenant),
        workflow,
        state,
        reason,
        since,
        until,
        cost_above=cost_above,
        release=release,
    )
    with runtime.store.read() as conn:
        found = queries.list_runs(conn, f, limit, offset)
    return Page[RunSummary](
        items=[_redacted(runtime, r.tenant, r) for r in found.items],
        next=queries.next_cursor(offset, len(found.items), found.total),
    )


@router.get("/runs/{run_id}", summary="One run: steps, decisions, approvals, tokens and cost")
def get_run(run_id: Identifier, runtime: RuntimeDep, token: Caller) -> RunDetail:
    with runtime.store.read() as conn:
        tenant = run_tenant(conn, run_id)
        if tenant is None or not token.sees(tenant):
            raise RunNotFound(f"no run {run_id}")
        run = load_run(conn, run_id)
    detail = queries.run_detail(run)
    detail.spans = [s.to_json() for s in run_spans(run)]
    return _redacted(runtime, tenant, detail)  # the spans too


@router.get("/approvals", summary="Pending approval requests, oldest first; a page at a time")
def list_approvals(
    runtime: RuntimeDep,
    token: Caller,
    tenant: TenantQuery = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ApprovalOut]:
    if token.tenant is not None and tenant not in (None, token.tenant):
        return Page[ApprovalOut](items=[])
    pending = runtime.approvals.list(tenant=_scope(token, tenant), status=ApprovalStatus.PENDING)
    page = queries.page_of(pending, limit, cursor)
    items = [_redacted(runtime, r.tenant, ApprovalOut.of(r)) for r in page.items]
    return Page[ApprovalOut](items=items, next=page.next)


@router.post(
    "/approvals/{approval_id}/approve",
    summary="Approve a call, as the token's name; nobody approves a request they raised",
)
async def approve(
    approval_id: Identifier, body: Decide, runtime: RuntimeDep, resumer: ResumerDep, token: Decider
) -> DecisionResult:
    return await decide_and_resume(
        runtime, resumer, approval_id, token, body.reason, body.role, ApprovalStatus.APPROVED
    )


@router.post("/approvals/{approval_id}/deny", summary="Deny a call: it never runs")
async def deny(
    approval_id: Identifier, body: Decide, runtime: RuntimeDep, resumer: ResumerDep, token: Decider
) -> DecisionResult:
    return await decide_and_resume(
        runtime, resumer, approval_id, token, body.reason, body.role, ApprovalStatus.DENIED
    )


@router.get("/costs", summary="Model costs per tenant, workflow, model and UTC day; paged rows")
def get_costs(
    runtime: RuntimeDep,
    token: Caller,
    tenant: TenantQuery = None,
    since: MomentQuery = None,
    until: MomentQuery = None,
    release: ReleaseQuery = None,
    top: Annotated[int, Query(ge=1, le=100, description="How many costly runs")] = 10,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> CostPage:
    if token.tenant is not None and tenant not in (None, token.tenant):
        return CostPage(items=[], top_runs=[], total_usd=Decimal(0))
    with runtime.store.read() as conn:
        costs = queries.costs(conn, _scope(token, tenant), since, until, top, release)
    page = queries.page_of(costs.rows, limit, cursor)
    return CostPage(
        items=page.items,
        next=page.next,
        top_runs=costs.top_runs,
        outliers=costs.outliers,
        total_usd=costs.total_usd,
    )


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


def _reports_home(runtime: Runtime, token: ApiToken) -> Path:
    if token.tenant is not None:
        raise Forbidden(
            f"eval reports cover every tenant; token {token.name} is confined to {token.tenant}"
        )
    return runtime.settings.home


@router.get("/evals", summary="Eval reports under the proctor home, newest first; paged")
def list_evals(
    runtime: RuntimeDep, token: Caller, limit: Limit = 50, cursor: Cursor = None
) -> Page[EvalReportInfo]:
    reports = [
        EvalReportInfo(
            name=e.name,
            modified=datetime.fromtimestamp(e.modified, UTC),
            has_html=e.html_path is not None,
        )
        for e in views.list_reports(_reports_home(runtime, token))
    ]
    return queries.page_of(reports, limit, cursor)


@router.get("/evals/{name}", summary="One eval report, as `proctor eval run` wrote it")
def get_eval(name: Identifier, runtime: RuntimeDep, token: Caller) -> Report:
    entry = views.load_report(_reports_home(runtime, token), name)
    if entry is None:
        raise ReportNotFound(f"no eval report {name}; GET /api/v1/evals lists them")
    if entry.report is None:
        raise ReportError(entry.problem or f"eval report {name} cannot be read")
    return entry.report
