"""``proctor run``: one request through the agent, with a live view of every step."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import typer
from pydantic import ValidationError
from rich.markup import escape

from proctor.agent import Agent, AgentResult
from proctor.agent.factory import agent_for_app
from proctor.agent.routing import route
from proctor.app import App, load_app
from proctor.cli._common import RUN_APP_OPTION, console, fails_clearly, run_async
from proctor.errors import ConfigError
from proctor.evals.suite import EvalSuite
from proctor.models import ModelResponse, ToolCall
from proctor.models.simulated import FaultRates
from proctor.runs import CallOutcome, CallStatus, RunSpec
from proctor.runs.views import resolve_id, run_tenant
from proctor.runtime import Runtime
from proctor.settings import load_settings
from proctor.states import RunState

EXIT_CODES = {
    RunState.COMPLETED: 0,
    RunState.AWAITING_APPROVAL: 10,
    RunState.HANDED_OFF: 11,
    RunState.FAILED_SAFE: 12,
}
_STATUS_STYLE = {
    CallStatus.EXECUTED: "green",
    CallStatus.DENIED: "red",
    CallStatus.AWAITING_APPROVAL: "yellow",
    CallStatus.FAILED: "red",
    CallStatus.OUTCOME_UNKNOWN: "red",
}


class LiveView:
    """Prints each model call and each governed step as it happens, redacted like
    everything else proctor writes (a terminal is often a CI log)."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        self._redact = redact

    def model_called(self, model: str, response: ModelResponse, cost_usd: Decimal) -> None:
        u = response.usage
        tokens = f"{u.input_tokens + u.cached_input_tokens} in / {u.output_tokens} out"
        if u.reasoning_tokens:
            tokens += f" / {u.reasoning_tokens} reasoning"
        what = "final answer" if response.is_final else f"{len(response.tool_calls)} call(s)"
        console.print(
            f"[dim]model[/] {model}  {tokens}  ${cost_usd:.6f}  {response.latency_ms:.0f} ms"
            f"  → {what}"
        )

    def step_done(self, call: ToolCall, outcome: CallOutcome | None, note: str) -> None:
        shown = self._redact(call.arguments)
        args = escape(shown if len(shown) < 120 else shown[:117] + "…")
        console.print(f"  [bold]{call.tool}[/] {args}")
        if outcome is None:
            console.print(f"    [red]invalid[/]: {escape(self._redact(note)[:200])}")
            return
        d = outcome.decision
        if d is not None:
            ids = ", ".join(d.policy_ids) or "no policy"
            console.print(f"    decision [bold]{d.effect.value}[/] ({ids}) {d.latency_us:.0f} µs")
        style = _STATUS_STYLE.get(outcome.status, "white")
        line = f"    [{style}]{outcome.status.value}[/]"
        if outcome.status is CallStatus.AWAITING_APPROVAL:
            line += f" — approval {outcome.approval_id} waits for a person"
        elif outcome.approval_id:
            line += f" (approval {outcome.approval_id})"
        console.print(line)


def _fault_rates(faults: list[str]) -> FaultRates:
    rates: dict[str, float] = {}
    for item in faults:
        name, _, rate = item.partition("=")
        try:
            rates[name.strip()] = float(rate) if rate else 1.0
        except ValueError:
            raise ConfigError(f"--fault {item!r}: the rate must be a number from 0 to 1") from None
    try:
        return FaultRates(**rates)
    except ValidationError as exc:
        known = ", ".join(FaultRates.model_fields)
        raise ConfigError(f"--fault: {exc.errors()[0]['msg']}; the faults are: {known}") from None


def _agent(
    rt: Runtime, app: App, model: str | None, seed: int, faults: FaultRates, tenant: str
) -> Agent:
    view = LiveView(lambda text: rt.redaction.text(tenant, text))
    return agent_for_app(rt, app, model=model, seed=seed, faults=faults, observer=view)


def _spec(app: App, role: str | None, workflow: str | None, tenant: str, requester: str) -> RunSpec:
    """The run's spec: ``--role`` / ``--workflow``, else the app's eval-suite defaults."""
    defaults = app.suite.run if isinstance(app.suite, EvalSuite) else None
    role = role or (defaults.role if defaults else None)
    workflow = workflow or (defaults.workflow if defaults else None)
    if role is None or workflow is None:
        raise ConfigError(
            "give --role and --workflow for the run (this app has no eval suite whose run "
            "defaults would say)"
        )
    return RunSpec(
        agent=f"{workflow}-agent",
        role=role,
        tenant=tenant,
        workflow=workflow,
        requester=requester,
    )


