"""The collector: its builder manifest agrees with config.yaml, and the built binary keeps its promises.

The live tests start `otelcol-aitrack` (built by collector/build.sh; another path in AITRACK_OTELCOL) on free
loopback ports, with Tempo replaced by a small OTLP/HTTP sink that keeps what the collector exports.
Test dependencies: pytest, pyyaml, opentelemetry-proto.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

pytestmark = pytest.mark.stack

COLLECTOR_DIR = Path(__file__).resolve().parents[2] / "collector"
CONFIG = COLLECTOR_DIR / "config.yaml"
MANIFEST = COLLECTOR_DIR / "builder-config.yaml"
KINDS = {
    "receivers": "receiver",
    "processors": "processor",
    "exporters": "exporter",
    "extensions": "extension",
}

OPENAI_KEY = "sk-proj-abcdefghijklmnop1234"
BEARER_TOKEN = "abc.def"
QUERY_KEY = "qwerty123456"
SERVICE = "aitrack-stack-test"
ERROR_TRACE_ID = "5b8efff798038103d269b633813fc60c"
OK_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
WAIT_SECONDS = 20


def load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def used_ids(config: dict[str, Any]) -> dict[str, set[str]]:
    """Component ids (`type` or `type/name`) that the service's extensions and pipelines use, by kind."""
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    used["extensions"] = set(config["service"].get("extensions", []))
    for pipeline in config["service"]["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            used[kind] |= set(pipeline.get(kind, []))
    return used


def types_of(ids: dict[str, set[str]]) -> dict[str, set[str]]:
    return {kind: {component_id.split("/")[0] for component_id in names} for kind, names in ids.items()}


def module_of(kind: str, component_type: str) -> str:
    """The Go module's last path element: `memory_limiter` is built from `memorylimiterprocessor`."""
    return component_type.replace("_", "") + KINDS[kind]


def gomod(entry: dict[str, str]) -> tuple[str, str]:
    path, version = entry["gomod"].split()
    return path.rsplit("/", 1)[-1], version


def otelcol_binary() -> Path:
    binary = Path(os.environ.get("AITRACK_OTELCOL", COLLECTOR_DIR / "_build" / "otelcol-aitrack"))
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no collector binary at {binary}: run collector/build.sh (or set AITRACK_OTELCOL)")
    return binary


def run_otelcol(*args: str) -> str:
    result = subprocess.run(
        [otelcol_binary(), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# --- The manifest and the config agree ------------------------------------------------------------------


def test_manifest_builds_exactly_the_components_config_uses() -> None:
    used = types_of(used_ids(load_yaml(CONFIG)))
    wanted = {kind: {module_of(kind, name) for name in names} for kind, names in used.items()}
    manifest = load_yaml(MANIFEST)
    built = {kind: {gomod(entry)[0] for entry in manifest.get(kind, [])} for kind in KINDS}
    assert built == wanted
    assert not manifest.get("connectors")


def test_config_defines_no_component_it_does_not_use() -> None:
    config = load_yaml(CONFIG)
    defined = {kind: set(config.get(kind, {})) for kind in KINDS}
    assert defined == used_ids(config)


def test_every_component_is_pinned_to_one_collector_release() -> None:
    manifest = load_yaml(MANIFEST)
    versions = {gomod(entry)[1] for kind in KINDS for entry in manifest[kind]}
    assert versions == {f"v{manifest['dist']['version']}"}
    # The stable (v1) modules of that same release move together too.
    assert len({gomod(entry)[1] for entry in manifest["providers"]}) == 1


def test_secret_pattern_is_the_same_in_every_redaction_statement() -> None:
    groups = load_yaml(CONFIG)["processors"]["transform/redact_secrets"]["trace_statements"]
    statements = [statement for group in groups for statement in group["statements"]]
    patterns = {
        pattern for statement in statements for pattern in re.findall(r'"(\(\?i\)\S+)", "', statement)
    }
    assert {group["context"] for group in groups} == {"resource", "span", "spanevent"}
    assert len(statements) == 4
    assert len(patterns) == 1


# --- The built collector --------------------------------------------------------------------------------


def test_built_collector_validates_the_config() -> None:
    run_otelcol("validate", f"--config={CONFIG}")


def test_built_collector_has_exactly_the_components_config_uses() -> None:
    listed = yaml.safe_load(run_otelcol("components"))
    built = {kind: {entry["name"] for entry in listed.get(kind) or []} for kind in KINDS}
    assert built == types_of(used_ids(load_yaml(CONFIG)))
    assert not listed.get("connectors")


# --- Live: a trace and metrics through the running collector --------------------------------------------


class OtlpSink(ThreadingHTTPServer):
    """Stands in for Tempo: accepts OTLP/HTTP protobuf exports and keeps them."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.bodies: list[bytes] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

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


class RunningCollector:
    def __init__(self, ports: dict[str, int], sink: OtlpSink, log: Path) -> None:
        self.ports, self.sink, self.log = ports, sink, log

    def get(self, port: str, path: str, accept: str = "*/*") -> str:
        url = f"http://127.0.0.1:{self.ports[port]}{path}"
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": accept}), timeout=5) as r:
            return r.read().decode()

    def post_json(self, path: str, payload: dict[str, Any]) -> None:
        url = f"http://127.0.0.1:{self.ports['otlp_http']}{path}"
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(url, json.dumps(payload).encode(), headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def wait_for(self, condition: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                if result := condition():
                    return result
            except OSError:  # not listening yet
                pass
            time.sleep(0.2)
        pytest.fail(f"waited {WAIT_SECONDS}s for {what}; collector log:\n{self.log.read_text()[-4000:]}")

    def wait_for_spans(self) -> list[Span]:
        return self.wait_for(self.sink.spans, "a trace at the Tempo sink")

    def scrape_when(self, needle: str, accept: str = "text/plain") -> str:
        """The Prometheus endpoint's page, once it shows `needle`."""

        def page_showing_needle() -> str | None:
            text = self.get("prometheus", "/metrics", accept)
            return text if needle in text else None

        return self.wait_for(page_showing_needle, f"{needle!r} on the Prometheus endpoint")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def collector() -> Iterator[RunningCollector]:
    binary = otelcol_binary()
    ports = {name: free_port() for name in ("otlp_grpc", "otlp_http", "prometheus", "health", "own_metrics")}
    sink = OtlpSink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "AITRACK_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['otlp_grpc']}",
        "AITRACK_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['otlp_http']}",
        "AITRACK_PROMETHEUS_ENDPOINT": f"127.0.0.1:{ports['prometheus']}",
        "AITRACK_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
        "AITRACK_COLLECTOR_METRICS_HOST": "127.0.0.1",
        "AITRACK_COLLECTOR_METRICS_PORT": str(ports["own_metrics"]),
        "AITRACK_TEMPO_ENDPOINT": sink.endpoint,
        "AITRACK_TRACE_SAMPLE_PERCENT": "0",
        "AITRACK_TRACE_DECISION_WAIT": "1s",
    }
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "otelcol.log"
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [binary, f"--config={CONFIG}"], env=env, stdout=log_file, stderr=log_file
            )
        running = RunningCollector(ports, sink, log)
        try:
            running.wait_for(lambda: "Server available" in running.get("health", "/"), "the health check")
            running.post_json("/v1/traces", traces_payload())
            running.post_json("/v1/metrics", metrics_payload())
            yield running
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            sink.shutdown()
            sink.server_close()


def test_error_trace_is_kept_at_zero_percent_sampling(collector: RunningCollector) -> None:
    assert ERROR_TRACE_ID in {span.trace_id.hex() for span in collector.wait_for_spans()}


def test_trace_without_error_is_dropped_at_zero_percent_sampling(collector: RunningCollector) -> None:
    collector.wait_for_spans()
    time.sleep(2)  # two more decision rounds: decision_wait is 1s here
    assert {span.trace_id.hex() for span in collector.sink.spans()} == {ERROR_TRACE_ID}


def test_secrets_are_masked_in_span_attributes_status_and_exception_event(
    collector: RunningCollector,
) -> None:
    collector.wait_for_spans()
    (span,) = [span for span in collector.sink.spans() if span.trace_id.hex() == ERROR_TRACE_ID]
    attributes = {kv.key: kv.value.string_value for kv in span.attributes}
    (event,) = span.events
    event_attributes = {kv.key: kv.value.string_value for kv in event.attributes}

    assert attributes["aitrack.error.message"] == "Incorrect API key provided: [REDACTED] (Bearer [REDACTED])"
    assert attributes["url.full"] == "https://provider.invalid/v1/chat?api_key=[REDACTED]&stream=false"
    assert span.status.message == "AuthenticationError: key [REDACTED] rejected"
    assert event_attributes["exception.message"] == "Incorrect API key provided: [REDACTED]"
    masked_stacktrace = STACKTRACE.replace(BEARER_TOKEN, "[REDACTED]").replace(OPENAI_KEY, "[REDACTED]")
    assert event_attributes["exception.stacktrace"] == masked_stacktrace
    exported = b"".join(collector.sink.bodies)
    for secret in (OPENAI_KEY, BEARER_TOKEN, QUERY_KEY):
        assert secret.encode() not in exported


def test_failure_metrics_reach_prometheus_with_contract_labels(collector: RunningCollector) -> None:
    text = collector.scrape_when("aitrack_last_failure_timestamp_seconds{")
    (calls,) = samples(text, "aitrack_calls_total")
    (last_failure,) = samples(text, "aitrack_last_failure_timestamp_seconds")

    assert CALL_LABELS.items() <= calls.labels.items()
    assert calls.labels["job"] == SERVICE  # the resource's service.name
    assert calls.value == 3
    assert FAILURE_LABELS.items() <= last_failure.labels.items()
    assert last_failure.value == 1764000000.5


def test_every_contract_metric_gets_its_prometheus_name(collector: RunningCollector) -> None:
    text = collector.scrape_when("aitrack_instrumentation_errors_total{")
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    assert families >= {
        "aitrack_calls_total",
        "aitrack_consecutive_failures",
        "aitrack_last_failure_timestamp_seconds",
        "gen_ai_client_operation_duration_seconds",
        "gen_ai_client_token_usage",
        "aitrack_instrumentation_errors_total",
    }
    assert "gen_ai_client_operation_duration_seconds_bucket{" in text


def test_counter_carries_trace_exemplar_in_openmetrics(collector: RunningCollector) -> None:
    text = collector.scrape_when("# EOF", accept="application/openmetrics-text; version=1.0.0")
    (line,) = [line for line in text.splitlines() if line.startswith("aitrack_calls_total{")]
    exemplar = line.split(" # ", 1)[1]
    assert f'trace_id="{ERROR_TRACE_ID}"' in exemplar


# --- Payloads and the Prometheus text parser ------------------------------------------------------------

CALL_ATTRIBUTES = {
    "gen_ai.prompt.name": "support-answer",
    "gen_ai.provider.name": "openai",
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o-mini",
    "error.type": "AuthenticationError",
}
FAILURE_ATTRIBUTES = {key: CALL_ATTRIBUTES[key] for key in ("gen_ai.prompt.name", "gen_ai.provider.name")}
CALL_LABELS = {key.replace(".", "_"): value for key, value in CALL_ATTRIBUTES.items()}
FAILURE_LABELS = {key.replace(".", "_"): value for key, value in FAILURE_ATTRIBUTES.items()}
STACKTRACE = (
    "Traceback (most recent call last):\n"
    '  File "app.py", line 12, in answer\n'
    f"    client.post(headers={{'Authorization': 'Bearer {BEARER_TOKEN}'}})\n"
    f"openai.AuthenticationError: key {OPENAI_KEY}\n"
)
NOW_NS = str(time.time_ns())


def attributes(values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"key": key, "value": {"stringValue": value}} for key, value in values.items()]


