"""``index.html`` of an evidence bundle: what ran, what was denied, who approved, what went wrong.

One self-contained page (inline CSS, no scripts, nothing fetched). Every value
from the store is escaped: run reasons, tool names and approvers' reasons are
text someone typed, or a model wrote.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1f2933;
margin:0;background:#f5f7fa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}
.sub{color:#616e7c;margin:0 0 16px}
.panel{background:#fff;border-radius:8px;padding:14px;box-shadow:0 1px 2px #0001;
overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e4e7eb;vertical-align:top}
th{font-size:12px;color:#616e7c;text-transform:uppercase}
td.n{text-align:right}code{font-size:12px}.none{color:#616e7c}
"""

_INCIDENT_STATES = ("failed_safe", "handed_off")


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], empty: str) -> str:
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_e(cell)}</td>' if isinstance(cell, int | Decimal) else _cell(cell)
            for cell in row
        )
        + "</tr>"
        for row in rows
    )
    if not body:
        return f'<p class="none">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: object) -> str:
    if isinstance(value, list | tuple):
        return f"<td>{_e(', '.join(str(v) for v in value))}</td>"
    return f"<td>{_e(value)}</td>"


def _section(title: str, content: str) -> str:
    return f'<h2>{_e(title)}</h2><div class="panel">{content}</div>'


def render_index(
    manifest: Mapping[str, Any],
    runs: Sequence[Mapping[str, Any]],
    approvals: Sequence[Mapping[str, Any]],
    denied: Sequence[Mapping[str, Any]],
    costs: Sequence[Mapping[str, Any]],
    eval_incidents: Sequence[Mapping[str, Any]],
) -> str:
    span = manifest["range"]
    tenants = ", ".join(manifest["tenants"]) or "none"
    states = Counter((r["tenant"], r["state"]) for r in runs)
    decided = [a for a in approvals if a["decided_at"] is not None]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>Evidence {_e(span['since'])} to {_e(span['until'])}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>Audit evidence</h1>",
        f'<p class="sub">From {_e(span["since"])} to {_e(span["until"])} · tenants: '
        f"{_e(tenants)} · proctor {_e(manifest['proctor_version'])} · exported "
        f"{_e(manifest['created_at'])}. Check it offline with "
        "<code>proctor evidence verify</code>.</p>",
        *(
            [
                _section(
                    "Not backed by the audit chain",
                    _table(
                        ("what the tables say, and what the chain says instead",),
                        [(d,) for d in manifest["discrepancies"]],
                        "",
                    ),
                )
            ]
            if manifest.get("discrepancies")
            else []
        ),
        _section(
            "What ran: runs by state",
            _table(
                ("tenant", "state", "runs"),
                [(t, s, n) for (t, s), n in sorted(states.items())],
                "No runs in this range.",
            ),
        ),
        _section(
            "What was denied",
            _table(
                ("time", "tenant", "run", "step", "tool", "policies", "reason"),
                [
                    (
                        d["created_at"],
                        d["tenant"],
                        d["run_id"],
                        d["step"],
                        d["tool"],
                        d["policy_ids"],
                        d["reason"],
                    )
                    for d in denied
                ],
                "No call was denied in this range (or the payloads were purged).",
            ),
        ),
        _section(
            "What was approved or refused, and by whom",
            _table(
                ("decided", "tenant", "run", "tool", "status", "by", "role", "reason"),
                [
                    (
                        a["decided_at"],
                        a["tenant"],
                        a["run_id"],
                        a["tool"],
                        a["status"],
                        a["decided_by"],
                        a["decider_role"],
                        a["decision_reason"],
                    )
                    for a in decided
                ],
                "No approval was decided in this range.",
            ),
        ),
        _section(
            "Incidents: runs that failed safe or were handed off",
            _table(
                ("ended", "tenant", "run", "workflow", "state", "reason", "detail"),
                [
                    (
                        r["ended_at"],
                        r["tenant"],
                        r["id"],
                        r["workflow"],
                        r["state"],
                        r["reason"],
                        r["reason_detail"],
                    )
                    for r in runs
                    if r["state"] in _INCIDENT_STATES
                ],
                "No run failed safe or was handed off.",
            ),
        ),
        _section(
            "Incidents in eval reports",
            _table(
                ("report", "scenario", "run", "kind", "detail"),
                [
                    (i["report"], i["scenario"], i["run_id"], i["kind"], i["detail"])
                    for i in eval_incidents
                ],
                f"{len(manifest['reports'])} eval report(s) in range; no incidents in them.",
            ),
        ),
        _section(
            "Costs by tenant and workflow",
            _table(
                ("tenant", "workflow", "runs", "model calls", "tokens", "cost (USD)"),
                [
                    (
                        c["tenant"],
                        c["workflow"],
                        c["runs"],
                        c["model_calls"],
                        c["tokens"],
                        Decimal(c["cost_usd"]),
                    )
                    for c in costs
                ],
                "No model calls in this range.",
            ),
        ),
        _section(
            "Policy bundles in force",
            _table(
                ("version", "files", "kept"),
                [
                    (
                        version,
                        info.get("files", []),
                        "yes" if info["available"] else "no: first used before versions were kept",
                    )
                    for version, info in sorted(manifest["bundles"].items())
                ],
                "No bundle version is named in this range.",
            ),
        ),
        _section(
            "Audit chains",
            _table(
                ("tenant", "entries", "in range", "signed checkpoints", "head"),
                [
                    (
                        tenant,
                        f"{c['first_seq']}–{c['last_seq']}",
                        f"{c['range_seqs'][0]}–{c['range_seqs'][1]}",
                        len(c["checkpoints"]),
                        f"{c['head']['seq']} {c['head']['hash'][:16]}…",
                    )
                    for tenant, c in sorted(manifest["chains"].items())
                ],
                "No audit entries in this range.",
            ),
        ),
        "</main></body></html>\n",
    ]
    return "".join(parts)
