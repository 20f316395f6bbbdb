"""No span is lost without being counted: a sized queue under load, a collector down."""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from proctor.telemetry import SpanRecord, span_id_of, telemetry_from_environment, trace_id_of
from proctor.telemetry.export import SDK_DEFAULT_SIZING, OtelTelemetry, QueueSizing

from .receiver import HttpReceiver

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _run_tree(n: int) -> list[SpanRecord]:
    """Six spans shaped like one short run's: the run, a model call, a call and its stages."""
    run_id = f"run_{n:06d}"
    shape = [
        ("run", None, "invoke_agent bot"),
        ("model/1", "run", "chat gpt-4o-mini"),
        ("step/0", "run", "execute_tool lookup"),
        ("step/0/decide", "step/0", "proctor.decide lookup"),
        ("step/0/execute", "step/0", "proctor.execute lookup"),
        ("step/1", "run", "execute_tool note"),
    ]
    return [
        SpanRecord(
            key=key,
            parent=parent,
            name=name,
            kind="internal",
            start=T0 + timedelta(milliseconds=i),
            end=T0 + timedelta(milliseconds=10 - i),
            trace_id=trace_id_of(run_id),
            span_id=span_id_of(run_id, key),
            parent_span_id=span_id_of(run_id, parent) if parent else None,
            attributes={"proctor.run.id": run_id, "proctor.tenant": "acme"},
        )
        for i, (key, parent, name) in enumerate(shape)
    ]


def _http_telemetry(endpoint: str, sizing: QueueSizing | None = None) -> OtelTelemetry:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OtelTelemetry(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"), sizing=sizing)


RUNS = 2_000


def test_a_tight_loop_of_runs_loses_no_span_with_the_sized_queue(
    http_receiver: HttpReceiver,
) -> None:
    telemetry = _http_telemetry(http_receiver.endpoint)
    trees = [_run_tree(n) for n in range(RUNS)]
    for tree in trees:
        telemetry.emit(tree)
    telemetry.shutdown()
    total = 6 * RUNS
    assert telemetry.stats.queued == total
    assert telemetry.stats.exported == total
    assert telemetry.dropped == 0
    assert http_receiver.received.count() == total


def test_with_the_sdk_default_queue_every_span_is_delivered_or_counted(
    http_receiver: HttpReceiver,
) -> None:
    telemetry = _http_telemetry(http_receiver.endpoint, SDK_DEFAULT_SIZING)
    for n in range(RUNS):
        telemetry.emit(_run_tree(n))
    telemetry.shutdown()
    stats = telemetry.stats
    # Whatever the machine's speed: what did not arrive is in the count.
    assert stats.exported == http_receiver.received.count()
    assert stats.exported + stats.dropped == 6 * RUNS
    assert stats.queue_full == 6 * RUNS - stats.queued


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_spans_a_collector_never_got_are_counted_as_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    telemetry = telemetry_from_environment()
    assert isinstance(telemetry, OtelTelemetry)
    for n in range(3):
        telemetry.emit(_run_tree(n))
    assert telemetry.dropped == 0  # queued, not yet tried
    telemetry.shutdown()
    assert telemetry.stats.failed == 18
    assert telemetry.dropped == 18
    assert telemetry.dropped_spans() == 18


def test_spans_the_collector_rejects_are_counted_as_dropped(
    http_receiver: HttpReceiver,
) -> None:
    http_receiver.status = 400
    telemetry = _http_telemetry(http_receiver.endpoint)
    telemetry.emit(_run_tree(0))
    telemetry.force_flush()
    assert telemetry.stats.failed == 6
    http_receiver.status = 200
    telemetry.emit(_run_tree(1))
    telemetry.shutdown()
    assert telemetry.stats.exported == 6
    assert telemetry.dropped == 6


class _StuckExporter(InMemorySpanExporter):
    """A collector that hangs until released."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(10)
        return super().export(spans)


def test_a_full_queue_refuses_and_counts() -> None:
    exporter = _StuckExporter()
    sizing = QueueSizing(max_queue_size=6, schedule_delay_millis=10, max_export_batch_size=6)
    telemetry = OtelTelemetry(exporter, sizing=sizing)
    # The first run's six spans go to the stuck exporter, the second's wait in the queue,
    # the third's find it full.
    telemetry.emit(_run_tree(0))
    assert exporter.entered.wait(5)
    telemetry.emit(_run_tree(1))
    telemetry.emit(_run_tree(2))
    assert telemetry.stats.queue_full == 6
    exporter.release.set()
    telemetry.shutdown()
    assert telemetry.stats.exported == len(exporter.get_finished_spans()) == 12
    assert telemetry.dropped == 6


def test_spans_after_shutdown_are_counted(http_receiver: HttpReceiver) -> None:
    telemetry = _http_telemetry(http_receiver.endpoint)
    telemetry.shutdown()
    telemetry.emit(_run_tree(0))
    assert telemetry.stats.after_shutdown == 6
    assert telemetry.dropped == 6
