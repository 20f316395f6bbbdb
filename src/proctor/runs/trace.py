"""A run's span tree, derived from the run as the read model gives it.

Telemetry owns the span types and the export; this module knows what a run is
and which span each part of it becomes (the tree is drawn in
``proctor.telemetry.spans``). :func:`run_spans` derives the tree of a loaded
run; :func:`stored_spans` hands telemetry a ``SpanSource`` that loads the run
from the store when it exports it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from proctor.runs.spancontent import model_content, tool_content
from proctor.runs.views import ApprovalView, RunView, StepView, load_run, stored_conversation
from proctor.states import ApprovalStatus, RunState, StepStatus
from proctor.store import Store
from proctor.telemetry.spans import AttributeValue, Redact, SpanRecord, SpanSource, SpanTree

# Well-known provider names of the GenAI conventions, by proctor's model-spec prefix.
_PROVIDERS = {"openai": "openai", "anthropic": "anthropic"}

_FAILED_STEPS = frozenset({StepStatus.FAILED, StepStatus.OUTCOME_UNKNOWN})


def _us(value: float) -> timedelta:
    return timedelta(microseconds=value)


def _provider_and_model(spec: str) -> tuple[str, str]:
    provider, colon, model = spec.partition(":")
    if not colon:
        return "unknown", spec
    return _PROVIDERS.get(provider, provider), model


Unseal = Callable[[str], Any]
"""Opens a sealed value (``Sealer.open``): given only when content capture is on."""


def stored_spans(
    store: Store,
    run_id: str,
    *,
    tools: Mapping[str, str] | None = None,
    unseal: Unseal | None = None,
) -> SpanSource:
    """The span tree of the run ``run_id``, read from ``store`` when it is asked for.

    ``tools``: each tool's description, by name. ``unseal``: capture content (messages,
    tool arguments and results) on the spans, from the run's sealed conversation."""

    def derive(redact: Redact | None) -> Sequence[SpanRecord]:
        conversation = None
        with store.read() as conn:
            run = load_run(conn, run_id)
            if unseal is not None:
                sealed = stored_conversation(conn, run_id)
                if sealed and "sealed" in sealed:
                    conversation = unseal(sealed["sealed"])
        return run_spans(
            run,
            redact=redact,
            tools=tools,
            content=unseal is not None,
            conversation=conversation,
        )

    return derive


_ENDED_BADLY = frozenset({RunState.FAILED_SAFE, RunState.HANDED_OFF})
_STEP_ERRORS = {
    StepStatus.DENIED: "denied",
    StepStatus.APPROVAL_DENIED: "approval_denied",
    StepStatus.APPROVAL_EXPIRED: "approval_expired",
}
"""``error.type`` of a step that did not run: the conventions mark an operation that did
not succeed as an error, so a viewer's error filter finds refused calls."""
_WAIT_ERRORS = {
    ApprovalStatus.DENIED: "approval_denied",
    ApprovalStatus.EXPIRED: "approval_expired",
}


