"""Whether and where spans go, from the standard ``OTEL_*`` variables.

The SDK's exporters read the endpoint, headers, timeout, compression and
certificates themselves (``OTEL_EXPORTER_OTLP_*`` and their ``_TRACES_``
variants). proctor decides only whether to export at all, and over which
protocol.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Protocol

from proctor.errors import ConfigError

if TYPE_CHECKING:
    from proctor.telemetry.spans import Redact, SpanSource

log = logging.getLogger("proctor.telemetry")

PROTOCOLS = ("http/protobuf", "grpc")
EXPORTERS = ("otlp", "console", "none")


class RunTelemetry(Protocol):
    """What the runtime calls: a run's spans when it ends, and a flush on close."""

    def export_run(self, run_id: str, spans_of: SpanSource) -> int:
        """Queue the spans ``spans_of`` derives for the ended run; never raises."""
        ...

    @property
    def dropped(self) -> int: ...

    def shutdown(self) -> None: ...


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def exporters_wanted() -> list[str]:
    """The exporters the environment asks for: ``[]`` when spans are not exported.

    Export is on when ``OTEL_TRACES_EXPORTER`` names ``otlp`` (or ``console``), or when
    an OTLP endpoint is set and ``OTEL_TRACES_EXPORTER`` does not say ``none``.
    ``OTEL_SDK_DISABLED=true`` turns it off whatever else is set.
    """
    if _flag("OTEL_SDK_DISABLED"):
        return []
    raw = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in EXPORTERS]
    if unknown:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER={raw!r}: proctor exports spans with "
            f"{', '.join(EXPORTERS)}; not {', '.join(unknown)}"
        )
    if "none" in names:
        return []
    if names:
        return names
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return ["otlp"] if endpoint else []


CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""The variable the GenAI instrumentations read to put messages on spans (off unless
``true``)."""


def content_capture_wanted() -> bool:
    """Whether spans carry messages and tool arguments and results (redacted): only when
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``. Any other value than
    ``true`` or ``false`` is an error, so a typo does not silently leave it off."""
    raw = os.environ.get(CAPTURE_CONTENT, "").strip().lower()
    if raw not in ("", "true", "false"):
        raise ConfigError(f"{CAPTURE_CONTENT}={raw!r}: use true or false")
    return raw == "true"


def otlp_protocol() -> str:
    """``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``, else ``OTEL_EXPORTER_OTLP_PROTOCOL``, else
    ``http/protobuf`` (the specification's default)."""
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        raw = os.environ.get(name, "").strip()
        if raw:
            if raw not in PROTOCOLS:
                hint = " (the Python exporters do not send http/json)" if raw == "http/json" else ""
                raise ConfigError(f"{name}={raw!r}: use one of {', '.join(PROTOCOLS)}{hint}")
            return raw
    return "http/protobuf"


def telemetry_from_environment(redact: Redact | None = None) -> RunTelemetry | None:
    """The span exporter the ``OTEL_*`` variables describe, or ``None`` when export is off.

    Raises ``ConfigError`` for a protocol or exporter proctor cannot use. When export is
    asked for but the ``otel`` extra is not installed, logs a warning and returns ``None``.
    """
    wanted = exporters_wanted()
    if not wanted:
        return None
    protocol = otlp_protocol() if "otlp" in wanted else None
    try:
        from opentelemetry.sdk.trace.export import SpanExporter

        from proctor.telemetry.export import FanOutExporter, OtelTelemetry, QueueSizing
    except ImportError as exc:
        log.warning(
            "OpenTelemetry export is configured but its packages are missing (%s); "
            "spans are not exported. Install proctor[otel].",
            exc,
        )
        return None
    exporters: list[SpanExporter] = []
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        exporters.append(GrpcExporter())
    elif protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        exporters.append(HttpExporter())
    if "console" in wanted:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        exporters.append(ConsoleSpanExporter())
    try:
        sizing = QueueSizing.from_environment()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    exporter = exporters[0] if len(exporters) == 1 else FanOutExporter(exporters)
    return OtelTelemetry(exporter, redact=redact, sizing=sizing)
