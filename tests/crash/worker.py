"""A worker process for the crash tests: it runs governed calls and SIGKILLs itself on cue.

Run from the repository root as ``python -m tests.crash.worker COMMAND ...``:

- ``start``: open a run and make the calls of a script;
- ``approve``: approve a pending request as a supervisor;
- ``resume``: take a run over, settle what a crash left open, then optionally run
  the approved step, replay a script and make further calls.

It reports what happens as JSON lines on stdout (flushed at once, so a report
written just before the kill still reaches the parent). The kill is a real
``SIGKILL``: no ``finally``, no atexit, no flush of anything but what is already
committed.

Kill points (``--kill-at``), for the tool named by ``--kill-tool`` (and the step
``--kill-step`` if given):

- ``after_intent``: the intent entry is durable, the tool has not run;
- ``in_tool``: the tool applied its effect in the ledger, but has not returned;
- ``after_execute``: the tool returned, its outcome is not recorded;
- ``before_hand_off``: inside the commit that records an unknown outcome and hands
  the run off (``Run._set_state`` is patched to die there: there is no observer hook).

``--kill-after-calls N`` kills the worker once its Nth call of the script has
returned (between calls, or right after a call paused for approval).

``--slow-tool T --slow-s S`` makes tool T wait S seconds before it acts (a slow
provider, for the lease tests); ``resume --wait-busy S`` retries a busy run for
up to S seconds before it reports ``busy``.

Every tool invocation is counted in the ledger's ``attempts`` table as
``invoked:<tool>`` before the tool's own code runs, in its own transaction, so a
second execution cannot hide behind the ledger's unique key.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import proctor
from proctor.runs.recorder import Recorder
from proctor.tools import Tool
from tests.shop import Ledger, make_tools

KILL_POINTS = ("after_intent", "in_tool", "after_execute", "before_hand_off")

SPEC: dict[str, str] = {
    "agent": "bot",
    "role": "agent",
    "tenant": "acme",
    "workflow": "support",
    "requester": "alice",
}

EMAIL = {"to": "carol@example.com", "body": "your refund is on its way"}

Call = tuple[str, dict[str, Any]]

SCRIPTS: dict[str, list[Call]] = {
    "refund": [("refund", {"order_id": "A-1", "amount": "20.00"})],
    "send_email": [("send_email", EMAIL)],
    "lookup": [("lookup", {"order_id": "A-1"})],
    "big_refund": [("refund", {"order_id": "A-1", "amount": "500.00"})],
    "support": [
        ("lookup", {"order_id": "A-1"}),
        ("refund", {"order_id": "A-1", "amount": "20.00"}),
        ("send_email", EMAIL),
        ("refund", {"order_id": "A-2", "amount": "30.00"}),
    ],
    "followup": [("lookup", {"order_id": "A-2"})],
    "slow_write": [("slow_write", {})],  # times out: its outcome is unknown
}


def settings_for(home: Path, db_url: str, lease_s: float) -> proctor.Settings:
    """The same settings in every process of a test (the audit key named, not from the env)."""
    return proctor.Settings(
        home=home, db_url=db_url, lease_s=lease_s, audit_key_file=home / "audit-key.pem"
    )


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}, default=str) + "\n")
    sys.stdout.flush()


def die(point: str, step: int | None, tool: str) -> None:
    emit("kill", point=point, step=step, tool=tool)
    os.kill(os.getpid(), signal.SIGKILL)


class Killer:
    """A ``CallObserver`` that kills the process at one point of one tool's call."""

    def __init__(self, point: str | None, tool: str | None, step: int | None) -> None:
        self.point, self.tool, self.step = point, tool, step

    def hit(self, point: str, step: int | None, tool: str) -> bool:
        return (
            self.point == point and self.tool == tool and (self.step is None or self.step == step)
        )

    def after_intent(self, run_id: str, step: int, tool: str) -> None:
        if self.hit("after_intent", step, tool):
            die("after_intent", step, tool)

    def after_execute(self, run_id: str, step: int, tool: str) -> None:
        if self.hit("after_execute", step, tool):
            die("after_execute", step, tool)


def instrument(t: Tool, ledger: Ledger, killer: Killer, delay_s: float = 0.0) -> Tool:
    """The same tool, counting each invocation and dying after its effect when told to.

    ``delay_s``: the tool first waits that long, as a slow payment provider would.
    """
    inner = t.fn

    def before(kwargs: dict[str, Any]) -> int | None:
        ctx = kwargs.get(t.context_param) if t.context_param else None
        ledger.attempt(ctx.idempotency_key if ctx else "", f"invoked:{t.name}")
        return ctx.step if ctx else None

    def after(step: int | None) -> None:
        if killer.hit("in_tool", step, t.name):
            die("in_tool", step, t.name)

    fn: Callable[..., Any]
    if t.is_async:

        async def fn(**kwargs: Any) -> Any:
            step = before(kwargs)
            await asyncio.sleep(delay_s)
            result = await inner(**kwargs)
            after(step)
            return result

    else:

        def fn(**kwargs: Any) -> Any:
            step = before(kwargs)
            time.sleep(delay_s)
            result = inner(**kwargs)
            after(step)
            return result

    return dataclasses.replace(t, fn=fn)


def kill_before_hand_off() -> None:
    """Die while the unknown outcome and the hand-off are written, before they commit."""
    move = Recorder._move

    def dying(
        recorder: Recorder, conn: Any, run: Any, state: Any, reason: Any, detail: Any
    ) -> None:
        if state is proctor.RunState.HANDED_OFF:
            die("before_hand_off", None, reason.value)
        move(recorder, conn, run, state, reason, detail)

    Recorder._move = dying  # type: ignore[method-assign]


