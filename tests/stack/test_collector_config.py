"""The collector: its builder manifest agrees with its configurations (config.yaml, and the scale-out tiers'
agent.yaml and gateway.yaml), and the built binary keeps config.yaml's promises.

The live tests start `otelcol-aitrack` (built by collector/build.sh; another path in AITRACK_OTELCOL) on free
loopback ports, with Tempo replaced by a small OTLP/HTTP sink that keeps what the collector exports (both
from tests/stack/stack_support.py).
Test dependencies: pytest, pyyaml, opentelemetry-proto.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.stack.stack_support import (
    COLLECTOR_CONFIG,
    COLLECTOR_DIR,
    RunningCollector,
    otelcol_binary,
    running_collector,
    running_sink,
    samples,
)

pytestmark = pytest.mark.stack

CONFIG = COLLECTOR_CONFIG
AGENT, AGENT_DNS, GATEWAY = (
    COLLECTOR_DIR / name for name in ("agent.yaml", "agent-dns.yaml", "gateway.yaml")
)
# Every configuration the collector runs alone; agent-dns.yaml is an overlay of agent.yaml.
CONFIGS = (CONFIG, AGENT, GATEWAY)
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


def types_all_configs_use() -> dict[str, set[str]]:
    used = [types_of(used_ids(load_yaml(path))) for path in CONFIGS]
    return {kind: set().union(*(types[kind] for types in used)) for kind in KINDS}


def module_of(kind: str, component_type: str) -> str:
    """The Go module's last path element: `memory_limiter` is built from `memorylimiterprocessor`."""
    return component_type.replace("_", "") + KINDS[kind]


def gomod(entry: dict[str, str]) -> tuple[str, str]:
    path, version = entry["gomod"].split()
    return path.rsplit("/", 1)[-1], version


def run_otelcol(*args: str) -> str:
    result = subprocess.run(
        [otelcol_binary(), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# --- The manifest and the config agree ------------------------------------------------------------------


def test_manifest_builds_exactly_the_components_the_configs_use() -> None:
    used = types_all_configs_use()
    wanted = {kind: {module_of(kind, name) for name in names} for kind, names in used.items()}
    manifest = load_yaml(MANIFEST)
    built = {kind: {gomod(entry)[0] for entry in manifest.get(kind, [])} for kind in KINDS}
    assert built == wanted
    assert not manifest.get("connectors")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_config_defines_no_component_it_does_not_use(path: Path) -> None:
    config = load_yaml(path)
    defined = {kind: set(config.get(kind, {})) for kind in KINDS}
    assert defined == used_ids(config)


def test_every_component_is_pinned_to_one_collector_release() -> None:
    manifest = load_yaml(MANIFEST)
    versions = {gomod(entry)[1] for kind in KINDS for entry in manifest[kind]}
    assert versions == {f"v{manifest['dist']['version']}"}
    # The stable (v1) modules of that same release move together too.
    assert len({gomod(entry)[1] for entry in manifest["providers"]}) == 1


def redaction_groups(path: Path) -> list[dict[str, Any]]:
    return list(load_yaml(path)["processors"]["transform/redact_secrets"]["trace_statements"])


def test_secret_pattern_is_the_same_in_every_redaction_statement_of_every_config() -> None:
    patterns = set()
    for path in CONFIGS:
        groups = redaction_groups(path)
        statements = [statement for group in groups for statement in group["statements"]]
        patterns |= {
            pattern for statement in statements for pattern in re.findall(r'"(\(\?i\)\S+)", "', statement)
        }
        assert {group["context"] for group in groups} == {"resource", "span", "spanevent"}, path.name
        assert len(statements) == 4, path.name
    assert len(patterns) == 1


def test_agent_and_gateway_redact_exactly_as_config_does() -> None:
    for path in (AGENT, GATEWAY):
        assert redaction_groups(path) == redaction_groups(CONFIG), path.name


def test_gateway_samples_with_the_policies_of_config() -> None:
    single, gateway = (load_yaml(path)["processors"]["tail_sampling"] for path in (CONFIG, GATEWAY))
    assert gateway["policies"] == single["policies"]
    assert gateway["decision_wait"] == single["decision_wait"]


def test_every_environment_variable_of_the_configs_is_documented() -> None:
    readme = (COLLECTOR_DIR / "README.md").read_text()
    for path in (*CONFIGS, AGENT_DNS):
        for name in set(re.findall(r"\$\{env:(AITRACK_\w+)", path.read_text())):
            assert f"`{name}`" in readme, f"{path.name}: {name} is not in collector/README.md"


# --- The built collector --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "paths",
    [(CONFIG,), (AGENT,), (AGENT, AGENT_DNS), (GATEWAY,)],
    ids=lambda paths: "+".join(p.name for p in paths),
)
def test_built_collector_validates_the_config(paths: tuple[Path, ...]) -> None:
    run_otelcol("validate", *(f"--config={path}" for path in paths))


def test_built_collector_has_exactly_the_components_the_configs_use() -> None:
    listed = yaml.safe_load(run_otelcol("components"))
    built = {kind: {entry["name"] for entry in listed.get(kind) or []} for kind in KINDS}
    assert built == types_all_configs_use()
    assert not listed.get("connectors")


# --- Live: a trace and metrics through the running collector --------------------------------------------


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    workdir = tmp_path_factory.mktemp("collector")
    with (
        running_sink() as sink,
        running_collector(
            sink, workdir, AITRACK_TRACE_SAMPLE_PERCENT="0", AITRACK_TRACE_DECISION_WAIT="1s"
        ) as running,
    ):
        running.post_json("/v1/traces", traces_payload())
        running.post_json("/v1/metrics", metrics_payload())
        yield running


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
    exported = collector.sink.exported()
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


# --- Payloads --------------------------------------------------------------------------------------------

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
