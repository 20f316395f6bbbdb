"""A worker for the race tests: it resumes approved runs that other workers resume too.

Run from the repository root as ``python -m tests.crash.race --db URL --home DIR
--bundle DIR --executions FILE RUN_ID...``. For each run it takes the run over, runs
the approved call if nothing ran it yet, and completes the run. A run another
worker holds or has ended is skipped: that is the expected answer, not a failure.
Anything else ends the process with a traceback. It prints one JSON line of counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import proctor
from proctor import Effect, ToolContext, tool

POLICY = """
@id("pay-supervised")
@approval("supervisor")
permit(principal in Role::"agent", action == Action::"pay", resource);
"""

SPEC = proctor.RunSpec(
    agent="bot", role="agent", tenant="acme", workflow="payments", requester="alice"
)


def pay_tool(executions: Path) -> proctor.Tool:
    @tool(effect=Effect.IRREVERSIBLE)
    def pay(invoice: str, amount: str, ctx: ToolContext) -> dict[str, Any]:
        """Pay an invoice: every real execution is a line in the executions file."""
        line = f"{ctx.idempotency_key} {os.getpid()} {invoice}\n".encode()
        fd = os.open(executions, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)  # one write of a short line: appended whole
        finally:
            os.close(fd)
        return {"paid": invoice, "amount": amount}

    return pay


def settings(home: Path, db_url: str) -> proctor.Settings:
    return proctor.Settings(
        home=home, db_url=db_url, lease_s=30.0, audit_key_file=home / "audit-key.pem"
    )


async def work(args: argparse.Namespace) -> dict[str, int]:
    counts = {"executed": 0, "busy": 0, "ended": 0, "nothing_pending": 0}
    rt = proctor.Runtime(
        policy=Path(args.bundle),
        tools=[pay_tool(Path(args.executions))],
        settings=settings(Path(args.home), args.db),
        telemetry=None,
    )
    async with rt:
        for run_id in args.runs:
            try:
                run = await rt.resume(run_id)
            except proctor.RunBusy:
                counts["busy"] += 1
                continue
            except proctor.RunTerminated:
                counts["ended"] += 1
                continue
            outcome = await run.resume_pending()
            if outcome is None:
                counts["nothing_pending"] += 1
            elif outcome.status is proctor.CallStatus.EXECUTED:
                counts["executed"] += 1
            await run.complete("paid")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(prog="tests.crash.race")
    parser.add_argument("--db", required=True)
    parser.add_argument("--home", required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--executions", required=True)
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()
    sys.stdout.write(json.dumps(asyncio.run(work(args))) + "\n")


if __name__ == "__main__":
    main()
