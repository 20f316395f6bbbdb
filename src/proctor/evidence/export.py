"""Exporting an evidence bundle: what ran in a time range, under which policies, with proof.

For each tenant the audit log is exported as a contiguous segment of its chain:
from the first entry in the range to a signed checkpoint at or after the last
one (and after any purge record a purged payload in the range points to), so
the segment re-verifies offline and its end is covered by a signature. When no
checkpoint covers the range's end yet, the export signs the chain's head first.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import proctor
from proctor.audit.chain import Envelope, timestamp
from proctor.audit.events import EntryKind
from proctor.audit.verify import purge_of, stored_entries
from proctor.errors import ConfigError, PolicyError
from proctor.evals.report import Report
from proctor.evidence import format as fmt
from proctor.evidence.html import render_index
from proctor.jsonvalue import canonical_json
from proctor.policy import PolicyBundle, permission_matrix
from proctor.policy.versions import StoredBundle, stored_bundles
from proctor.runtime import Runtime
from proctor.store.tables import (
    approvals,
    audit_checkpoints,
    audit_entries,
    audit_heads,
    audit_payloads,
    model_calls,
    runs,
)

NANO = 1_000_000_000


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


def export_evidence(
    rt: Runtime,
    out: Path,
    *,
    since: datetime,
    until: datetime,
    tenant: str | None = None,
    reports_dir: Path | None = None,
) -> ExportSummary:
    """Write the evidence zip for ``[since, until)`` (every tenant, or one) to ``out``."""
    if until <= since:
        raise fmt.EvidenceError(
            f"--until ({until:%Y-%m-%d %H:%M}) must be after --since ({since:%Y-%m-%d %H:%M})"
        )
    start, end = timestamp(since.astimezone(UTC)), timestamp(until.astimezone(UTC))
    with rt.store.read() as conn:
        tenants = _tenants(conn, tenant)
    summary = ExportSummary(out, tenants)
    files: dict[str, bytes] = {}
    chains: dict[str, Any] = {}
    lines: list[dict[str, Any]] = []
    for name in tenants:
        segment = _segment(rt, name, start, end, summary)
        if segment is not None:
            chains[name], tenant_lines = segment
            lines.extend(tenant_lines)
    summary.entries = len(lines)
    files[fmt.AUDIT] = _jsonl(lines)

    with rt.store.read() as conn:
        run_rows = _runs(conn, tenants, since, until)
        approval_rows = _approvals(conn, tenants, since, until)
        costs = _costs(conn, tenants, since, until)
        versions = {r["bundle_version"] for r in run_rows}
        versions |= {line["bundle_version"] for line in lines if line["created_at"] < end}
        versions.discard("")
        stored = {b.version: b for b in stored_bundles(conn, versions)}
    summary.runs = len(run_rows)
    files[fmt.RUNS] = _jsonl(run_rows)
    files[fmt.APPROVALS] = _jsonl(approval_rows)

    bundles = _bundles(rt, sorted(versions), stored, files, summary)
    reports = _reports(reports_dir or rt.settings.home / "reports", since, until, files)
    summary.reports = len(reports)
    denied = [_denial(line) for line in lines if _is_denial(line, start, end)]

    manifest: dict[str, Any] = {
        "format": fmt.FORMAT,
        "proctor_version": proctor.__version__,
        "created_at": timestamp(rt.clock.now()),
        "range": {"since": start, "until": end},
        "tenants": tenants,
        "chains": chains,
        "bundles": bundles,
        "reports": reports,
    }
    files[fmt.INDEX] = render_index(
        manifest, run_rows, approval_rows, denied, costs, _eval_incidents(files, reports)
    ).encode()
    manifest["files"] = {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for name, data in sorted(files.items())
    }
    key = rt.key
    manifest["signature"] = {
        "algorithm": "ed25519",
        "key_id": key.key_id,
        "public_key": key.verify_key.pem(),
        "value": key.sign(fmt.signed_bytes(manifest)),
    }
    files[fmt.MANIFEST] = json.dumps(manifest, indent=2, sort_keys=True).encode()
    summary.files = len(files)
    _write_zip(out, files)
    return summary


def _tenants(conn: sa.Connection, tenant: str | None) -> list[str]:
    found = {t for (t,) in conn.execute(sa.select(audit_heads.c.tenant))}
    found |= {t for (t,) in conn.execute(sa.select(runs.c.tenant).distinct())}
    if tenant is None:
        return sorted(found)
    if tenant not in found:
        known = ", ".join(sorted(found)) or "none yet"
        raise fmt.EvidenceError(
            f"no audit entries or runs for tenant {tenant!r} (tenants: {known})"
        )
    return [tenant]


def _segment(
    rt: Runtime, tenant: str, start: str, end: str, summary: ExportSummary
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The tenant's chain from its first entry in the range to a checkpoint covering it."""
    in_range = (
        audit_entries.c.tenant == tenant,
        audit_entries.c.created_at >= start,
        audit_entries.c.created_at < end,
    )
    with rt.store.read() as conn:
        first, last = conn.execute(
            sa.select(sa.func.min(audit_entries.c.seq), sa.func.max(audit_entries.c.seq)).where(
                *in_range
            )
        ).one()
        if first is None:
            return None
        target = max(int(last), _last_purge_record(conn, tenant, int(first), int(last)))
        signed = _checkpoint_from(conn, tenant, target)
    if signed is None:
        with rt.store.write() as conn:
            rt.audit.checkpoint(conn, tenant)
        summary.signed_heads.append(tenant)
        with rt.store.read() as conn:
            signed = _checkpoint_from(conn, tenant, target)
    if signed is None:  # pragma: no cover - the head was just signed, and it is past target
        raise fmt.EvidenceError(f"no signed checkpoint covers tenant {tenant}'s entry {target}")
    with rt.store.read() as conn:
        rows = conn.execute(
            stored_entries(tenant).where(
                audit_entries.c.seq >= first, audit_entries.c.seq <= signed
            )
        ).all()
        checkpoints = [
            {
                "seq": int(c.seq),
                "head_hash": c.head_hash,
                "signed_at": c.signed_at,
                "key_id": c.key_id,
                "signature": c.signature,
            }
            for c in conn.execute(
                sa.select(audit_checkpoints)
                .where(
                    audit_checkpoints.c.tenant == tenant,
                    audit_checkpoints.c.seq >= first,
                    audit_checkpoints.c.seq <= signed,
                )
                .order_by(audit_checkpoints.c.seq)
            )
        ]
        head = conn.execute(
            sa.select(audit_heads.c.seq, audit_heads.c.head_hash).where(
                audit_heads.c.tenant == tenant
            )
        ).one()
    lines = [_line(r) for r in rows]
    chain = {
        "first_seq": int(first),
        "last_seq": int(signed),
        "range_seqs": [int(first), int(last)],
        "anchor": {"seq": int(first) - 1, "hash": rows[0].prev_hash},
        "head": {"seq": int(head.seq), "hash": head.head_hash},
        "checkpoints": checkpoints,
    }
    return chain, lines


