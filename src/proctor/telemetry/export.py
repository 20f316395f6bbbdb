"""Sending runs' spans over OpenTelemetry, with the official SDK, and counting every loss.

Needs the ``otel`` extra. :class:`OtelTelemetry` turns a run's
:class:`~proctor.telemetry.spans.SpanRecord` tree into SDK spans with their
recorded start and end times, the run's trace id and stable span ids, and
hands them to a :class:`CountingSpanProcessor`.

The SDK's ``BatchSpanProcessor`` drops a span when its queue is full and
reports it only in a rate-limited log line (and in internal metrics that are
off by default); a failed export is logged, not counted. The counting
processor admits a span only while the queue has room, so the SDK's queue
never evicts one behind its back, and counts what it refuses, what the
exporter failed to deliver and what was still queued at shutdown.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode

from proctor.telemetry.spans import Redact, SpanRecord, SpanSource

log = logging.getLogger("proctor.telemetry")

_KINDS = {"internal": SpanKind.INTERNAL, "client": SpanKind.CLIENT}


@dataclass(frozen=True)
class QueueSizing:
    """The batch processor's sizes. The SDK's defaults (2,048 queued, batches of 512
    every 5 s) drop spans when runs end in a tight loop; these keep up with it."""

    max_queue_size: int = 32_768
    schedule_delay_millis: float = 200
    max_export_batch_size: int = 2_048
    export_timeout_millis: float = 30_000

    @classmethod
    def from_environment(cls) -> QueueSizing:
        """Proctor's sizes, each overridden by its ``OTEL_BSP_*`` variable when set."""
        base = cls()

        def read(name: str, default: float) -> float:
            raw = os.environ.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number") from None
            if value <= 0:
                raise ValueError(f"{name}={raw!r} must be positive")
            return value

        sizing = cls(
            max_queue_size=int(read("OTEL_BSP_MAX_QUEUE_SIZE", base.max_queue_size)),
            schedule_delay_millis=read("OTEL_BSP_SCHEDULE_DELAY", base.schedule_delay_millis),
            max_export_batch_size=int(
                read("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", base.max_export_batch_size)
            ),
            export_timeout_millis=read("OTEL_BSP_EXPORT_TIMEOUT", base.export_timeout_millis),
        )
        if sizing.max_export_batch_size > sizing.max_queue_size:
            raise ValueError(
                f"OTEL_BSP_MAX_EXPORT_BATCH_SIZE ({sizing.max_export_batch_size}) must not "
                f"exceed OTEL_BSP_MAX_QUEUE_SIZE ({sizing.max_queue_size})"
            )
        return sizing


SDK_DEFAULT_SIZING = QueueSizing(
    max_queue_size=2_048,
    schedule_delay_millis=5_000,
    max_export_batch_size=512,
    export_timeout_millis=30_000,
)
"""The SDK's own defaults, for comparison (``proctor bench telemetry``)."""


@dataclass(frozen=True)
class SpanStats:
    """What became of the spans handed to the processor."""

    queued: int
    """Admitted to the queue."""
    exported: int
    """Delivered: the exporter reported success."""
    failed: int
    """Handed to the exporter, which reported failure (collector down, rejected…)."""
    queue_full: int
    """Refused because the queue was full."""
    after_shutdown: int
    """Refused after shutdown, or still queued when shutdown gave up."""

    @property
    def dropped(self) -> int:
        """Every span that did not reach the collector and will not."""
        return self.failed + self.queue_full + self.after_shutdown