def build_runtime(args: argparse.Namespace) -> proctor.Runtime:
    killer = Killer(args.kill_at, args.kill_tool, args.kill_step)
    if args.kill_at == "before_hand_off":
        kill_before_hand_off()
    ledger = Ledger(Path(args.ledger))
    tools = [
        instrument(t, ledger, killer, args.slow_s if t.name == args.slow_tool else 0.0)
        for t in make_tools(ledger)
    ]
    return proctor.Runtime(
        policy=Path(args.bundle),
        tools=tools,
        settings=settings_for(Path(args.home), args.db, args.lease),
        observers=[killer],
        retry_backoff_s=0.01,
    )


def report(outcome: proctor.CallOutcome | None, phase: str) -> None:
    if outcome is None:
        emit("outcome", phase=phase, status=None)
        return
    emit(
        "outcome",
        phase=phase,
        step=outcome.step,
        tool=outcome.tool,
        status=outcome.status.value,
        replayed=outcome.replayed,
        result=outcome.result,
        error=outcome.error,
        approval_id=outcome.approval_id,
    )


async def run_script(
    run: proctor.Run, name: str, phase: str, kill_after_calls: int | None = None
) -> bool:
    """Make the script's calls; False if the run ended (before or during them)."""
    for n, (tool_name, call_args) in enumerate(SCRIPTS[name], start=1):
        try:
            outcome = await run.call(tool_name, call_args)
        except (proctor.RunTerminated, proctor.BudgetExceeded) as exc:
            emit("error", phase=phase, type=type(exc).__name__, message=str(exc))
            return False
        report(outcome, phase)
        if kill_after_calls == n:
            die("after_calls", outcome.step, tool_name)
    return True


def emit_state(run: proctor.Run, phase: str) -> None:
    emit(
        "state",
        phase=phase,
        state=run.state.value,
        reason=run.reason,
        steps=[s.status.value for s in run.steps],
    )


async def start(args: argparse.Namespace) -> None:
    async with build_runtime(args) as rt:
        budget = proctor.BudgetCaps(tool_calls=args.tool_calls)
        run = await rt.start_run(proctor.RunSpec(**SPEC, budget=budget))
        emit("started", run_id=run.id)
        await run_script(run, args.script, "start", args.kill_after_calls)
        emit_state(run, "end")


async def approve(args: argparse.Namespace) -> None:
    async with build_runtime(args) as rt:
        try:
            request = rt.approvals.approve(
                args.approval, proctor.Approver("sam", "supervisor"), "checked the order"
            )
        except proctor.ApprovalError as exc:
            emit("approval_refused", type=type(exc).__name__, message=str(exc))
            return
        emit("approved", status=request.status.value, decided_by=request.decided_by)


async def resume(args: argparse.Namespace) -> None:
    async with build_runtime(args) as rt:
        run = await take_over(rt, args.run, args.wait_busy)
        if run is None:
            return
        emit_state(run, "resumed")
        if args.pending:
            report(await run.resume_pending(), "pending")
            if args.replay:
                # resume_pending moved this handle past the step; the code replays from
                # the start on a handle taken over afresh, as a restarted agent would.
                run = await rt.resume(args.run)
        alive = True
        if args.replay:
            alive = await run_script(run, args.replay, "replay", args.kill_after_calls)
        if alive and args.then:
            alive = await run_script(run, args.then, "then")
        if alive and args.complete:
            await run.complete("crash test done")
        if alive and args.hand_off:
            await run.hand_off(proctor.Reason.ESCALATED, "an operator takes the run over")
        emit_state(run, "end")


async def take_over(rt: proctor.Runtime, run_id: str, wait_busy_s: float) -> proctor.Run | None:
    """``rt.resume``, retrying while a live worker holds the run for up to ``wait_busy_s``."""
    deadline = time.monotonic() + wait_busy_s
    busy = 0
    while True:
        try:
            run = await rt.resume(run_id)
        except proctor.RunBusy as exc:
            busy += 1
            if time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                continue
            emit("busy", message=str(exc), tries=busy)
            return None
        except proctor.RunTerminated as exc:
            emit("terminated", message=str(exc))
            return None
        if busy:
            emit("was_busy", tries=busy)
        return run


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tests.crash.worker")
    parser.add_argument("command", choices=["start", "approve", "resume"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--home", required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--lease", type=float, required=True)
    parser.add_argument("--kill-at", choices=KILL_POINTS)
    parser.add_argument("--kill-tool")
    parser.add_argument("--kill-step", type=int)
    parser.add_argument("--kill-after-calls", type=int)
    parser.add_argument("--slow-tool", help="this tool waits --slow-s before it acts")
    parser.add_argument("--slow-s", type=float, default=0.0)
    parser.add_argument("--script", choices=sorted(SCRIPTS))
    parser.add_argument("--tool-calls", type=int, help="the run's tool-call budget")
    parser.add_argument("--approval")
    parser.add_argument("--run")
    parser.add_argument("--pending", action="store_true")
    parser.add_argument("--replay", choices=sorted(SCRIPTS))
    parser.add_argument("--then", choices=sorted(SCRIPTS))
    parser.add_argument("--complete", action="store_true")
    parser.add_argument("--hand-off", action="store_true", help="end the run, escalated")
    parser.add_argument(
        "--wait-busy", type=float, default=0.0, help="retry a busy run for this long"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    command = {"start": start, "approve": approve, "resume": resume}[args.command]
    asyncio.run(command(args))


if __name__ == "__main__":
    main()