def _last_purge_record(conn: sa.Connection, tenant: str, first: int, last: int) -> int:
    """The number of the last purge entry that a purged payload in ``first..last`` points to."""
    purge_ids = sa.select(audit_payloads.c.purge_entry).join(
        audit_entries, audit_entries.c.entry_id == audit_payloads.c.entry_id
    )
    purge_ids = purge_ids.where(
        audit_entries.c.tenant == tenant,
        audit_entries.c.seq >= first,
        audit_entries.c.seq <= last,
        audit_payloads.c.purge_entry.is_not(None),
    )
    found = conn.execute(
        sa.select(sa.func.max(audit_entries.c.seq)).where(
            audit_entries.c.entry_id.in_(purge_ids.scalar_subquery())
        )
    ).scalar()
    return int(found or 0)


def _checkpoint_from(conn: sa.Connection, tenant: str, seq: int) -> int | None:
    found = conn.execute(
        sa.select(sa.func.min(audit_checkpoints.c.seq)).where(
            audit_checkpoints.c.tenant == tenant, audit_checkpoints.c.seq >= seq
        )
    ).scalar()
    return None if found is None else int(found)


def _line(r: Any) -> dict[str, Any]:
    purge = purge_of(r)
    return fmt.entry_line(Envelope.of_row(r), None if purge else r.body, purge)


