"""What an evidence bundle holds besides the audit chain: the runs alive in the range,
the approval requests made or decided in it, model spend, the policy bundles in force
(files, permission matrix, settings) and the eval reports of the range.

Runs, approvals and costs are read through the read model (``proctor.runs.views``).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from proctor.audit.chain import timestamp
from proctor.errors import ConfigError, PolicyError
from proctor.evals.report import Report
from proctor.evidence import format as fmt
from proctor.evidence.backing import Discrepancy
from proctor.policy import PolicyBundle, permission_matrix
from proctor.policy.versions import StoredBundle
from proctor.runs.views import RunFilter, approvals_between, list_runs
from proctor.runs.views.aggregates import cost_by_workflow
from proctor.runtime import Runtime


@dataclass
class ExportSummary:
    path: Path
    tenants: list[str]
    entries: int = 0
    runs: int = 0
    reports: int = 0
    bundles: list[str] = field(default_factory=list)
    missing_bundles: list[str] = field(default_factory=list)
    """Versions in force in the range whose files this store never kept."""
    files: int = 0
    signed_heads: list[str] = field(default_factory=list)
    """Tenants whose head the export signed because no checkpoint covered the range."""
    discrepancies: list[Discrepancy] = field(default_factory=list)
    """Where the runs or approvals tables say what the audit chain does not (the bundle
    holds the chain's word)."""


def run_lines(
    conn: sa.Connection, tenant: str | None, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Runs alive at some time in the range (of one tenant, or all), with what they cost."""
    alive = RunFilter(tenant=tenant, until=until, alive_since=since)
    return [
        {
            "id": r.id,
            "tenant": r.tenant,
            "workflow": r.workflow,
            "agent": r.agent,
            "requester": r.requester,
            "state": r.state.value,
            "reason": r.reason.value if r.reason is not None else None,
            "reason_detail": r.reason_detail,
            "bundle_version": r.bundle_version,
            "created_at": _iso(r.created_at),
            "ended_at": _iso(r.ended_at),
            "purged_at": _iso(r.purged_at),
            "cost_usd": str(r.cost.usd),
            "tokens": r.cost.input_tokens + r.cost.output_tokens,
        }
        for r in list_runs(conn, alive, oldest_first=True)
    ]


def approval_lines(
    conn: sa.Connection, tenant: str | None, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Approval requests made or decided in the range."""
    found = []
    for view in approvals_between(conn, since, until, tenant=tenant):
        a = view.request
        found.append(
            {
                "id": a.id,
                "run_id": a.run_id,
                "step": a.step,
                "tenant": a.tenant,
                "tool": a.tool,
                "roles": list(a.roles),
                "policy_ids": list(a.policy_ids),
                "requester": a.requester,
                "agent": a.agent,
                "status": a.status.value,
                "created_at": _iso(a.created_at),
                "decided_at": _iso(view.decided_at),
                "decided_by": a.decided_by,
                "decider_role": a.decider_role,
                "decision_reason": a.decision_reason,
            }
        )
    return found


def cost_lines(
    conn: sa.Connection, tenant: str | None, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Model spend in the range, per tenant and workflow."""
    return [
        {
            "tenant": w.tenant,
            "workflow": w.workflow,
            "runs": w.runs,
            "model_calls": w.calls,
            "tokens": w.input_tokens + w.output_tokens,
            "cost_usd": str(w.usd),
        }
        for w in cost_by_workflow(conn, since, until, tenant=tenant)
    ]


def bundles(
    rt: Runtime,
    versions: list[str],
    stored: Mapping[str, StoredBundle],
    files: dict[str, bytes],
    summary: ExportSummary,
) -> dict[str, Any]:
    """Each version's files, matrix and settings into ``files``; its manifest entry back."""
    current = _current_bundle(rt)
    tools = {t.name: t.effect.value for t in rt.tools} or None
    found: dict[str, Any] = {}
    for version in versions:
        if version in stored:
            label, digest, contents = (
                stored[version].label,
                stored[version].digest,
                dict(stored[version].files),
            )
        elif current is not None and str(current.version) == version:
            label, digest = current.version.label, current.version.digest
            contents = dict(current.files)
        else:
            summary.missing_bundles.append(version)
            found[version] = {"available": False}
            continue
        folder = fmt.bundle_dir(digest)
        for relative, content in sorted(contents.items()):
            files[f"{folder}files/{relative}"] = content
        entry: dict[str, Any] = {
            "available": True,
            "label": label,
            "digest": digest,
            "folder": folder,
            "files": sorted(contents),
        }
        try:
            loaded = _load(contents)
        except (ConfigError, PolicyError) as exc:
            entry["matrix_error"] = str(exc)
        else:
            files[f"{folder}matrix.json"] = _json(permission_matrix(loaded, tools=tools).to_json())
            files[f"{folder}settings.json"] = _json(_settings_of(loaded))
        found[version] = entry
        summary.bundles.append(version)
    return found


def _current_bundle(rt: Runtime) -> PolicyBundle | None:
    try:
        return rt.policy
    except ConfigError:
        return None


def _load(contents: Mapping[str, bytes]) -> PolicyBundle:
    """A bundle from its kept files (written to a temporary folder to load)."""
    with tempfile.TemporaryDirectory(prefix="proctor-bundle-") as tmp:
        root = Path(tmp)
        for relative, content in contents.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        return PolicyBundle.load(root)


def _settings_of(bundle: PolicyBundle) -> dict[str, Any]:
    return {
        "bundle_version": str(bundle.version),
        "retention": bundle.settings.retention.model_dump(mode="json"),
        "redaction": bundle.settings.redaction.model_dump(mode="json"),
    }


def reports(
    folder: Path, since: datetime, until: datetime, files: dict[str, bytes]
) -> list[dict[str, Any]]:
    """Eval reports under ``folder`` created in the range (each distinct report once)."""
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    if not folder.is_dir():
        return found
    for path in sorted(folder.rglob("*.json")):
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            continue
        try:
            report = Report.model_validate_json(data)
            created = datetime.fromisoformat(report.manifest.created_at)
        except ValueError:
            continue  # not an eval report
        created = created.replace(tzinfo=UTC) if created.tzinfo is None else created
        if not since <= created < until:
            continue
        seen.add(digest)
        name = "reports/" + path.relative_to(folder).as_posix()
        files[name] = data
        found.append(
            {
                "file": name,
                "suite": report.suite,
                "created_at": report.manifest.created_at,
                "policy_version": report.manifest.policy_version,
                "runs": report.summary.runs,
                "success_rate": report.summary.success_rate,
                "incidents": report.summary.incidents.model_dump(),
            }
        )
    return found


def eval_incidents(files: Mapping[str, bytes], reports: list[dict[str, Any]]) -> list[Any]:
    found = []
    for meta in reports:
        report = Report.model_validate_json(files[meta["file"]])
        for result in report.results:
            for incident in result.incidents:
                found.append(
                    {
                        "report": meta["file"],
                        "scenario": result.scenario_id,
                        "run_id": result.run_id,
                        "kind": incident.kind,
                        "detail": incident.detail,
                    }
                )
    return found


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else timestamp(moment)


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode()
