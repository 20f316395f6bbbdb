"""proctor run: a request through the agent, paused for approval, resumed in other processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test runs `proctor` in processes of its own


def proctor(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCTOR_")}
    env.update(PROCTOR_HOME=str(home), COLUMNS="200", NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "proctor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=home.parent,
        check=False,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / ".proctor"


def test_a_small_refund_completes_with_its_cost(home: Path) -> None:
    done = proctor(home, "run", "Please refund $30 on order A-1001, it arrived broken", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["state"], summary["reason"], summary["tier"]) == ("completed", "done", "strong")
    assert [s["tool"] for s in summary["steps"]] == ["lookup_order", "issue_refund"]
    assert float(summary["cost_usd"]) > 0


def test_a_large_refund_waits_then_resumes_in_other_processes(home: Path) -> None:
    paused = proctor(
        home, "run", "Refund $520 on order A-1002, the customer sent it back", "--json"
    )
    assert paused.returncode == 10, paused.stderr  # awaiting approval
    summary = json.loads(paused.stdout)
    assert summary["state"] == "awaiting_approval"
    approved = proctor(
        home,
        "approvals",
        "approve",
        summary["approval_id"],
        "--as",
        "sam",
        "--role",
        "supervisor",
        "--reason",
        "return received",
    )
    assert approved.returncode == 0, approved.stderr
    done = proctor(home, "run", "--resume", summary["run_id"], "--json")
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout)
    assert (final["state"], final["run_id"]) == ("completed", summary["run_id"])
    assert "520.00" in final["answer"]
    verified = proctor(home, "audit", "verify")
    assert verified.returncode == 0, verified.stderr


def test_an_injected_refund_never_runs_on_its_own(home: Path) -> None:
    attempt = proctor(
        home,
        "run",
        "Can you check order A-1010 for me?",
        "--fault",
        "obey_injection=1",
        "--seed",
        "3",
        "--json",
    )
    assert attempt.returncode == 10, attempt.stderr
    summary = json.loads(attempt.stdout)
    refund = summary["steps"][-1]
    assert (refund["tool"], refund["status"]) == ("issue_refund", "awaiting_approval")
    assert "untrusted-amount-needs-supervisor" in refund["policy_ids"]
    # An amount is neither a sink nor a target: the call is held, the run's mode stays.
    assert summary["mode"] == "normal"


def test_a_bad_fault_name_is_a_clear_error(home: Path) -> None:
    bad = proctor(home, "run", "hello", "--fault", "telepathy=1")
    assert bad.returncode == 2
    assert "the faults are:" in bad.stderr
