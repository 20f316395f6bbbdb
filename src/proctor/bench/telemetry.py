"""What span export costs, and whether it keeps up: ``proctor bench telemetry``.

Everything runs against a local OTLP/HTTP receiver in this process that
decodes each request, so the figures include encoding, HTTP and decoding
on this machine. Two measurements:

- **runs**: short governed runs (two calls each) on a fresh embedded store,
  with span export on; the time each run's end spends deriving and queueing
  its spans, and what reached the receiver;
- **load**: 2,000 runs' worth of spans emitted in a tight loop, once with
  the SDK's default queue sizes and once with proctor's: spans dropped
  (counted) and spans delivered per second.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from proctor.errors import missing_extra
from proctor.runs import RunSpec
from proctor.runtime import Runtime
from proctor.settings import Settings
from proctor.telemetry import SpanRecord, span_id_of, trace_id_of
from proctor.tools import Effect, tool

_POLICY = """
@id("bench-allow")
permit(principal in Role::"bench", action == Action::"record_event", resource);
"""

_SHAPE = (
    ("run", None, "invoke_agent bench-agent"),
    ("model/1", "run", "chat gpt-4o-mini"),
    ("step/0", "run", "execute_tool record_event"),
    ("step/0/decide", "step/0", "proctor.decide record_event"),
    ("step/0/execute", "step/0", "proctor.execute record_event"),
    ("step/1", "run", "execute_tool record_event"),
)


@tool(effect=Effect.WRITE)
async def record_event(n: int) -> dict[str, Any]:
    """A trivial write."""
    return {"n": n}


class _Sink:
    """A local OTLP/HTTP receiver that decodes what it gets and counts the spans."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        self.spans = 0
        self.last_at = 0.0
        lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
                with lock:
                    sink.spans += n
                    sink.last_at = time.perf_counter()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}/v1/traces"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _tree(n: int) -> list[SpanRecord]:
    run_id = f"run_bench_{n:06d}"
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        SpanRecord(
            key=key,
            parent=parent,
            name=name,
            kind="internal",
            start=t0 + timedelta(milliseconds=i),
            end=t0 + timedelta(milliseconds=10 - i),
            trace_id=trace_id_of(run_id),
            span_id=span_id_of(run_id, key),
            parent_span_id=span_id_of(run_id, parent) if parent else None,
            attributes={"proctor.run.id": run_id, "proctor.tenant": "bench"},
        )
        for i, (key, parent, name) in enumerate(_SHAPE)
    ]


def _load(sink_runs: int, default_sizes: bool) -> dict[str, Any]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from proctor.telemetry.export import SDK_DEFAULT_SIZING, OtelTelemetry, QueueSizing

    sink = _Sink()
    sizing = SDK_DEFAULT_SIZING if default_sizes else QueueSizing()
    telemetry = OtelTelemetry(OTLPSpanExporter(endpoint=sink.endpoint), sizing=sizing)
    trees = [_tree(n) for n in range(sink_runs)]
    began = time.perf_counter()
    for tree in trees:
        telemetry.emit(tree)
    emitted = time.perf_counter()
    telemetry.shutdown()
    stats = telemetry.stats
    sink.close()
    total = len(_SHAPE) * sink_runs
    return {
        "spans": total,
        "max_queue_size": sizing.max_queue_size,
        "spans_dropped": stats.dropped,
        "dropped_pct": round(100 * stats.dropped / total, 1),
        "spans_received": sink.spans,
        "spans_emitted_per_s": round(total / (emitted - began)),
        "spans_exported_per_s": round(stats.exported / max(sink.last_at - began, 1e-9)),
    }


async def _runs(workdir: Path, runs: int, export: bool) -> dict[str, Any]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from proctor.telemetry.export import OtelTelemetry

    bundle = workdir / "bundle"
    bundle.mkdir()
    (bundle / "bench.cedar").write_text(_POLICY)
    (bundle / "proctor.yaml").write_text("label: bench\n")
    sink = _Sink()
    telemetry = OtelTelemetry(OTLPSpanExporter(endpoint=sink.endpoint)) if export else None
    rt = Runtime(
        policy=bundle,
        tools=[record_event],
        settings=Settings(home=workdir / "state"),
        telemetry=telemetry,
    )
    spec = RunSpec(
        agent="bench-agent", role="bench", tenant="bench", workflow="bench", requester="u"
    )
    ends: list[float] = []
    began = time.perf_counter()
    try:
        for i in range(runs):
            run = await rt.start_run(spec)
            await run.call("record_event", {"n": i})
            await run.call("record_event", {"n": i + 1})
            t0 = time.perf_counter()
            await run.complete()
            ends.append((time.perf_counter() - t0) * 1e6)
        elapsed = time.perf_counter() - began
    finally:
        rt.close()  # flushes
        sink.close()
    figures: dict[str, Any] = {
        "runs": runs,
        "runs_per_s": round(runs / elapsed, 1),
        "run_end_us_median": round(statistics.median(ends), 1),
    }
    if telemetry is None:
        return figures
    stats = telemetry.stats
    return {
        **figures,
        "spans_queued": stats.queued,
        "spans_exported": stats.exported,
        "spans_received": sink.spans,
        "spans_dropped": stats.dropped,
    }


def measure(runs: int = 300, load_runs: int = 2_000) -> dict[str, Any]:
    """Run the benchmark; one JSON-able dict of figures."""
    try:
        import opentelemetry.exporter.otlp.proto.http  # noqa: F401
    except ImportError as exc:
        raise missing_extra("otel", exc.name, "`proctor bench telemetry`") from None
    figures: dict[bool, dict[str, Any]] = {}
    for export in (False, True):
        with tempfile.TemporaryDirectory(prefix="proctor-bench-", dir=Path.cwd()) as tmp:
            figures[export] = asyncio.run(_runs(Path(tmp), runs, export))
    governed = figures[True]
    governed["run_end_us_median_without_export"] = figures[False]["run_end_us_median"]
    governed["runs_per_s_without_export"] = figures[False]["runs_per_s"]
    return {
        "governed_runs": governed,
        "load_sdk_default_queue": _load(load_runs, default_sizes=True),
        "load_proctor_queue": _load(load_runs, default_sizes=False),
    }
