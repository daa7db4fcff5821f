"""What the stack tests share: loopback ports, bounded waits, child processes that always stop, a stand-in
for Tempo, and the built collector and a real Prometheus started on free loopback ports.

Every wait has a time limit and every process started here is stopped (terminate, then kill) on the way
out, whatever the test did.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
COLLECTOR_DIR = REPO / "collector"
COLLECTOR_CONFIG = COLLECTOR_DIR / "config.yaml"
STOP_SECONDS = 10
POLL_SECONDS = 0.2


# --- Ports, binaries, waits -------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def required_binary(env: str, default: str, hint: str = "") -> str:
    """A binary the stack tier needs: missing is a failure, not a skip (CI installs it)."""
    path = os.environ.get(env, default)
    if not (shutil.which(path) or Path(path).is_file()):
        pytest.fail(f"{path} not found: {hint or 'install it'} (or set {env})")
    return path


# --- Prometheus 3, as backends/build-prometheus.sh builds it ----------------------------------------
def prometheus_release() -> str:
    """The Prometheus release docker-compose.yml ships (and CI builds and tests): "3.16.0"."""
    compose = (REPO / "docker-compose.yml").read_text()
    (tag,) = set(re.findall(r"image: prom/prometheus:v(3\.\d+\.\d+)", compose))
    return tag


def prometheus_dir() -> Path:
    """Where backends/build-prometheus.sh puts the release: <cache>/prometheus/v0.3MINOR.PATCH."""
    _, minor, patch = (int(part) for part in prometheus_release().split("."))
    cache = os.environ.get("AITRACK_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "otel-aitrack"
    )
    return Path(cache, "prometheus", f"v0.3{minor:02d}.{patch}")


def prometheus_tool(name: str) -> str:
    """`prometheus` or `promtool`: $PROMETHEUS_BIN / $PROMTOOL_BIN, else the built 3.x release."""
    hint = f"build Prometheus {prometheus_release()}: bash backends/build-prometheus.sh"
    return required_binary(f"{name.upper()}_BIN", str(prometheus_dir() / name), hint)


def otelcol_binary() -> Path:
    binary = Path(os.environ.get("AITRACK_OTELCOL", COLLECTOR_DIR / "_build" / "otelcol-aitrack"))
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no collector binary at {binary}: run collector/build.sh (or set AITRACK_OTELCOL)")
    return binary


def log_tail(log: Path | None, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log and log.exists() else ""


def poll(
    condition: Callable[[], T | None], timeout: float, process: subprocess.Popen[bytes] | None = None
) -> T | None:
    """The first truthy result of `condition`, tried at least once and then every POLL_SECONDS until
    `timeout` seconds have passed or `process` has exited; None if there was none. OSError (a server
    not listening yet, an HTTP error status) counts as "not yet"."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if result := condition():
                return result
        except OSError:
            pass
        if (process is not None and process.poll() is not None) or time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS)