def run_spans(
    run: RunView,
    *,
    redact: Redact | None = None,
    tools: Mapping[str, str] | None = None,
    content: bool = False,
    conversation: Sequence[Mapping[str, Any]] | None = None,
) -> list[SpanRecord]:
    """The span tree of one run (loaded with its history), parents before children.

    A run that has not ended has an open run span (``end`` is ``None``), as has
    an approval still pending. ``tools`` gives tool descriptions; with ``content``, the
    spans carry the request and answer, tool arguments and results as stored, and (from
    ``conversation``) the messages each model call was sent.
    """
    tree = SpanTree(run.id, run.tenant, redact)
    reason = run.reason.value if run.reason is not None else None
    common: dict[str, AttributeValue | None] = {
        "proctor.run.id": run.id,
        "proctor.tenant": run.tenant,
        "proctor.workflow": run.workflow,
        # Sessions and users in viewers: the framework's conversation, else the run.
        "gen_ai.conversation.id": run.session or run.id,
        "session.id": run.session or run.id,
        "user.id": run.requester,
    }
    said: dict[str, AttributeValue | None] = {}
    if content:
        said = {
            "input.value": run.request,
            "output.value": run.answer,
        }
    tree.add(
        "run",
        None,
        f"invoke_agent {run.agent}",
        "internal",
        run.created_at,
        run.ended_at,
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": run.agent,
            "openinference.span.kind": "AGENT",
            **common,
            **said,
            "proctor.run.state": run.state.value,
            "proctor.run.reason": reason,
            "proctor.run.reason_detail": run.reason_detail,
            "proctor.run.mode": run.mode.value,
            "proctor.run.role": run.role,
            "proctor.run.requester": run.requester,
            "proctor.bundle.version": run.bundle_version,
            "proctor.cost.usd": float(run.usage.usd),
            "proctor.usage.model_tokens": run.usage.model_tokens,
            "proctor.usage.tool_calls": run.usage.tool_calls,
            "proctor.run.paused_s": run.paused_s,
        },
        error=reason if run.state in _ENDED_BADLY else None,
    )
    messages: list[dict[str, str]] = []
    if content and conversation:
        stops = [mc.stop_reason for mc in run.model_calls]
        messages = model_content(conversation, len(run.model_calls), stops)
    for n, mc in enumerate(run.model_calls):
        provider, requested = _provider_and_model(mc.model)
        params = mc.params or {}
        # The call's own start on the run's clock; what a model reports about its latency
        # (a simulated one makes it up) only for calls stored before the start was kept.
        started = mc.started_at or mc.created_at - timedelta(milliseconds=mc.latency_ms)
        tree.add(
            f"model/{mc.id}",
            "run",
            f"chat {requested}",
            "client",
            started,
            mc.created_at,
            {
                "gen_ai.operation.name": "chat",
                "openinference.span.kind": "LLM",
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": requested,
                "gen_ai.request.max_tokens": params.get("max_output_tokens"),
                "gen_ai.request.temperature": params.get("temperature"),
                "gen_ai.response.model": mc.answered_by,
                "gen_ai.response.id": mc.response_id,
                "server.address": mc.server_address,
                "server.port": mc.server_port,
                "gen_ai.response.finish_reasons": [mc.stop_reason],
                # The conventions count cached input inside input, reasoning inside output;
                # proctor keeps the four counts disjoint.
                "gen_ai.usage.input_tokens": mc.input_tokens + mc.cached_input_tokens,
                "gen_ai.usage.output_tokens": mc.output_tokens + mc.reasoning_tokens,
                "gen_ai.usage.cache_read.input_tokens": mc.cached_input_tokens,
                "gen_ai.usage.reasoning.output_tokens": mc.reasoning_tokens,
                **common,
                "proctor.model": mc.model,
                "proctor.model.tool_calls": mc.tool_calls,
                "proctor.cost.usd": mc.nano_usd / 1e9,
                **(messages[n] if n < len(messages) else {}),
            },
        )
    waits = {a.request.step: a for a in run.approvals}
    for step in run.steps:
        described = (tools or {}).get(step.tool)
        extra = {"gen_ai.tool.description": described, **(tool_content(step) if content else {})}
        _step_spans(tree, step, waits.get(step.idx), common, run.ended_at, extra)
    return tree.spans


def _step_end(step: StepView, wait: ApprovalView | None, ended: datetime | None) -> datetime | None:
    if step.finished_at is not None:
        return step.finished_at
    if wait is not None and wait.decided_at is not None:
        return wait.decided_at
    if step.status in (StepStatus.EXECUTING, StepStatus.AWAITING_APPROVAL):
        return ended  # still open while the run is
    return step.created_at  # denied: nothing ran after the decision


