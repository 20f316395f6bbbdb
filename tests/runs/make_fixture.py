"""Writes ``fixtures/run_v<RUN_SCHEMA_VERSION>.json``: one run's rows as this proctor stores them.

    python -m tests.runs.make_fixture

Run it when ``RUN_SCHEMA_VERSION`` is raised, so the new version has its fixture too;
never rewrite the fixture of an older version: it is what older proctors stored.
The run has a model call, a read that succeeded, a read whose tool failed, a refund
that waited for approval and was approved, and ends completed.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from proctor.approvals import Approver
from proctor.bench.service_store import _POLICY, _REQUEST, _answer, lookup, refund
from proctor.releases import build_manifest
from proctor.runs import RunSpec
from proctor.runs.model import RUN_SCHEMA_VERSION
from proctor.runtime import Runtime
from proctor.settings import Settings
from proctor.store.tables import approvals, model_calls, runs, steps
from proctor.testing import FunctionModel, ManualClock
from proctor.tools import Effect, tool

HERE = Path(__file__).parent / "fixtures"
TABLES = (runs, steps, approvals, model_calls)


@tool(effect=Effect.READ)
async def stock(sku: str) -> dict[str, Any]:
    """A warehouse that does not answer."""
    raise RuntimeError(f"warehouse timed out looking up {sku}")


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def _run(root: Path) -> dict[str, list[dict[str, Any]]]:
    bundle = root / "bundle"
    bundle.mkdir()
    (bundle / "policy.cedar").write_text(_POLICY)
    (bundle / "proctor.yaml").write_text("label: fixture\n")
    clock = ManualClock()
    settings = Settings(home=root / "home", db_url=f"sqlite:///{root / 'proctor.db'}")
    rt = Runtime(policy=bundle, tools=[lookup, refund, stock], settings=settings, clock=clock)
    try:
        # Version 4 on: the run opens under the stable release.
        manifest = build_manifest(
            app="tests.runs.make_fixture:app",
            bundle=rt.policy,
            tools=rt.tools,
            model=None,
            system_prompt=None,
            report=None,
        )
        release = rt.releases.create(manifest, "the fixture's release", "ann")
        rt.releases.promote(release.id, "ann")
        spec = RunSpec(
            agent="support-bot", role="agent", tenant="acme", workflow="support", requester="ann"
        )
        run = await rt.start_run(spec)
        await run.ask(FunctionModel(_answer, name="openai:gpt-4o-mini"), _REQUEST)
        clock.advance(1)
        await run.call("lookup", {"order_id": "A-1"}, reason="the customer asked")
        clock.advance(1)
        await run.call("stock", {"sku": "SKU-9"})
        clock.advance(1)
        held = await run.call("refund", {"order_id": "A-1", "amount": "500.00"})
        clock.advance(60)
        assert held.approval_id is not None
        rt.approvals.approve(held.approval_id, Approver("sam", "supervisor"), "checked the order")
        await run.resume_pending()
        clock.advance(1)
        await run.complete()
        with rt.store.read() as conn:
            rows = {
                t.name: [
                    {k: _plain(v) for k, v in r._mapping.items()}
                    for r in conn.execute(
                        sa.select(t).where((t.c.id if t is runs else t.c.run_id) == run.id)
                    )
                ]
                for t in TABLES
            }
    finally:
        rt.close()
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = asyncio.run(_run(Path(tmp)))
    path = HERE / f"run_v{RUN_SCHEMA_VERSION}.json"
    path.write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
