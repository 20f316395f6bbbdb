"""A deployment with two releases: the stable bundle holds refunds above $100 for a
supervisor, the candidate lets refunds up to $1,000 run on their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from proctor.policy import PolicyBundle, ResourceRef
from proctor.policy.versions import record_bundle_version
from proctor.releases import build_manifest
from proctor.runs import RunSpec
from proctor.runtime import Runtime
from proctor.settings import Settings
from proctor.testing import ManualClock
from proctor.tools import Effect, Tool, tool

POLICY = """
@id("reads")
permit (principal, action == Action::"lookup", resource);

@id("refund-once")
forbid (principal, action == Action::"refund", resource)
when { resource.refunds > 0 };

@id("small-refund")
permit (principal, action == Action::"refund", resource)
when { context.args.amount.lessThanOrEqual(decimal("LIMIT")) };

@id("refund-needs-supervisor")
@approval("supervisor")
permit (principal, action == Action::"refund", resource)
when { context.args.amount.lessThanOrEqual(decimal("1000.00")) };
"""

SLO = """
slo:
  check_every_s: 0
  success_rate: {target: 0.9, min_runs: 20, window_s: 3600}
  escalation_rate: null
  cost_per_run_usd: null
  duration_p95_s: null
  incidents:
    policy_breach: {}
"""


def write_bundle(folder: Path, label: str, limit: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "policy.cedar").write_text(POLICY.replace("LIMIT", limit))
    (folder / "proctor.yaml").write_text(f"label: {label}\n{SLO}")
    return folder


@dataclass
class Counters:
    """How often each tool really ran."""

    calls: dict[str, int] = field(default_factory=lambda: {"lookup": 0, "refund": 0})


def make_tools(counters: Counters) -> list[Tool]:
    @tool(effect=Effect.READ)
    async def lookup(order_id: str) -> dict[str, Any]:
        """Read an order."""
        counters.calls["lookup"] += 1
        return {"order_id": order_id, "total": "900.00"}

    def order(args: Any) -> ResourceRef:  # the system of record, as it is when decided
        return ResourceRef("Order", args.order_id, {"refunds": counters.calls["refund"]})

    @tool(effect=Effect.WRITE, resource=order)
    async def refund(order_id: str, amount: Decimal) -> dict[str, Any]:
        """Refund an order."""
        counters.calls["refund"] += 1
        return {"refunded": str(amount)}

    return [lookup, refund]


@dataclass
class Deployment:
    root: Path
    db_url: str
    clock: ManualClock
    counters: Counters
    stable_bundle: Path
    weaker_bundle: Path
    runtimes: list[Runtime] = field(default_factory=list)

    def runtime(self) -> Runtime:
        settings = Settings(home=self.root / "home", db_url=self.db_url, releases_refresh_s=0)
        rt = Runtime(
            policy=self.stable_bundle,
            tools=make_tools(self.counters),
            settings=settings,
            clock=self.clock,
            telemetry=None,
        )
        self.runtimes.append(rt)
        return rt

    def release(self, rt: Runtime, bundle: Path, note: str) -> str:
        loaded = PolicyBundle.load(bundle)
        record_bundle_version(rt.store, loaded, rt.clock.now())
        manifest = build_manifest(
            app="tests.releases:app",
            bundle=loaded,
            tools=rt.tools,
            model=None,
            system_prompt=None,
            report=None,
        )
        return rt.releases.create(manifest, note, "ann").id


def spec(requester: str = "cust-1", tenant: str = "acme") -> RunSpec:
    return RunSpec(
        agent="bot", role="support_agent", tenant=tenant, workflow="support", requester=requester
    )


@pytest.fixture
def deployment(tmp_path: Path, db_url: str) -> Iterator[Deployment]:
    d = Deployment(
        tmp_path,
        db_url,
        ManualClock(),
        Counters(),
        write_bundle(tmp_path / "stable", "shop-v1", "100.00"),
        write_bundle(tmp_path / "weaker", "shop-v2", "1000.00"),
    )
    yield d
    for rt in d.runtimes:
        rt.close()


@pytest.fixture
def two_releases(deployment: Deployment) -> Callable[[], tuple[Runtime, str, str]]:
    def make() -> tuple[Runtime, str, str]:
        rt = deployment.runtime()
        stable = deployment.release(rt, deployment.stable_bundle, "as it runs today")
        candidate = deployment.release(rt, deployment.weaker_bundle, "bigger refunds unattended")
        rt.releases.promote(stable, "ann")
        return rt, stable, candidate

    return make
