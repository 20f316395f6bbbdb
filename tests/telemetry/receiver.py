"""A local OTLP receiver that decodes the real wire format, over HTTP/protobuf and gRPC."""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

ExportRequest = trace_service_pb2.ExportTraceServiceRequest


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


@dataclass
class Received:
    """What arrived: the raw request bodies, and every span decoded."""

    bodies: list[bytes] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, body: bytes) -> None:
        request = ExportRequest()
        request.ParseFromString(body)
        with self.lock:
            self.bodies.append(body)
            self.requests.append(request)

    def spans(self) -> list[dict[str, Any]]:
        out = []
        with self.lock:
            requests = list(self.requests)
        for request in requests:
            for rs in request.resource_spans:
                resource = {a.key: _value(a.value) for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        out.append(
                            {
                                "name": s.name,
                                "trace_id": s.trace_id.hex(),
                                "span_id": s.span_id.hex(),
                                "parent_span_id": s.parent_span_id.hex() or None,
                                "kind": s.kind,
                                "start": s.start_time_unix_nano,
                                "end": s.end_time_unix_nano,
                                "status": s.status.code,
                                "attributes": {a.key: _value(a.value) for a in s.attributes},
                                "resource": resource,
                                "scope": ss.scope.name,
                            }
                        )
        return out

    def raw(self) -> bytes:
        with self.lock:
            return b"".join(self.bodies)

    def count(self) -> int:
        with self.lock:
            return sum(
                len(ss.spans)
                for r in self.requests
                for rs in r.resource_spans
                for ss in rs.scope_spans
            )


class HttpReceiver:
    """POST /v1/traces with application/x-protobuf; answers ``status`` (200 unless told)."""

    def __init__(self) -> None:
        self.received = Received()
        self.status = 200
        self.headers: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.path != "/v1/traces":
                    self.send_response(404)
                elif receiver.status == 200:
                    receiver.received.add(body)
                    self.send_response(200)
                else:
                    self.send_response(receiver.status)
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        serve = self._server.serve_forever
        self._thread = threading.Thread(target=serve, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request: Any, context: Any) -> Any:
        self.received.add(request.SerializeToString())
        return trace_service_pb2.ExportTraceServiceResponse()


class GrpcReceiver:
    """The OTLP TraceService over gRPC, without TLS."""

    def __init__(self) -> None:
        self.received = Received()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _TraceService(self.received), self._server
        )
        port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self.endpoint = f"http://127.0.0.1:{port}"

    def close(self) -> None:
        self._server.stop(grace=None)
