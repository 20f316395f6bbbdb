"""An eval report as one self-contained HTML page: inline CSS, inline SVG charts, no scripts.

The page opens offline and from a CI artifact: nothing is fetched. Every string
from the report is escaped; numbers are formatted here.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from pathlib import Path

from proctor.evals.report import Incidents, Report, ScenarioResult

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1f2933;
margin:0;background:#f5f7fa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}
.sub{color:#616e7c;margin:0 0 20px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(165px,1fr));gap:12px}
.card{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px #0001}
.card .k{color:#616e7c;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:24px;font-weight:600;margin-top:2px}
.card .d{color:#616e7c;font-size:12px}
.bad .v{color:#c62828}.good .v{color:#2e7d32}
.panel{background:#fff;border-radius:8px;padding:14px;box-shadow:0 1px 2px #0001;
overflow-x:auto}
.row{display:grid;grid-template-columns:1fr 1fr;gap:16px}
@media(max-width:800px){.row{grid-template-columns:1fr}}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e4e7eb;vertical-align:top}
th{font-size:12px;color:#616e7c;text-transform:uppercase}
td ul{margin:0;padding-left:18px}code{font-size:12px}
a{color:#1565c0}.legend span{display:inline-block;margin-right:14px;font-size:12px}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
svg text{font:11px system-ui,sans-serif;fill:#3e4c59}
td.bad{color:#c62828;font-weight:600}
"""

_STATE_COLORS = {
    "completed": "#2e7d32",
    "awaiting_approval": "#f9a825",
    "handed_off": "#ef6c00",
    "failed_safe": "#c62828",
    "cancelled": "#757575",
}
_PALETTE = ("#1565c0", "#6a1b9a", "#00838f", "#ad1457", "#4e342e", "#558b2f")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _usd(value: float) -> str:
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def _pct(value: float) -> str:
    return f"{value:.1%}"


def _card(key: str, value: str, detail: str = "", tone: str = "") -> str:
    return (
        f'<div class="card {tone}"><div class="k">{_e(key)}</div>'
        f'<div class="v">{_e(value)}</div><div class="d">{_e(detail)}</div></div>'
    )


def _headline(report: Report) -> str:
    s = report.summary
    total_incidents = sum(getattr(s.incidents, k) for k in Incidents.model_fields)
    by_type = ", ".join(
        f"{k.replace('_', ' ')} {getattr(s.incidents, k)}" for k in Incidents.model_fields
    )
    cards = [
        _card("Runs", str(s.runs), f"{report.manifest.repeats} repeat(s) per scenario"),
        _card(
            "Success",
            _pct(s.success.value),
            f"95% CI {_pct(s.success.low)} to {_pct(s.success.high)} "
            f"({s.success.successes}/{s.success.trials})",
            "good" if s.success.value >= 0.95 else "bad" if s.success.value < 0.8 else "",
        ),
        _card("Incidents", str(total_incidents), by_type, "bad" if total_incidents else "good"),
        _card("Escalations", str(s.escalations), f"{s.unnecessary_escalations} unnecessary"),
        _card(
            "Cost per run",
            _usd(s.cost_per_run_usd.mean),
            f"mean; p95 {_usd(s.cost_per_run_usd.p95)}",
        ),
        _card(
            "Duration",
            f"{s.duration_s.p50:.2f}s",
            f"p50; p95 {s.duration_s.p95:.2f}s",
        ),
    ]
    return f'<div class="cards">{"".join(cards)}</div>'