def _runs(
    conn: sa.Connection, tenants: list[str], since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Runs alive at some time in the range, with what they cost."""
    cost = (
        sa.select(
            model_calls.c.run_id,
            sa.func.sum(model_calls.c.nano_usd).label("nano_usd"),
            sa.func.sum(model_calls.c.input_tokens + model_calls.c.output_tokens).label("tokens"),
        )
        .group_by(model_calls.c.run_id)
        .subquery()
    )
    rows = conn.execute(
        sa.select(runs, cost.c.nano_usd, cost.c.tokens)
        .outerjoin(cost, cost.c.run_id == runs.c.id)
        .where(
            runs.c.tenant.in_(tenants),
            runs.c.created_at < until,
            sa.or_(runs.c.ended_at.is_(None), runs.c.ended_at >= since),
        )
        .order_by(runs.c.created_at, runs.c.id)
    ).all()
    return [
        {
            "id": r.id,
            "tenant": r.tenant,
            "workflow": r.workflow,
            "agent": r.agent,
            "requester": r.requester,
            "state": r.state,
            "reason": r.reason,
            "reason_detail": r.reason_detail,
            "bundle_version": r.bundle_version,
            "created_at": _iso(r.created_at),
            "ended_at": _iso(r.ended_at),
            "purged_at": _iso(r.purged_at),
            "cost_usd": str(_usd(r.nano_usd)),
            "tokens": int(r.tokens or 0),
        }
        for r in rows
    ]


def _approvals(
    conn: sa.Connection, tenants: list[str], since: datetime, until: datetime
) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(approvals)
        .where(
            approvals.c.tenant.in_(tenants),
            sa.or_(
                sa.and_(approvals.c.created_at >= since, approvals.c.created_at < until),
                sa.and_(approvals.c.decided_at >= since, approvals.c.decided_at < until),
            ),
        )
        .order_by(approvals.c.created_at, approvals.c.id)
    ).all()
    return [
        {
            "id": r.id,
            "run_id": r.run_id,
            "step": r.step,
            "tenant": r.tenant,
            "tool": r.tool,
            "roles": r.roles,
            "policy_ids": r.policy_ids,
            "requester": r.requester,
            "agent": r.agent,
            "status": r.status,
            "created_at": _iso(r.created_at),
            "decided_at": _iso(r.decided_at),
            "decided_by": r.decided_by,
            "decider_role": r.decider_role,
            "decision_reason": r.decision_reason,
        }
        for r in rows
    ]


def _costs(
    conn: sa.Connection, tenants: list[str], since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Model spend in the range, per tenant and workflow."""
    c = model_calls.c
    rows = conn.execute(
        sa.select(
            c.tenant,
            c.workflow,
            sa.func.count().label("calls"),
            sa.func.count(sa.distinct(c.run_id)).label("runs"),
            sa.func.sum(c.input_tokens + c.output_tokens).label("tokens"),
            sa.func.sum(c.nano_usd).label("nano_usd"),
        )
        .where(c.tenant.in_(tenants), c.created_at >= since, c.created_at < until)
        .group_by(c.tenant, c.workflow)
        .order_by(c.tenant, c.workflow)
    ).all()
    return [
        {
            "tenant": r.tenant,
            "workflow": r.workflow,
            "runs": int(r.runs),
            "model_calls": int(r.calls),
            "tokens": int(r.tokens or 0),
            "cost_usd": str(_usd(r.nano_usd)),
        }
        for r in rows
    ]


def _bundles(
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


def _reports(
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


def _eval_incidents(files: Mapping[str, bytes], reports: list[dict[str, Any]]) -> list[Any]:
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


def _is_denial(line: Mapping[str, Any], start: str, end: str) -> bool:
    return (
        line["kind"] == EntryKind.ACTION_DENIED.value
        and start <= line["created_at"] < end
        and line["payload"] is not None
    )


def _denial(line: Mapping[str, Any]) -> dict[str, Any]:
    payload = json.loads(line["payload"])
    decision = payload.get("decision") or {}
    return {
        "tenant": line["tenant"],
        "run_id": line["run_id"],
        "step": line["step"],
        "created_at": line["created_at"],
        "tool": payload.get("tool"),
        "reason": decision.get("reason"),
        "policy_ids": decision.get("policy_ids") or [],
        "bundle_version": line["bundle_version"],
    }


def _usd(nano: int | None) -> Decimal:
    return Decimal(int(nano or 0)) / NANO


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else timestamp(moment)


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode()


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(canonical_json(row) + "\n" for row in rows).encode()


def _write_zip(out: Path, files: Mapping[str, bytes]) -> None:
    """Written beside ``out`` and renamed, so a failed export never leaves half a zip."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".evidence-", suffix=".zip", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(fmt.MANIFEST, files[fmt.MANIFEST])
            for name, data in sorted(files.items()):
                if name != fmt.MANIFEST:
                    archive.writestr(name, data)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
