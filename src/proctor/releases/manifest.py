"""A release's manifest: what defines an agent's behaviour, hashed.

The policy bundle (its version; routing and the model of each tier travel in its
``proctor.yaml``), the model the app's agent runs on, the system prompt, the tool
declarations (schema, effect, trust: ``ToolRegistry.version`` is what each decision
records) and the eval report the release passed. Two manifests with the same digest
behave alike; ``diff`` says what changed between two.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from proctor.errors import ConfigError
from proctor.evals.gate import GateResult, GateRules, compare
from proctor.evals.report import Report
from proctor.jsonvalue import digest
from proctor.policy import PolicyBundle
from proctor.tools import ToolRegistry


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PolicyPart(_Frozen):
    version: str
    """``label@digest``, as runs and decisions name it."""
    digest: str
    """SHA-256 over the bundle's files."""


class ToolPart(_Frozen):
    name: str
    schema_hash: str
    effect: str
    trust: str | None


class EvalPart(_Frozen):
    suite: str
    digest: str
    """SHA-256 of the report's JSON."""
    policy_version: str
    success_rate: float
    runs: int
    report: dict[str, Any]
    """The whole report, so ``diff`` can run the eval gate between two releases."""


class Manifest(_Frozen):
    app: str
    """The app reference (``module:attr``) it was built from."""
    policy: PolicyPart
    routing: dict[str, str]
    """The model serving each tier, from the bundle's routing settings."""
    model: str | None
    """The model the agent runs on when it is not routed by tier; None to route."""
    system_prompt: str | None
    """What the agent's model is told first; None for the agent's generic prompt."""
    prompt_hash: str
    tools_version: str
    """``ToolRegistry.version``: every tool's declaration and hooks, hashed."""
    tools: tuple[ToolPart, ...]
    eval: EvalPart | None = None

    @property
    def digest(self) -> str:
        """SHA-256 over the manifest, the eval report counted by its own digest."""
        body = self.model_dump(mode="json")
        if self.eval is not None:
            body["eval"] = {k: v for k, v in body["eval"].items() if k != "report"}
        return digest(body)

    def eval_report(self) -> Report | None:
        return None if self.eval is None else Report.model_validate(self.eval.report)


def build_manifest(
    *,
    app: str,
    bundle: PolicyBundle,
    tools: ToolRegistry,
    model: str | None,
    system_prompt: str | None,
    report: Report | None,
) -> Manifest:
    """The manifest of a release; a report made for another bundle is a ``ConfigError``."""
    prompt = system_prompt or ""
    return Manifest(
        app=app,
        policy=PolicyPart(version=str(bundle.version), digest=bundle.version.digest),
        routing={t.value: m for t, m in sorted(bundle.settings.routing.models.items())},
        model=model,
        system_prompt=system_prompt,
        prompt_hash=hashlib.sha256(prompt.encode()).hexdigest(),
        tools_version=tools.version,
        tools=tuple(
            ToolPart(
                name=t.name,
                schema_hash=digest(t.json_schema())[:16],
                effect=t.effect.value,
                trust=None if t.trust is None else t.trust.value,
            )
            for t in sorted(tools, key=lambda t: t.name)
        ),
        eval=None if report is None else _eval_part(report, bundle),
    )


def _eval_part(report: Report, bundle: PolicyBundle) -> EvalPart:
    if report.manifest.policy_version != str(bundle.version):
        raise ConfigError(
            f"the eval report was made with policy bundle {report.manifest.policy_version}, "
            f"not {bundle.version}: run `proctor eval run` with this bundle and give that report"
        )
    body = report.model_dump(mode="json")
    return EvalPart(
        suite=report.suite,
        digest=digest(body),
        policy_version=report.manifest.policy_version,
        success_rate=report.summary.success_rate,
        runs=report.summary.runs,
        report=body,
    )


@dataclass(frozen=True)
class Change:
    """One part of the manifest that differs between two releases."""

    field: str
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.field}: {self.before} → {self.after}"


def diff(before: Manifest, after: Manifest) -> list[Change]:
    """What differs, part by part; tools one by one."""
    changes = []
    a, b = before.model_dump(mode="json"), after.model_dump(mode="json")
    for name in ("app", "policy", "model", "prompt_hash", "tools_version"):
        if a[name] != b[name]:
            changes.append(Change(name, _show(a[name]), _show(b[name])))
    for tier in sorted(a["routing"].keys() | b["routing"].keys()):
        old, new = a["routing"].get(tier), b["routing"].get(tier)
        if old != new:
            changes.append(Change(f"routing.{tier}", _show(old), _show(new)))
    old_tools = {t["name"]: t for t in a["tools"]}
    new_tools = {t["name"]: t for t in b["tools"]}
    for name in sorted(old_tools.keys() | new_tools.keys()):
        old_tool, new_tool = old_tools.get(name), new_tools.get(name)
        if old_tool != new_tool:
            changes.append(Change(f"tools.{name}", _tool(old_tool), _tool(new_tool)))
    old_eval, new_eval = before.eval, after.eval
    if (old_eval and old_eval.digest) != (new_eval and new_eval.digest):
        changes.append(Change("eval", _eval(old_eval), _eval(new_eval)))
    return changes


def gate(before: Manifest, after: Manifest, rules: GateRules | None = None) -> GateResult | None:
    """The eval gate between the two releases' reports; None unless both have one."""
    old, new = before.eval_report(), after.eval_report()
    if old is None or new is None:
        return None
    return compare(old, new, rules or GateRules())


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, Mapping):
        return str(value.get("version", value))
    return str(value)


def _tool(t: Mapping[str, Any] | None) -> str:
    if t is None:
        return "(absent)"
    return f"{t['effect']}, trust {t['trust'] or 'default'}, schema {t['schema_hash']}"


def _eval(e: EvalPart | None) -> str:
    if e is None:
        return "(no report)"
    return f"{e.suite} {e.success_rate:.1%} of {e.runs} runs ({e.digest[:12]})"
