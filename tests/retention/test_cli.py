"""``proctor retention purge`` as an operator runs it, then ``proctor audit verify``."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from proctor import CallStatus, RunSpec, Runtime, Settings
from proctor.testing import ManualClock
from tests.cli.conftest import DEMO_BUNDLE, Cli
from tests.cli.shop import app as demo_app

RETENTION = "retention:\n  default: {payloads: 30d, runs: 30d}\n"


def finished_run(days_ago: int) -> str:
    """A demo-shop run that looked an order up and completed ``days_ago`` days ago."""

    async def go() -> str:
        clock = ManualClock(datetime.now(UTC) - timedelta(days=days_ago))
        rt = Runtime.for_app(demo_app(), Settings(), clock=clock)
        try:
            run = await rt.start_run(
                RunSpec(
                    agent="support-bot",
                    role="support_agent",
                    tenant="demo",
                    workflow="refunds",
                    requester="customer:c-42",
                )
            )
            found = await run.call("lookup_order", {"order_id": "A-1001"})
            assert found.status is CallStatus.EXECUTED
            await run.complete("done")
            return run.id
        finally:
            rt.close()

    return asyncio.run(go())


def bundle_with_retention(tmp: Path) -> Path:
    bundle = tmp / "bundle"
    shutil.copytree(DEMO_BUNDLE, bundle)
    with (bundle / "proctor.yaml").open("a") as handle:
        handle.write(RETENTION)
    return bundle


def test_purge_says_what_it_deleted_and_the_audit_log_still_verifies(
    cli: Cli, tmp_path: Path
) -> None:
    old = finished_run(days_ago=40)
    finished_run(days_ago=1)
    bundle = bundle_with_retention(tmp_path)
    old_entries = cli.sql("SELECT count(*) FROM audit_entries WHERE run_id = ?", old)[0][0]

    dry = cli("retention", "purge", "--policy", str(bundle), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would purge" in dry.output
    assert "retention.default.payloads=30d" in dry.output
    assert f"{old_entries + 1} item(s) would be purged." in dry.output
    assert cli.sql("SELECT count(*) FROM audit_payloads WHERE body = ''")[0][0] == 0

    done = cli("retention", "purge", "--policy", str(bundle))
    assert done.exit_code == 0, done.output
    assert f"{old_entries + 1} item(s) purged." in done.output
    assert cli.sql("SELECT id FROM runs WHERE purged_at IS NOT NULL") == [(old,)]

    verified = cli("audit", "verify")
    assert verified.exit_code == 0, verified.output
    assert f"{old_entries} payload(s) purged by retention:" in verified.output
    assert "under retention.default.payloads=30d" in verified.output


def test_a_bundle_without_retention_purges_nothing_and_says_how_to_set_it(cli: Cli) -> None:
    finished_run(days_ago=400)
    result = cli("retention", "purge", "--policy", str(DEMO_BUNDLE))
    assert result.exit_code == 0, result.output
    assert "sets no retention, so nothing expires" in result.output
    assert cli.sql("SELECT count(*) FROM audit_payloads WHERE body = ''")[0][0] == 0


def test_purge_needs_to_know_which_bundle_sets_retention(cli: Cli) -> None:
    result = cli("retention", "purge")
    assert result.exit_code == 2
    assert "pass --policy DIR or --app module:attr" in result.output
