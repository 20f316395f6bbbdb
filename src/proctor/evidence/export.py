"""Exporting an evidence bundle: what ran in a time range, under which policies, with proof.

Each tenant's audit chain segment comes from ``segment``; runs, approvals, costs,
policy bundles and eval reports from ``collect``. Runs and approvals are backed by
the chain (``backing``): what the tables say and the chain does not is left out of
the bundle and reported. This module assembles them, signs the manifest and writes
the zip.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import proctor
from proctor.audit.chain import timestamp
from proctor.evidence import format as fmt
from proctor.evidence.backing import back_approval, back_run, backing_of
from proctor.evidence.collect import (
    ExportSummary,
    approval_lines,
    bundles,
    cost_lines,
    eval_incidents,
    reports,
    run_lines,
)
from proctor.evidence.html import render_index
from proctor.evidence.segment import denial, is_denial, segment, tenants_of
from proctor.jsonvalue import canonical_json
from proctor.policy.versions import stored_bundles
from proctor.runtime import Runtime

__all__ = ["ExportSummary", "export_evidence"]


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
        tenants = tenants_of(conn, tenant)
        run_rows = run_lines(conn, tenant, since, until)
        approval_rows = approval_lines(conn, tenant, since, until)
        costs = cost_lines(conn, tenant, since, until)
    summary = ExportSummary(out, tenants)
    files: dict[str, bytes] = {}
    chains: dict[str, Any] = {}
    lines: list[dict[str, Any]] = []
    for name in tenants:
        runs = {r["id"] for r in run_rows if r["tenant"] == name}
        runs |= {a["run_id"] for a in approval_rows if a["tenant"] == name}
        found = segment(rt, name, start, end, summary.signed_heads, runs=runs)
        if found is not None:
            chains[name], tenant_lines = found
            lines.extend(tenant_lines)
    summary.entries = len(lines)
    files[fmt.AUDIT] = _jsonl(lines)

    backing = backing_of(lines)
    for row in run_rows:
        summary.discrepancies.extend(back_run(row, backing))
    for row in approval_rows:
        summary.discrepancies.extend(back_approval(row, backing))
    with rt.store.read() as conn:
        versions = {r["bundle_version"] for r in run_rows}
        versions |= {line["bundle_version"] for line in lines if line["created_at"] < end}
        versions.discard("")
        stored = {b.version: b for b in stored_bundles(conn, versions)}
    summary.runs = len(run_rows)
    files[fmt.RUNS] = _jsonl(run_rows)
    files[fmt.APPROVALS] = _jsonl(approval_rows)

    kept = bundles(rt, sorted(versions), stored, files, summary)
    found_reports = reports(reports_dir or rt.settings.home / "reports", since, until, files)
    summary.reports = len(found_reports)
    denied = [denial(line) for line in lines if is_denial(line, start, end)]

    manifest: dict[str, Any] = {
        "format": fmt.FORMAT,
        "proctor_version": proctor.__version__,
        "created_at": timestamp(rt.clock.now()),
        "range": {"since": start, "until": end},
        "tenants": tenants,
        "chains": chains,
        "bundles": kept,
        "reports": found_reports,
        "discrepancies": [str(d) for d in summary.discrepancies],
    }
    files[fmt.INDEX] = render_index(
        manifest, run_rows, approval_rows, denied, costs, eval_incidents(files, found_reports)
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
    summary.files = len(manifest["files"])  # as verify counts them: the manifest signs these
    _write_zip(out, files)
    return summary


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