def resource() -> dict[str, Any]:
    return {"attributes": attributes({"service.name": SERVICE})}


def span(trace_id: str, status: dict[str, Any], **fields: Any) -> dict[str, Any]:
    ids = {"traceId": trace_id, "spanId": trace_id[:16], "name": "chat gpt-4o-mini", "kind": 3}
    return {**ids, "startTimeUnixNano": NOW_NS, "endTimeUnixNano": NOW_NS, "status": status, **fields}


def traces_payload() -> dict[str, Any]:
    """Two traces: a failed call whose texts carry secrets, and a successful one."""
    exception = {
        "exception.type": "openai.AuthenticationError",
        "exception.message": f"Incorrect API key provided: {OPENAI_KEY}",
        "exception.stacktrace": STACKTRACE,
    }
    failed = span(
        ERROR_TRACE_ID,
        {"code": 2, "message": f"AuthenticationError: key {OPENAI_KEY} rejected"},
        attributes=attributes(
            {
                **CALL_ATTRIBUTES,
                "aitrack.error.message": f"Incorrect API key provided: {OPENAI_KEY} (Bearer {BEARER_TOKEN})",
                "url.full": f"https://provider.invalid/v1/chat?api_key={QUERY_KEY}&stream=false",
            }
        ),
        events=[{"name": "exception", "timeUnixNano": NOW_NS, "attributes": attributes(exception)}],
    )
    succeeded = span(OK_TRACE_ID, {"code": 1})
    scope = {"scope": {"name": "otel_aitrack"}, "spans": [failed, succeeded]}
    return {"resourceSpans": [{"resource": resource(), "scopeSpans": [scope]}]}