def wait_until(
    condition: Callable[[], T | None],
    what: str,
    timeout: float,
    *,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> T:
    """Like `poll`, but a timeout, or `process` exiting first, fails the test with the end of `log`."""
    result = poll(condition, timeout, process)
    if result:
        return result
    if process is not None and process.poll() is not None:
        pytest.fail(f"exited with {process.returncode} while waiting for {what}:\n{log_tail(log)}")
    pytest.fail(f"waited {timeout:.0f}s for {what}:\n{log_tail(log)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate, give it STOP_SECONDS, then kill."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_SECONDS)


@contextmanager
def running(
    args: list[str], log: Path, *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process writing stdout and stderr to `log`, stopped when the block exits."""
    with log.open("wb") as out:
        process = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        stop(process)


def http_get(url: str, accept: str = "*/*") -> str:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


# --- The Prometheus text format --------------------------------------------------------------------
class Sample:
    def __init__(self, labels: dict[str, str], value: float) -> None:
        self.labels, self.value = labels, value


def samples(text: str, name: str) -> list[Sample]:
    """The samples of one metric in Prometheus text format: `name{a="x",b="y"} value`, or `name value`."""
    found = []
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) + 1 :].rsplit("} ", 1)
            label_pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels)
            found.append(Sample(dict(label_pairs), float(value.split()[0])))
        elif line.startswith(name + " "):
            found.append(Sample({}, float(line.split()[1])))
    return found


# --- Tempo's stand-in -------------------------------------------------------------------------------
class OtlpSink(ThreadingHTTPServer):
    """Stands in for Tempo: accepts OTLP/HTTP protobuf exports on loopback and keeps their bodies."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.bodies: list[bytes] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def exported(self) -> bytes:
        """Every body received so far, uncompressed, as one byte string."""
        return b"".join(list(self.bodies))

    def spans(self) -> list[Span]:
        exports = [ExportTraceServiceRequest.FromString(body) for body in list(self.bodies)]
        return [
            span
            for export in exports
            for resource_spans in export.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]


class _SinkHandler(BaseHTTPRequestHandler):
    server: OtlpSink

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def running_sink() -> Iterator[OtlpSink]:
    sink = OtlpSink()
    threading.Thread(target=sink.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    try:
        yield sink
    finally:
        sink.shutdown()
        sink.server_close()


# --- The built collector ----------------------------------------------------------------------------
COLLECTOR_PORTS = ("otlp_grpc", "otlp_http", "prometheus", "health", "own_metrics")
COLLECTOR_WAIT_SECONDS = 20


class RunningCollector:
    """`otelcol-aitrack` with collector/config.yaml on free loopback ports, exporting traces to a sink."""

    def __init__(self, ports: dict[str, int], sink: OtlpSink, log: Path) -> None:
        self.ports, self.sink, self.log = ports, sink, log

    def url(self, port: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[port]}{path}"

    def get(self, port: str, path: str, accept: str = "*/*") -> str:
        return http_get(self.url(port, path), accept)

    def post_json(self, path: str, payload: dict[str, Any]) -> None:
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(self.url("otlp_http", path), json.dumps(payload).encode(), headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def wait_for(self, condition: Callable[[], T | None], what: str) -> T:
        return wait_until(condition, what, COLLECTOR_WAIT_SECONDS, log=self.log)

    def wait_for_spans(self) -> list[Span]:
        return self.wait_for(self.sink.spans, "a trace at the Tempo sink")

    def scrape_when(self, needle: str, accept: str = "text/plain") -> str:
        """The Prometheus endpoint's page, once it shows `needle`."""

        def page_showing_needle() -> str | None:
            text = self.get("prometheus", "/metrics", accept)
            return text if needle in text else None

        return self.wait_for(page_showing_needle, f"{needle!r} on the Prometheus endpoint")


def collector_environment(ports: dict[str, int], sink: OtlpSink, **overrides: str) -> dict[str, str]:
    """config.yaml's environment variables for loopback ports and the sink; `overrides` win."""
    return {
        **os.environ,
        "AITRACK_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['otlp_grpc']}",
        "AITRACK_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['otlp_http']}",
        "AITRACK_PROMETHEUS_ENDPOINT": f"127.0.0.1:{ports['prometheus']}",
        "AITRACK_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
        "AITRACK_COLLECTOR_METRICS_HOST": "127.0.0.1",
        "AITRACK_COLLECTOR_METRICS_PORT": str(ports["own_metrics"]),
        "AITRACK_TEMPO_ENDPOINT": sink.endpoint,
        **overrides,
    }


@contextmanager
def running_collector(sink: OtlpSink, workdir: Path, **overrides: str) -> Iterator[RunningCollector]:
    """The collector, healthy; `overrides` are config.yaml environment variables."""
    binary = otelcol_binary()
    ports = {name: free_port() for name in COLLECTOR_PORTS}
    env = collector_environment(ports, sink, **overrides)
    log = workdir / "otelcol.log"
    with running([str(binary), f"--config={COLLECTOR_CONFIG}"], log, env=env) as process:
        collector = RunningCollector(ports, sink, log)
        wait_until(
            lambda: "Server available" in collector.get("health", "/"),
            "the collector's health check",
            COLLECTOR_WAIT_SECONDS,
            process=process,
            log=log,
        )
        yield collector


# --- A real Prometheus ------------------------------------------------------------------------------
PROMETHEUS_START_SECONDS = 60


@contextmanager
def running_prometheus(workdir: Path, config: str, *flags: str) -> Iterator[str]:
    """Prometheus on a free loopback port with `config` as prometheus.yml and its storage in `workdir/data`;
    yields its base URL once it is ready."""
    binary = prometheus_tool("prometheus")
    (workdir / "prometheus.yml").write_text(config)
    port = free_port()
    args = [
        binary,
        "--config.file=prometheus.yml",
        "--storage.tsdb.path=data",
        f"--web.listen-address=127.0.0.1:{port}",
        *flags,
    ]
    log = workdir / "prometheus.log"
    with running(args, log, cwd=workdir) as process:
        base = f"http://127.0.0.1:{port}"

        def ready() -> str:
            return http_get(f"{base}/-/ready")

        wait_until(ready, "Prometheus to be ready", PROMETHEUS_START_SECONDS, process=process, log=log)
        yield base


def prometheus_query(base: str, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    """An instant query's result vector; a rejected query fails the test with Prometheus' reason."""
    params = {"query": expr, **({"time": str(at)} if at is not None else {})}
    try:
        body = json.loads(http_get(f"{base}/api/v1/query?{urllib.parse.urlencode(params)}"))
    except urllib.error.HTTPError as error:
        pytest.fail(f"query rejected: {error.read().decode()}\n{expr}")
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def values(result: list[dict[str, Any]], *labels: str) -> dict[Any, float]:
    """An instant vector as {label value (a tuple for several labels): value}."""
    found = {}
    for sample in result:
        key = tuple(sample["metric"].get(label, "") for label in labels)
        found[key[0] if len(key) == 1 else key] = float(sample["value"][1])
    return found
