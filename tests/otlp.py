"""A collector's OTLP/HTTP receiver on loopback, for tests that export through the real OTel exporters.

It keeps every request's raw (uncompressed) body by path, so a test can search the exact bytes that
left the process, and decodes them with opentelemetry-proto into spans, metric points and log records.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

TRACES, METRICS, LOGS = "/v1/traces", "/v1/metrics", "/v1/logs"
T = TypeVar("T")


class OtlpReceiver(ThreadingHTTPServer):
    """Accepts OTLP/HTTP protobuf exports on 127.0.0.1 and keeps their bodies."""

    daemon_threads = True

    def __init__(self) -> None:
        self.received: dict[str, list[bytes]] = {}
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def endpoint(self) -> str:
        """`OTEL_EXPORTER_OTLP_ENDPOINT` for exporters sending here."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def keep(self, path: str, body: bytes) -> None:
        with self._lock:
            self.received.setdefault(path, []).append(body)

    def bodies(self, path: str | None = None) -> list[bytes]:
        with self._lock:
            if path is None:
                return [body for bodies in self.received.values() for body in bodies]
            return list(self.received.get(path, ()))

    def raw(self) -> bytes:
        """Every byte received so far, all signals."""
        return b"".join(self.bodies())

    def spans(self) -> list[Any]:
        return [
            span
            for body in self.bodies(TRACES)
            for resource in ExportTraceServiceRequest.FromString(body).resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def metric_exports(self) -> list[list[Any]]:
        """Each metrics export request, as the list of metrics it carried."""
        return [
            [
                metric
                for resource in ExportMetricsServiceRequest.FromString(body).resource_metrics
                for scope in resource.scope_metrics
                for metric in scope.metrics
            ]
            for body in self.bodies(METRICS)
        ]

    def log_records(self) -> list[Any]:
        return [
            record
            for body in self.bodies(LOGS)
            for resource in ExportLogsServiceRequest.FromString(body).resource_logs
            for scope in resource.scope_logs
            for record in scope.log_records
        ]

    def wait_for(self, condition: Callable[[], T | None], what: str, seconds: float = 30.0) -> T:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = condition()
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {what} reached the receiver within {seconds} s")


def points(metric: Any) -> list[Any]:
    """The data points of one decoded metric, whatever its kind."""
    kind = metric.WhichOneof("data")
    return list(getattr(metric, kind).data_points) if kind else []


def attributes(item: Any) -> dict[str, Any]:
    """A decoded span's, point's or record's attributes as a plain dict."""
    found = {}
    for pair in item.attributes:
        value = pair.value
        kind = value.WhichOneof("value")
        found[pair.key] = getattr(value, kind) if kind else None
    return found


class _Handler(BaseHTTPRequestHandler):
    server: OtlpReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.keep(self.path, body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Silent."""


@contextmanager
def running_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    threading.Thread(target=receiver.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield receiver
    finally:
        receiver.shutdown()
        receiver.server_close()