class _CountingExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, processor: CountingSpanProcessor) -> None:
        self._inner = inner
        self._p = processor

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        n = len(spans)
        self._p._submitted(n)
        try:
            result = self._inner.export(spans)
        except Exception:
            log.exception("exporting %d spans raised", n)
            result = SpanExportResult.FAILURE
        self._p._delivered(n, result is SpanExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


class CountingSpanProcessor(SpanProcessor):
    """A ``BatchSpanProcessor`` that never loses a span without counting it."""

    def __init__(self, exporter: SpanExporter, sizing: QueueSizing | None = None) -> None:
        self.sizing = sizing or QueueSizing()
        self._lock = threading.Lock()
        self._queued = self._handed = self._exported = self._failed = 0
        self._queue_full = self._after_shutdown = 0
        self._closed = False
        self._last_warning = 0.0
        s = self.sizing
        # The SDK's queue is one batch larger than the bound enforced here: a batch taken
        # off its queue still counts as queued until the exporter has it, so the SDK's
        # own queue is never the one that overflows (it would evict without counting).
        self._inner = BatchSpanProcessor(
            _CountingExporter(exporter, self),
            max_queue_size=s.max_queue_size + s.max_export_batch_size,
            schedule_delay_millis=s.schedule_delay_millis,
            max_export_batch_size=s.max_export_batch_size,
            export_timeout_millis=s.export_timeout_millis,
        )

    def _submitted(self, n: int) -> None:
        with self._lock:
            self._handed += n

    def _delivered(self, n: int, ok: bool) -> None:
        with self._lock:
            if ok:
                self._exported += n
            else:
                self._failed += n
        if not ok:
            log.warning("the span exporter failed to deliver %d spans (counted as dropped)", n)

    @property
    def stats(self) -> SpanStats:
        with self._lock:
            return SpanStats(
                self._queued, self._exported, self._failed, self._queue_full, self._after_shutdown
            )

    @property
    def dropped(self) -> int:
        return self.stats.dropped

    def on_end(self, span: ReadableSpan) -> None:
        if not (span.context and span.context.trace_flags.sampled):
            return
        warn = admitted = False
        with self._lock:
            if self._closed:
                self._after_shutdown += 1
            elif self._queued - self._handed >= self.sizing.max_queue_size:
                self._queue_full += 1
                now = time.monotonic()
                warn = now - self._last_warning > 10
                if warn:
                    self._last_warning = now
            else:
                self._queued += 1
                admitted = True
        if warn:
            log.warning(
                "span queue full (%d): spans are dropped and counted; raise "
                "OTEL_BSP_MAX_QUEUE_SIZE or check the collector",
                self.sizing.max_queue_size,
            )
        if admitted:
            self._inner.on_end(span)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._inner.shutdown()  # type: ignore[no-untyped-call]
        with self._lock:
            # Spans the SDK still held when its shutdown gave up are lost: count them.
            left = self._queued - self._handed
            if left > 0:
                self._after_shutdown += left
                self._handed += left


class FanOutExporter(SpanExporter):
    """Several exporters at once (``OTEL_TRACES_EXPORTER=otlp,console``); a batch succeeds
    only if every exporter took it."""

    def __init__(self, exporters: Sequence[SpanExporter]) -> None:
        self._exporters = tuple(exporters)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        results = [e.export(spans) for e in self._exporters]
        ok = all(r is SpanExportResult.SUCCESS for r in results)
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        for e in self._exporters:
            e.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return all(e.force_flush(timeout_millis) for e in self._exporters)


class _RunIds(IdGenerator):
    """Ids chosen by the caller, per thread: a run's spans have the same ids on every
    export, and the trace id can be found from the run id."""

    def __init__(self) -> None:
        self._next = threading.local()

    def plan(self, trace_id: str, span_id: str) -> None:
        self._next.trace_id = int(trace_id, 16)
        self._next.span_id = int(span_id, 16)

    def generate_trace_id(self) -> int:
        return int(self._next.trace_id)

    def generate_span_id(self) -> int:
        return int(self._next.span_id)

    def is_trace_id_random(self) -> bool:
        return True  # SHA-256 output: as uniform as random bits


def default_resource() -> Resource:
    """``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``, with ``service.name`` =
    ``proctor`` when neither names the service."""
    from proctor import __version__

    resource = Resource.create({})
    extra: dict[str, str] = {}
    name = str(resource.attributes.get("service.name", ""))
    if not name or name.startswith("unknown_service"):
        extra["service.name"] = "proctor"
    if "service.version" not in resource.attributes:
        extra["service.version"] = __version__
    return resource.merge(Resource(extra))


def default_redact() -> Redact:
    """The default detectors (emails, cards, phone numbers, IBANs, keys and tokens…), masked."""
    from proctor.redaction import Redactor

    redactor = Redactor(mode_by_kind={}, key=b"")

    def redact(tenant: str, text: str) -> str:
        return redactor.text(text)

    return redact


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000) * 1_000


class OtelTelemetry:
    """Exports each ended run's spans; counts what could not be delivered.

    ``redact(tenant, text)`` is applied to every string attribute (and span
    name); by default the :class:`~proctor.redaction.Redactor` detectors mask
    what they find.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        redact: Redact | None = None,
        resource: Resource | None = None,
        sizing: QueueSizing | None = None,
    ) -> None:
        from proctor import __version__

        self.redact: Redact = redact or default_redact()
        self.processor = CountingSpanProcessor(exporter, sizing)
        self._ids = _RunIds()
        self._provider = TracerProvider(
            resource=resource or default_resource(), id_generator=self._ids
        )
        self._provider.add_span_processor(self.processor)
        self._tracer = self._provider.get_tracer("proctor", __version__)
        self._lock = threading.Lock()
        self.runs_exported = 0
        self.runs_failed = 0
        """Runs whose spans could not be built at all (logged with the cause)."""

    @property
    def dropped(self) -> int:
        """Spans lost: refused by a full queue, failed to export, or cut off at shutdown."""
        return self.processor.dropped

    def dropped_spans(self) -> int:
        """:attr:`dropped` as a callable, for a metrics gauge."""
        return self.processor.dropped

    @property
    def stats(self) -> SpanStats:
        return self.processor.stats

    def export_run(self, run_id: str, spans_of: SpanSource) -> int:
        """Queue the spans of an ended run (``spans_of`` derives them) and return how many.
        Never raises: a run does not fail because its spans could not be sent."""
        try:
            spans = spans_of(self.redact)
            if not spans or spans[0].end is None:
                return 0  # not ended: its spans go out when it ends
            self.emit(spans)
        except Exception:
            with self._lock:
                self.runs_failed += 1
            log.exception("could not export the spans of run %s", run_id)
            return 0
        with self._lock:
            self.runs_exported += 1
        return len(spans)

    def emit(self, spans: Sequence[SpanRecord]) -> None:
        """Send spans (parents before children) through the SDK with their own times and ids."""
        live: dict[str, trace.Span] = {}
        for rec in spans:
            parent = live.get(rec.parent) if rec.parent else None
            # An explicit context: a host application's current span never adopts a run.
            context = trace.set_span_in_context(parent) if parent is not None else Context()
            self._ids.plan(rec.trace_id, rec.span_id)
            attributes = dict(rec.attributes)
            if rec.error:
                attributes["error.type"] = rec.error
            live[rec.key] = self._tracer.start_span(
                rec.name,
                context=context,
                kind=_KINDS[rec.kind],
                attributes=attributes,
                start_time=_ns(rec.start),
            )
        for rec in reversed(spans):
            span = live[rec.key]
            if rec.error:
                span.set_status(Status(StatusCode.ERROR, rec.error))
            span.end(end_time=_ns(rec.end or rec.start))

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.processor.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush what is queued and stop; spans still undelivered are counted as dropped."""
        self._provider.shutdown()
