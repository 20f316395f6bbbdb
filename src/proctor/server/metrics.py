"""Prometheus ``/metrics``: what the store holds, read when Prometheus scrapes.

Workers in other processes make most of the calls, so counters kept in the service's
own process would miss them. A collector reads the store at scrape time instead: one
aggregate query per figure, over the store every worker writes to. Every replica of
the service therefore reports the same figures, and a restart resets nothing.

Rows that appear once and never change afterwards (a step decided, a step finished,
an approval decided) are folded into running totals: each scrape reads only the rows
written since the last one (see ``RunningTally``). The rest are small ``GROUP BY``
queries over indexed columns.

Only aggregates leave: counts, sums and histograms by tenant, state, reason, tool and
model. No run id, argument, result or person's name is exposed. ``/metrics`` needs a
token that sees every tenant (Prometheus sends it as ``bearer_token``), unless the
service is built with ``create_app(..., public_metrics=True)``.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from proctor.audit import refused_signatures
from proctor.budgets import NANO
from proctor.clock import Clock
from proctor.errors import Forbidden, StoreUnavailable
from proctor.runs.views import aggregates
from proctor.runtime import Runtime
from proctor.server.auth import authenticated
from proctor.server.errors import ErrorBody
from proctor.server.tokens import ApiToken
from proctor.states import RunState
from proctor.store import Store

log = logging.getLogger(__name__)

GOVERNED_STAGES = ("budget", "decide", "record_intent", "record_outcome")
"""The stages of ``steps.timings_us`` that are the governed call's own latency.

``execute`` is the tool's own time and is left out. So is waiting for an approval:
it is no stage. Only steps decided and executed in one go carry ``decide``; a step
that paused for approval records only the stages after the pause, and a denied or
still-held step records none. Those are left out of the histogram rather than
counted with part of their latency.
"""

CALL_BUCKETS_S = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
"""Governed call latency, 100 µs to 5 s: a call on SQLite takes about 700 µs."""

DECISION_BUCKETS_S = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800)
"""Time to decide an approval: a minute to a week."""

TOKEN_KINDS = ("input", "cached_input", "output", "reasoning")
"""The kinds of ``proctor_model_tokens``: each is ``ModelUsage.<kind>_tokens``."""

SETTLE_S = 60.0
"""How long after the newest row a row may still commit with an earlier timestamp.

