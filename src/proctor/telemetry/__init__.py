"""Spans of runs, model calls, policy decisions, approvals and tool calls, over OpenTelemetry.

:class:`SpanRecord` is one span of a run's tree; ``proctor.runs.trace`` derives
the tree from a stored run (no OpenTelemetry package needed: the service shows it
in a run's detail). With the ``otel``
extra and the standard ``OTEL_EXPORTER_OTLP_*`` variables set, the runtime
exports each run's spans over OTLP when the run ends
(:func:`telemetry_from_environment`); see ``docs/telemetry.md``.
"""

from proctor.telemetry.config import (
    RunTelemetry,
    content_capture_wanted,
    exporters_wanted,
    telemetry_from_environment,
)
from proctor.telemetry.spans import (
    Redact,
    SpanRecord,
    SpanSource,
    SpanTree,
    span_id_of,
    trace_id_of,
)

__all__ = [
    "Redact",
    "RunTelemetry",
    "SpanRecord",
    "SpanSource",
    "SpanTree",
    "content_capture_wanted",
    "exporters_wanted",
    "span_id_of",
    "telemetry_from_environment",
    "trace_id_of",
]