def _label_chart(report: Report) -> str:
    """Success rate per label, a bar each, with its 95% interval as a whisker."""
    labels = sorted(report.summary.by_label.items())
    if not labels:
        return "<p>No labels.</p>"
    left, width, bar_h, gap = 150, 360, 16, 10
    height = len(labels) * (bar_h + gap) + 24
    parts = [
        f'<svg role="img" aria-label="success rate by label" width="{left + width + 90}" '
        f'height="{height}" viewBox="0 0 {left + width + 90} {height}">'
    ]
    for tick in (0, 0.5, 1):
        x = left + tick * width
        parts.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 18}" stroke="#e4e7eb"/>'
            f'<text x="{x:.1f}" y="{height - 4}" text-anchor="middle">{tick:.0%}</text>'
        )
    for i, (label, stats) in enumerate(labels):
        y = i * (bar_h + gap) + 4
        iv = stats.success
        color = "#2e7d32" if iv.value >= 0.95 else "#f9a825" if iv.value >= 0.8 else "#c62828"
        mid = y + bar_h / 2
        lo, hi = left + iv.low * width, left + iv.high * width
        parts.append(
            f'<text x="{left - 8}" y="{mid + 4:.1f}" text-anchor="end">{_e(label)}</text>'
            f'<rect x="{left}" y="{y}" width="{iv.value * width:.1f}" height="{bar_h}" '
            f'fill="{color}" rx="2"><title>{_e(label)}: {iv.successes}/{iv.trials} '
            f"({_pct(iv.value)}, 95% CI {_pct(iv.low)} to {_pct(iv.high)})</title></rect>"
            f'<line x1="{lo:.1f}" y1="{mid:.1f}" x2="{hi:.1f}" y2="{mid:.1f}" stroke="#1f2933"/>'
            f'<line x1="{lo:.1f}" y1="{mid - 4:.1f}" x2="{lo:.1f}" y2="{mid + 4:.1f}" '
            f'stroke="#1f2933"/>'
            f'<line x1="{hi:.1f}" y1="{mid - 4:.1f}" x2="{hi:.1f}" y2="{mid + 4:.1f}" '
            f'stroke="#1f2933"/>'
            f'<text x="{left + width + 8}" y="{mid + 4:.1f}">'
            f"{iv.successes}/{iv.trials}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _label_table(report: Report) -> str:
    """Per label: runs, success, incidents, runs that asked a person, runs done unattended."""
    rows = []
    for label, stats in sorted(report.summary.by_label.items()):
        alone = stats.unattended
        tone = ' class="bad"' if stats.unauthorized_executed + stats.policy_breaches else ""
        rows.append(
            f"<tr><td><code>{_e(label)}</code></td><td>{stats.runs}</td>"
            f"<td>{_pct(stats.success.value)}</td>"
            f"<td{tone}>{stats.unauthorized_executed}</td>"
            f"<td>{stats.policy_breaches}</td><td>{stats.escalated}</td>"
            f"<td>{'' if alone is None else f'{alone.successes} ({_pct(alone.value)})'}</td></tr>"
        )
    return (
        "<table><thead><tr><th>Label</th><th>Runs</th><th>Success</th><th>Unauthorized "
        "executed</th><th>Policy breaches</th><th>Asked a person</th><th>Done unattended</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _bins(values: Sequence[float], count: int) -> tuple[float, float, list[int]]:
    low, high = min(values), max(values)
    if high <= low:
        return low, high, [len(values)]
    step = (high - low) / count
    bins = [0] * count
    for v in values:
        bins[min(count - 1, int((v - low) / step))] += 1
    return low, high, bins


def _histogram(values: Sequence[float]) -> str:
    """Cost per run, in bins of equal width."""
    if not values:
        return "<p>No runs.</p>"
    low, high, bins = _bins(values, 12)
    width, height, bottom = 460, 150, 22
    top = max(bins)
    bar_w = width / len(bins)
    parts = [
        f'<svg role="img" aria-label="cost per run histogram" width="{width}" '
        f'height="{height + bottom}" viewBox="0 0 {width} {height + bottom}">'
    ]
    for i, n in enumerate(bins):
        h = (n / top) * (height - 14) if top else 0
        x, y = i * bar_w, height - h
        b_low = low + (high - low) * i / len(bins)
        b_high = low + (high - low) * (i + 1) / len(bins)
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
            f'fill="#1565c0" rx="1"><title>{_usd(b_low)} to {_usd(b_high)}: {n} run(s)'
            "</title></rect>"
        )
        if n:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">{n}</text>'
            )
    parts.append(
        f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#9aa5b1"/>'
        f'<text x="0" y="{height + 16}">{_e(_usd(low))}</text>'
        f'<text x="{width}" y="{height + 16}" text-anchor="end">{_e(_usd(high))}</text>'
        "</svg>"
    )
    return "".join(parts)