def point(attrs: dict[str, str], **value: Any) -> dict[str, Any]:
    return {"startTimeUnixNano": NOW_NS, "timeUnixNano": NOW_NS, "attributes": attributes(attrs), **value}


def metric(name: str, unit: str, kind: str, data_point: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"dataPoints": [data_point]}
    if kind != "gauge":
        data["aggregationTemporality"] = 2  # cumulative, as the SDK exports by default
    if kind == "sum":
        data["isMonotonic"] = True
    return {"name": name, "unit": unit, kind: data}


def metrics_payload() -> dict[str, Any]:
    """One data point for every metric of the telemetry contract, named and with units as exported."""
    exemplar = {
        "asInt": "1",
        "timeUnixNano": NOW_NS,
        "traceId": ERROR_TRACE_ID,
        "spanId": ERROR_TRACE_ID[:16],
    }
    histogram = {"count": "1", "sum": 0.5, "bucketCounts": ["0", "1"], "explicitBounds": [0.25]}
    last_failure = point(FAILURE_ATTRIBUTES, asDouble=1764000000.5)
    metrics = [
        metric("aitrack.calls", "{call}", "sum", point(CALL_ATTRIBUTES, asInt="3", exemplars=[exemplar])),
        metric("aitrack.consecutive_failures", "{call}", "gauge", point(FAILURE_ATTRIBUTES, asInt="2")),
        metric("aitrack.last_failure.timestamp", "s", "gauge", last_failure),
        metric("gen_ai.client.operation.duration", "s", "histogram", point(CALL_ATTRIBUTES, **histogram)),
        metric("gen_ai.client.token.usage", "{token}", "histogram", point(FAILURE_ATTRIBUTES, **histogram)),
        metric("aitrack.instrumentation.errors", "{error}", "sum", point({}, asInt="1")),
    ]
    scope = {"scope": {"name": "otel_aitrack"}, "metrics": metrics}
    return {"resourceMetrics": [{"resource": resource(), "scopeMetrics": [scope]}]}


class Sample:
    def __init__(self, labels: dict[str, str], value: float) -> None:
        self.labels, self.value = labels, value


def samples(text: str, name: str) -> list[Sample]:
    """The samples of one metric in Prometheus text format: `name{a="x",b="y"} value`."""
    found = []
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) + 1 :].rsplit("} ", 1)
            label_pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels)
            found.append(Sample(dict(label_pairs), float(value.split()[0])))
    return found