def summary(rt: Runtime, result: AgentResult, tenant: str) -> dict[str, Any]:
    """The run's outcome as ``--json`` prints it; the answer redacted like any output
    (code that drives the agent gets it whole, in ``AgentResult.answer``)."""
    steps = [
        {
            "step": o.step,
            "tool": o.tool,
            "status": o.status.value,
            "decision": o.decision.effect.value if o.decision else None,
            "policy_ids": list(o.decision.policy_ids) if o.decision else [],
        }
        for o in result.outcomes
    ]
    return {
        "run_id": result.run_id,
        "state": result.state.value,
        "reason": result.reason,
        "cost_usd": format(result.cost_usd.normalize(), "f"),
        "model_tokens": result.model_tokens,
        "steps": steps,
        "tier": result.route.tier.value if result.route else None,
        "intent": result.route.intent if result.route else None,
        "mode": result.mode.value,
        "answer": rt.redaction.text(tenant, result.answer) if result.answer else result.answer,
        "approval_id": result.approval_id,
        "policy_version": str(rt.policy.version),
    }


@fails_clearly
def run(
    request: str = typer.Argument("", help="What the requester or operator asks for."),
    app_ref: str = RUN_APP_OPTION,
    model: str | None = typer.Option(
        None,
        help="simulated (offline), openai:MODEL or anthropic:MODEL; default: the app's model.",
    ),
    seed: int = typer.Option(0, help="Seed of the simulated model: same seed, same run."),
    fault: list[str] = typer.Option(
        [], help="A simulated-model fault and its rate, e.g. obey_injection=1 (repeatable)."
    ),
    resume: str | None = typer.Option(
        None, help="Continue this run (after an approval): its id, or its start."
    ),
    tenant: str = typer.Option("acme", help="The tenant the run acts for."),
    requester: str = typer.Option("customer", help="Who asked; never an approver of the run."),
    role: str | None = typer.Option(
        None, help="The agent's role; default: the app's eval-suite run defaults."
    ),
    workflow: str | None = typer.Option(
        None, help="The run's workflow; default: the app's eval-suite run defaults."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the run's summary as JSON."),
    queue: bool = typer.Option(
        False,
        "--queue",
        help="Open the run and leave it for a worker (`proctor worker`) instead of running "
        "it here; prints its id.",
    ),
) -> None:
    """Run one request through the agent; every call it proposes is governed.

    Exit codes: 0 completed, 10 awaiting approval, 11 handed off, 12 failed safe.
    """
    if not request and resume is None:
        raise ConfigError("give a request in quotes, or --resume RUN_ID to continue a run")
    settings = load_settings()
    app = load_app(app_ref)
    if resume is None:
        _spec(app, role, workflow, tenant, requester)  # a missing role says so before any work
    rt = Runtime.for_app(app, settings)
    if resume is not None:
        with rt.store.read() as conn:
            resume = resolve_id(conn, "run", resume)
            tenant = run_tenant(conn, resume) or tenant
    agent = _agent(rt, app, model, seed, _fault_rates(fault), tenant)
    if as_json:
        agent.observer = None
    if resume is None and not as_json and not queue:
        r = route(request, rt.policy.settings.routing)
        console.print(f"[dim]route[/] {r.intent} → {r.tier.value} ({escape(r.reason)})")

    async def go() -> AgentResult:
        # One event loop for the run and the closing of the model's client: an SDK
        # client bound to a loop cannot be closed from another.
        try:
            if resume is not None:
                return await agent.resume(resume)
            return await agent.run(request, _spec(app, role, workflow, tenant, requester))
        finally:
            await agent.aclose()

    try:
        if queue:
            if resume is not None:
                raise ConfigError("--queue opens a new run; a run to --resume is a worker's")
            run_id = run_async(agent.queue(request, _spec(app, role, workflow, tenant, requester)))
            print(json.dumps({"run_id": run_id, "state": "queued"}) if as_json else run_id)
            return
        result = run_async(go())
    finally:
        rt.close()
    if as_json:
        print(json.dumps(summary(rt, result, tenant), indent=2))
    else:
        _print_end(result, lambda text: rt.redaction.text(tenant, text))
    raise typer.Exit(EXIT_CODES[result.state])


def _print_end(result: AgentResult, redact: Callable[[str], str]) -> None:
    reason = f" ({result.reason})" if result.reason else ""
    console.print(
        f"\n[bold]{result.state.value}[/]{reason}  run {result.run_id}  "
        f"cost ${result.cost_usd:.6f}  {result.model_tokens} tokens  mode {result.mode.value}"
    )
    if result.answer:
        console.print(f"answer: {escape(redact(result.answer))}")
    if result.approval_id:
        pending = result.outcomes[-1].decision if result.outcomes else None
        role = " or ".join(pending.approval_roles) if pending else "ROLE"
        console.print(
            f"Next: proctor approvals approve {result.approval_id} --as NAME --role {role} "
            f'--reason "…"\n      proctor run --resume {result.run_id}'
        )