def _step_spans(
    tree: SpanTree,
    s: StepView,
    wait: ApprovalView | None,
    common: Mapping[str, AttributeValue | None],
    ended: datetime | None,
    extra: Mapping[str, AttributeValue | None],
) -> None:
    timings = s.timings_us
    decision = s.decision
    effect = decision.effect.value if decision is not None else None
    decide_us = timings.get("decide", decision.latency_us if decision is not None else 0.0)
    start = s.created_at - _us(timings.get("budget", 0.0) + decide_us)
    key = f"step/{s.idx}"
    step_attrs: dict[str, AttributeValue | None] = {**common, "proctor.step": s.idx}
    error = s.error.kind if s.error is not None and s.status in _FAILED_STEPS else None
    tree.add(
        key,
        "run",
        f"execute_tool {s.tool}",
        "internal",
        start,
        _step_end(s, wait, ended),
        {
            "gen_ai.operation.name": "execute_tool",
            "openinference.span.kind": "TOOL",
            "gen_ai.tool.name": s.tool,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.id": s.call_id,
            **extra,
            **step_attrs,
            "proctor.tool": s.tool,
            "proctor.step.status": s.status.value,
            "proctor.step.attempts": s.attempts,
            "proctor.decision.effect": effect,
            "proctor.error.message": s.error.message if error and s.error else None,
        },
        error=error
        or ("outcome_unknown" if s.status is StepStatus.OUTCOME_UNKNOWN else None)
        or _STEP_ERRORS.get(s.status),
    )
    tree.add(
        f"{key}/decide",
        key,
        f"proctor.decide {s.tool}",
        "internal",
        s.created_at - _us(decide_us),
        s.created_at,
        {
            "openinference.span.kind": "GUARDRAIL",
            **step_attrs,
            "proctor.tool": s.tool,
            "proctor.decision.effect": effect,
            "proctor.decision.reason": (decision.reason or None) if decision else None,
            "proctor.policy.ids": list(decision.policy_ids) if decision else [],
            "proctor.approval.roles": (list(decision.approval_roles) or None) if decision else None,
            "proctor.bundle.version": decision.bundle_version if decision else None,
            "proctor.decision.errors": (list(decision.errors) or None) if decision else None,
        },
    )
    if wait is not None:
        _approval_span(tree, key, s, wait, step_attrs, ended)
    if "execute" in timings and s.finished_at is not None:
        done = s.finished_at - _us(timings.get("record_outcome", 0.0))
        tree.add(
            f"{key}/execute",
            key,
            f"proctor.execute {s.tool}",
            "internal",
            done - _us(timings["execute"]),
            done,
            {
                "openinference.span.kind": "CHAIN",
                **step_attrs,
                "proctor.tool": s.tool,
                "proctor.step.status": s.status.value,
                "proctor.step.attempts": s.attempts,
                "proctor.idempotency_key": s.idempotency_key,
            },
            error=error,
        )


def _approval_span(
    tree: SpanTree,
    key: str,
    s: StepView,
    wait: ApprovalView,
    step_attrs: Mapping[str, AttributeValue | None],
    ended: datetime | None,
) -> None:
    request = wait.request
    tree.add(
        f"{key}/approval",
        key,
        f"proctor.approval {s.tool}",
        "internal",
        request.created_at,
        wait.decided_at or ended,
        {
            "openinference.span.kind": "GUARDRAIL",
            **step_attrs,
            "proctor.tool": s.tool,
            "proctor.approval.id": request.id,
            "proctor.approval.status": request.status.value,
            "proctor.approval.roles": list(request.roles),
            "proctor.approval.policy_ids": list(request.policy_ids),
            "proctor.approval.decided_by": request.decided_by,
            "proctor.approval.decider_role": request.decider_role,
            "proctor.approval.reason": request.decision_reason,
            "proctor.approval.expires_at": request.expires_at.isoformat(),
        },
        error=_WAIT_ERRORS.get(request.status),
    )
