"""Several worker processes resume the same approved runs at once: each call runs once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

import proctor
from proctor.audit import SigningKey
from proctor.states import RunState
from proctor.store.tables import audit_entries, runs

from .conftest import ROOT, child_env
from .race import POLICY, SPEC, pay_tool, settings

RUNS = 30
WORKERS = 4


async def _approved_runs(rt: proctor.Runtime) -> list[str]:
    ids = []
    for n in range(RUNS):
        run = await rt.start_run(SPEC)
        outcome = await run.call("pay", {"invoice": f"inv-{n}", "amount": "120.00"})
        assert outcome.status is proctor.CallStatus.AWAITING_APPROVAL
        rt.approvals.approve(
            outcome.approval_id or "", proctor.Approver("sam", "supervisor"), "checked"
        )
        ids.append(run.id)
    return ids


def _race(tmp_path: Path, db_url: str, round_: int) -> None:
    # Every round writes to the same store, so with the same audit key.
    home, bundle = tmp_path / "home", tmp_path / f"bundle{round_}"
    executions = tmp_path / f"executions{round_}.txt"
    bundle.mkdir()
    (bundle / "pay.cedar").write_text(POLICY)
    (bundle / "proctor.yaml").write_text("label: race\n")
    SigningKey.load_or_generate(home / "audit-key.pem")
    rt = proctor.Runtime(
        policy=bundle, tools=[pay_tool(executions)], settings=settings(home, db_url), telemetry=None
    )
    try:
        ids = asyncio.run(_approved_runs(rt))
        command = [sys.executable, "-m", "tests.crash.race", "--db", db_url, "--home", str(home)]
        command += ["--bundle", str(bundle), "--executions", str(executions), *ids]
        procs = [
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=child_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(WORKERS)
        ]
        results = [p.communicate(timeout=120) for p in procs]
        for proc, (_, err) in zip(procs, results, strict=True):
            assert proc.returncode == 0, err  # no worker crashed
        counts = [json.loads(out) for out, _ in results]
        assert sum(c["executed"] for c in counts) == RUNS

        lines = executions.read_text().splitlines()
        keys = Counter(line.split()[0] for line in lines)
        assert len(lines) == RUNS  # exactly one real execution per approved call
        assert set(keys.values()) == {1}
        assert sorted(keys) == sorted(f"{run_id}/0" for run_id in ids)

        with rt.store.read() as conn:
            ended = Counter(
                row.run_id
                for row in conn.execute(
                    sa.select(audit_entries.c.run_id).where(
                        audit_entries.c.kind == "run.state", audit_entries.c.run_id.in_(ids)
                    )
                )
            )
            states = {
                RunState(s)
                for (s,) in conn.execute(sa.select(runs.c.state).where(runs.c.id.in_(ids)))
            }
        # Each run: paused, decided, completed; no second end.
        assert set(ended.values()) == {3}
        assert states == {RunState.COMPLETED}
        report = rt.verify_audit()
        assert report.ok, report
    finally:
        rt.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_four_workers_run_each_approved_call_exactly_once(tmp_path: Path, db_url: str) -> None:
    # PostgreSQL is where concurrent take-overs really interleave: race there five times.
    rounds = 5 if db_url.startswith("postgresql") else 1
    for round_ in range(rounds):
        _race(tmp_path, db_url, round_)