Rows are stamped inside their write transaction, so they commit in about the order
of their stamps; a minute covers slow commits and clocks a little apart between
workers. A row that commits later than that with an older stamp is not counted.
"""

LIVE_STATES = (RunState.RUNNING.value, RunState.AWAITING_APPROVAL.value)

Labels = tuple[str, ...]


@dataclass
class Series:
    """One labelled histogram (or counter, with no bounds) as running totals."""

    buckets: list[int]
    """Observations per bucket, not cumulative; the last one is above every bound."""
    count: int = 0
    total: float = 0.0

    def add(self, bounds: Sequence[float], value: float) -> None:
        self.buckets[bisect.bisect_left(bounds, value)] += 1
        self.count += 1
        self.total += value

    def plus(self, other: Series) -> Series:
        return Series(
            [a + b for a, b in zip(self.buckets, other.buckets, strict=True)],
            self.count + other.count,
            self.total + other.total,
        )


@dataclass
class RunningTally:
    """Totals over rows that appear once and never change, stamped when they appeared.

    Rows stamped before ``mark`` were folded into ``settled`` once and are never read
    again. Each scrape reads the rows from ``mark`` on, folds those that have settled
    (older than the newest stamp less ``settle``) and counts the rest afresh, since a
    row with an earlier stamp may still commit among them.
    """

    bounds: tuple[float, ...] = ()
    settle: timedelta = timedelta(seconds=SETTLE_S)
    mark: datetime | None = None
    settled: dict[Labels, Series] = field(default_factory=dict)

    def update(
        self, rows: Iterable[tuple[Labels, datetime, float]], now: datetime
    ) -> dict[Labels, Series]:
        """Take in the rows stamped at or after ``mark``; the totals over every row."""
        fresh = list(rows)
        if not fresh:
            return dict(self.settled)
        # A stamp ahead of this clock (a worker's clock running fast) moves the mark
        # no further than the clock: rows stamped until then must still be read.
        newest = min(max(at for _, at, _ in fresh), now)
        mark = newest - self.settle
        if self.mark is not None:
            mark = max(mark, self.mark)
        recent: dict[Labels, Series] = {}
        for labels, at, value in fresh:
            into = self.settled if at < mark else recent
            self._series(into, labels).add(self.bounds, value)
        self.mark = mark
        totals = dict(self.settled)
        for labels, series in recent.items():
            totals[labels] = totals[labels].plus(series) if labels in totals else series
        return totals

    def _series(self, into: dict[Labels, Series], labels: Labels) -> Series:
        series = into.get(labels)
        if series is None:
            series = into[labels] = Series([0] * (len(self.bounds) + 1))
        return series


def governed_latency_s(timings_us: Any) -> float | None:
    """The governed call's own latency from a step's stage timings; ``None`` if not whole."""
    if not isinstance(timings_us, dict) or "decide" not in timings_us:
        return None
    return sum(float(timings_us.get(stage, 0.0)) for stage in GOVERNED_STAGES) / 1e6


class StoreCollector(Collector):
    """The figures of ``/metrics``, read from the store on each scrape."""

    def __init__(
        self, store: Store, clock: Clock, dropped_spans: Callable[[], Callable[[], int] | None]
    ) -> None:
        self._store = store
        self._clock = clock
        self._dropped_spans = dropped_spans
        self._lock = threading.Lock()  # scrapes may overlap; each fold happens once
        self._decisions = RunningTally()
        self._latency = RunningTally(CALL_BUCKETS_S)
        self._decided = RunningTally(tuple(float(b) for b in DECISION_BUCKETS_S))

    def collect(self) -> Iterator[Metric]:
        with self._lock, self._store.read() as conn:
            now = self._clock.now()
            families = [
                self._runs(conn),
                self._release_runs(conn),
                self._policy_decisions(conn, now),
                self._governed_latency(conn, now),
                self._pending_approvals(conn),
                self._decision_time(conn, now),
                *self._model_usage(conn),
                self._refused_signatures(conn),
            ]
        dropped = self._spans_dropped()
        if dropped is not None:
            families.append(dropped)
        return iter(families)

    def _runs(self, conn: sa.Connection) -> Metric:
        family = GaugeMetricFamily(
            "proctor_runs",
            "Runs in the store by state and reason ('' while running or awaiting approval).",
            labels=["tenant", "state", "reason"],
        )
        counts = {
            (c.tenant, c.state.value, c.reason.value if c.reason else ""): c.runs
            for c in aggregates.run_counts(conn)
        }
        # A tenant's live states stay in the exposition at 0, so a dashboard sees the
        # queue empty rather than the series gone.
        for tenant in {tenant for tenant, _, _ in counts}:
            for state in LIVE_STATES:
                counts.setdefault((tenant, state, ""), 0)
        for labels in sorted(counts):
            family.add_metric(list(labels), counts[labels])
        return family

    def _release_runs(self, conn: sa.Connection) -> Metric:
        family = GaugeMetricFamily(
            "proctor_release_runs",
            "Runs opened under each release, by state: a canary's figures beside stable's.",
            labels=["release", "state"],
        )
        for release, state, n in sorted(aggregates.release_run_counts(conn)):
            family.add_metric([release, state], n)
        return family

    def _policy_decisions(self, conn: sa.Connection, now: datetime) -> Metric:
        totals = self._decisions.update(
            (
                ((d.tenant, d.tool, d.effect.value if d.effect else ""), d.at, 1.0)
                for d in aggregates.decisions_since(conn, self._decisions.mark)
            ),
            now,
        )
        family = CounterMetricFamily(
            "proctor_policy_decisions",
            "Policy decisions on proposed calls, by effect: allow, require_approval or deny.",
            labels=["tenant", "tool", "effect"],
        )
        for labels in sorted(totals):
            family.add_metric(list(labels), totals[labels].count)
        return family

    def _governed_latency(self, conn: sa.Connection, now: datetime) -> Metric:
        def observations() -> Iterator[tuple[Labels, datetime, float]]:
            for step in aggregates.step_timings_since(conn, self._latency.mark):
                seconds = governed_latency_s(step.timings_us)
                if seconds is not None:
                    yield (step.tool,), step.finished_at, seconds

        totals = self._latency.update(observations(), now)
        return _histogram(
            "proctor_governed_call_seconds",
            "Latency a governed call adds to its tool: budget check, policy decision and the "
            "audit entries before and after. The tool's own time and any wait for approval "
            "are left out; calls that paused for approval are not counted.",
            ["tool"],
            CALL_BUCKETS_S,
            totals,
        )

    def _pending_approvals(self, conn: sa.Connection) -> Metric:
        family = GaugeMetricFamily(
            "proctor_approvals_pending",
            "Approval requests waiting for a decision (0 for a tenant with none waiting).",
            labels=["tenant"],
        )
        for tenant, n in aggregates.pending_approvals(conn):
            family.add_metric([tenant], n)
        return family

    def _decision_time(self, conn: sa.Connection, now: datetime) -> Metric:
        totals = self._decided.update(
            (
                (
                    (a.tenant, a.status.value),
                    a.decided_at,
                    (a.decided_at - a.created_at).total_seconds(),
                )
                for a in aggregates.approvals_decided_since(conn, self._decided.mark)
            ),
            now,
        )
        return _histogram(
            "proctor_approval_decision_seconds",
            "From an approval request to its decision by a person (approved or denied; "
            "expired requests are not counted).",
            ["tenant", "verdict"],
            tuple(float(b) for b in DECISION_BUCKETS_S),
            totals,
        )

    def _model_usage(self, conn: sa.Connection) -> list[Metric]:
        rows = aggregates.model_usage(conn)
        calls = CounterMetricFamily(
            "proctor_model_calls", "Model calls made by runs.", labels=["tenant", "model"]
        )
        cost = CounterMetricFamily(
            "proctor_model_cost_usd",
            "What runs' model calls cost, in US dollars, at the price table's rates.",
            labels=["tenant", "model"],
        )
        tokens = CounterMetricFamily(
            "proctor_model_tokens",
            "Tokens of runs' model calls by kind: input, cached_input, output, reasoning.",
            labels=["tenant", "model", "kind"],
        )
        for row in rows:
            calls.add_metric([row.tenant, row.model], row.calls)
            cost.add_metric([row.tenant, row.model], float(row.nano_usd / NANO))
            for kind in TOKEN_KINDS:
                tokens.add_metric([row.tenant, row.model, kind], getattr(row, f"{kind}_tokens"))
        return [calls, cost, tokens]

    def _refused_signatures(self, conn: sa.Connection) -> Metric:
        family = CounterMetricFamily(
            "proctor_audit_signatures_refused",
            "Checkpoints the signer refused to sign: the tenant's audit chain did not extend "
            "what it had verified (tampering; `proctor audit verify` names it).",
            labels=["tenant"],
        )
        for tenant, n in sorted(refused_signatures(conn).items()):
            family.add_metric([tenant], n)
        return family

    def _spans_dropped(self) -> Metric | None:
        family = CounterMetricFamily(
            "proctor_spans_dropped",
            "Spans the telemetry exporter dropped (0 without telemetry).",
        )
        source = self._dropped_spans()
        if source is None:
            family.add_metric([], 0)
            return family
        try:
            dropped = int(source())
        except Exception:  # a broken exporter must not take the store's figures down with it
            log.exception("the telemetry exporter's count of dropped spans failed")
            return None
        family.add_metric([], dropped)
        return family


def _histogram(
    name: str,
    documentation: str,
    labels: list[str],
    bounds: Sequence[float],
    totals: dict[Labels, Series],
) -> Metric:
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for key in sorted(totals):
        series = totals[key]
        cumulative, buckets = 0, []
        for bound, n in zip(bounds, series.buckets, strict=False):
            cumulative += n
            buckets.append((_bound(bound), cumulative))
        buckets.append(("+Inf", series.count))
        family.add_metric(list(key), buckets, series.total)
    return family


def _bound(value: float) -> str:
    return str(int(value)) if value == int(value) and value >= 1 else repr(value)


def _every_tenant(token: Annotated[ApiToken, Depends(authenticated)]) -> ApiToken:
    """The figures cover every tenant: a token confined to one may not read them."""
    if token.tenant is not None:
        raise Forbidden(f"/metrics covers every tenant; {token.name} is confined to {token.tenant}")
    return token


def install_metrics(
    app: FastAPI,
    runtime: Runtime,
    *,
    dropped_spans: Callable[[], int] | None = None,
    require_token: bool = True,
) -> None:
    """Mount ``GET /metrics`` on ``app``, with a registry of its own.

    ``dropped_spans`` counts the spans telemetry export dropped; it is read from
    ``app.state.dropped_spans`` at each scrape, so telemetry set up after the app
    can put its counter there.
    """
    app.state.dropped_spans = dropped_spans
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(runtime.store, runtime.clock, lambda: app.state.dropped_spans))
    app.state.metrics_registry = registry

    def exposition() -> bytes:
        try:
            return generate_latest(registry)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreUnavailable(
                f"the store does not answer ({type(exc).__name__}); the server log has more"
            ) from exc

    async def metrics() -> Response:
        body = await run_in_threadpool(exposition)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        summary="Prometheus metrics: aggregates only"
        + ("; needs a token that sees every tenant" if require_token else "; needs no token"),
        response_class=Response,
        responses={503: {"model": ErrorBody}, 200: {"content": {CONTENT_TYPE_LATEST: {}}}},
        dependencies=[Depends(_every_tenant)] if require_token else [],
    )