def _state_mix(states: dict[str, int]) -> str:
    """Runs by terminal (or paused) state, as one stacked bar with a legend."""
    total = sum(states.values())
    if not total:
        return "<p>No runs.</p>"
    width, x = 460, 0.0
    bar, legend = [], []
    for i, (state, n) in enumerate(sorted(states.items(), key=lambda kv: -kv[1])):
        color = _STATE_COLORS.get(state, _PALETTE[i % len(_PALETTE)])
        w = n / total * width
        bar.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="26" fill="{color}">'
            f"<title>{_e(state)}: {n}</title></rect>"
        )
        legend.append(
            f'<span><i class="sw" style="background:{color}"></i>{_e(state)} {n} '
            f"({_pct(n / total)})</span>"
        )
        x += w
    return (
        f'<svg role="img" aria-label="terminal states" width="{width}" height="26" '
        f'viewBox="0 0 {width} 26">{"".join(bar)}</svg>'
        f'<div class="legend">{"".join(legend)}</div>'
    )


def _failing(results: Sequence[ScenarioResult], run_link: Callable[[str], str]) -> str:
    failing = [r for r in results if not r.passed]
    if not failing:
        return "<p>Every scenario passed.</p>"
    rows = []
    for r in failing:
        failures = "".join(f"<li>{_e(f)}</li>" for f in r.failures)
        incidents = "".join(f"<li><b>{_e(i.kind)}</b>: {_e(i.detail)}</li>" for i in r.incidents)
        state = r.state + (f" ({r.reason})" if r.reason else "")
        rows.append(
            f"<tr><td><code>{_e(r.scenario_id)}</code><br><small>{_e(', '.join(r.labels))}"
            f"</small></td><td>{r.repeat}</td><td>{_e(state)}</td>"
            f"<td><ul>{failures}</ul>{f'<ul>{incidents}</ul>' if incidents else ''}</td>"
            f'<td><a href="{_e(run_link(r.run_id))}"><code>{_e(r.run_id)}</code></a></td></tr>'
        )
    return (
        "<table><thead><tr><th>Scenario</th><th>Repeat</th><th>State</th><th>What failed</th>"
        f"<th>Run</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _manifest(report: Report) -> str:
    rows = []
    for name, value in report.manifest.model_dump().items():
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else value
        rows.append(f"<tr><th>{_e(name)}</th><td><code>{_e(shown)}</code></td></tr>")
    return f"<table>{''.join(rows)}</table>"


def _default_link(run_id: str) -> str:
    return f"runs/{run_id}"


def render_html(report: Report, *, run_link: Callable[[str], str] | None = None) -> str:
    """The report as a self-contained HTML page; ``run_link`` maps a run id to its timeline."""
    link = run_link or _default_link
    s = report.summary
    flaky = (
        f"<h2>Flaky scenarios</h2><div class='panel'><p>{_e(', '.join(s.flaky_scenarios))}"
        "</p></div>"
        if s.flaky_scenarios
        else ""
    )
    costs = [r.cost_usd for r in report.results]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>Eval report — {_e(report.suite)}</title><style>{_CSS}</style></head><body><main>"
        f"<h1>Eval report — {_e(report.suite)}</h1>"
        f"<p class='sub'>{_e(report.manifest.created_at)} · policy "
        f"{_e(report.manifest.policy_version)} · proctor {_e(report.manifest.proctor_version)}"
        "</p>"
        f"{_headline(report)}"
        "<div class='row'>"
        f"<div><h2>Success by label</h2><div class='panel'>{_label_chart(report)}</div></div>"
        f"<div><h2>Cost per run</h2><div class='panel'>{_histogram(costs)}</div>"
        f"<h2>How runs ended</h2><div class='panel'>{_state_mix(s.states)}</div></div>"
        "</div>"
        f"<h2>By label</h2><div class='panel'>{_label_table(report)}</div>"
        f"<h2>Failing scenarios</h2><div class='panel'>{_failing(report.results, link)}</div>"
        f"{flaky}"
        f"<h2>Manifest</h2><div class='panel'>{_manifest(report)}</div>"
        "</main></body></html>\n"
    )


def write_report(
    report: Report, out_dir: Path, *, run_link: Callable[[str], str] | None = None
) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``out_dir``; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    json_path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    html_path.write_text(render_html(report, run_link=run_link), encoding="utf-8")
    return json_path, html_path
