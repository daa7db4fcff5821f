"""End to end: an application's failed AI calls, from the openai SDK to the numbers on the dashboard.

The application (tests/stack/e2e_app.py, in a process of its own) calls a fake OpenAI server through the
real openai SDK under `track()`, instrumented by otel_aitrack and exporting over OTLP/HTTP to the built
collector (collector/config.yaml on free loopback ports). A real Prometheus scrapes the collector every
second with the job of backends/prometheus/prometheus.yml; a small OTLP/HTTP sink stands in for Tempo.
Then the dashboard's and the alerts' PromQL, imported from otel_aitrack/stack/promql.py, runs on what arrived.

Every wait is bounded: the application gets APP_SECONDS, and all the polling of this module together
ASSERT_SECONDS. Every process is stopped at the end, whatever happened.
Test dependencies: pytest, pyyaml, opentelemetry-proto, opentelemetry-sdk,
opentelemetry-exporter-otlp-proto-http, openai.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from otel_aitrack.stack import promql
from tests.stack import e2e_app as app
from tests.stack.stack_queries import project_prometheus_config
from tests.stack.stack_support import (
    REPO,
    RunningCollector,
    poll,
    prometheus_query,
    running_collector,
    running_prometheus,
    running_sink,
    values,
)

pytestmark = pytest.mark.stack

APP_SECONDS = 60
ASSERT_SECONDS = 60
SCRAPE_INTERVAL = "1s"

SERVICE = app.SERVICE_NAME
SUMMARIZE, CLASSIFY = app.SUMMARIZE, app.CLASSIFY
CALLS = {prompt: len(answers) for prompt, answers in app.PLAN.items()}  # summarize 5, classify 3
FAILED = {SUMMARIZE: 2, CLASSIFY: 3}
ERROR_TYPES = {(SUMMARIZE, "NotFoundError"): 2, (CLASSIFY, "AuthenticationError"): 3}


@dataclass
class Stack:
    collector: RunningCollector
    prometheus: str
    instance_id: str
    app_output: dict[str, Any]
    app_ran: tuple[float, float]  # unix seconds: start and end of the application
    deadline: float  # monotonic: the end of this module's polling budget

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


def scrape_config(collector: RunningCollector) -> str:
    """backends/prometheus/prometheus.yml, pointed at this collector's loopback ports, every second."""
    targets = {"aitrack": "prometheus", "otel-collector": "own_metrics"}
    ports = {job: f"127.0.0.1:{collector.ports[port]}" for job, port in targets.items()}
    return project_prometheus_config(ports, SCRAPE_INTERVAL)


def run_app(collector: RunningCollector, instance_id: str) -> dict[str, Any]:
    # A clean environment for the SDK: no OTEL_* setting of the machine running the tests leaks in.
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env["OTEL_AITRACK_STRICT"] = "1"  # an internal error of otel_aitrack fails the application
    args = [sys.executable, "-m", "tests.stack.e2e_app", collector.url("otlp_http"), instance_id]
    try:
        done = subprocess.run(
            args, cwd=REPO, env=env, capture_output=True, text=True, timeout=APP_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as timeout:  # subprocess.run has killed it
        pytest.fail(f"the application ran over {APP_SECONDS}s:\n{timeout.stderr!r}")
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("end-to-end")
    with (
        running_sink() as sink,
        # 0 %: only traces with an error reach Tempo; decided 1 s after their last span.
        running_collector(
            sink, workdir, AITRACK_TRACE_SAMPLE_PERCENT="0", AITRACK_TRACE_DECISION_WAIT="1s"
        ) as collector,
        # As backends/prometheus/prometheus.yml says Prometheus must run: with exemplar storage.
        running_prometheus(workdir, scrape_config(collector), "--enable-feature=exemplar-storage") as base,
    ):
        instance_id = str(uuid.uuid4())
        started = time.time()
        output = run_app(collector, instance_id)
        ran = (started, time.time())
        yield Stack(collector, base, instance_id, output, ran, time.monotonic() + ASSERT_SECONDS)


# --- Reading results --------------------------------------------------------------------------------
def settled(stack: Stack, expr: str, expected: Mapping[Any, float], *labels: str) -> dict[Any, float]:
    """The query's values once they equal `expected` (polled within the module's budget), else the last."""
    seen: dict[Any, float] = {}

    def arrived() -> bool:
        seen.clear()
        seen.update(values(prometheus_query(stack.prometheus, expr), *labels))
        return seen == pytest.approx(expected)

    poll(arrived, stack.remaining())
    return seen


def dashboard_expr(expression: Callable[[promql.Filters], str]) -> str:
    """A panel's PromQL as Grafana sends it with this service picked and "All" elsewhere."""
    chosen = {"service": SERVICE, "provider": ".*", "model": ".*", "prompt_type": ".*"}
    return re.sub(r"\$(\w+)", lambda m: chosen[m.group(1)], expression(promql.DASHBOARD))


def failed_spans(stack: Stack) -> list[Span]:
    """The spans at the Tempo sink, once the application's failed calls have all arrived."""

    def all_arrived() -> list[Span] | None:
        spans = stack.collector.sink.spans()
        return spans if len(spans) >= sum(FAILED.values()) else None

    return poll(all_arrived, stack.remaining()) or stack.collector.sink.spans()


def attributes(item: Span | Span.Event) -> dict[str, Any]:
    """A span's or span event's attributes as Python values (all those read here are scalars)."""
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in item.attributes}


# --- The application ran as planned -----------------------------------------------------------------
def test_the_application_saw_the_planned_failures(stack: Stack) -> None:
    assert stack.app_output["raised"] == {
        SUMMARIZE: ["NotFoundError", "NotFoundError"],
        CLASSIFY: ["AuthenticationError"] * 3,
    }
    summarize = {"total_calls": 5, "total_failed_calls": 2, "consecutive_failures": 0}
    classify = {"total_calls": 3, "total_failed_calls": 3, "consecutive_failures": 3}
    assert stack.app_output["stats"] == {
        SUMMARIZE: {**summarize, "last_error_code": "NotFoundError"},
        CLASSIFY: {**classify, "last_error_code": "AuthenticationError"},
    }


# --- Prometheus -------------------------------------------------------------------------------------
def test_prometheus_counts_every_call_and_failure_per_prompt_type(stack: Stack) -> None:
    calls = f'sum by (gen_ai_prompt_name) ({promql.CALLS}{{job="{SERVICE}"}})'
    assert settled(stack, calls, CALLS, promql.PROMPT) == CALLS
    failed = f"sum by (gen_ai_prompt_name, error_type) ({promql.CALLS}{{{promql.FAILED}}})"
    assert settled(stack, failed, ERROR_TYPES, promql.PROMPT, promql.ERROR_TYPE) == ERROR_TYPES


def test_series_carry_service_name_as_job_and_instance_id_as_instance(stack: Stack) -> None:
    settled(stack, f"sum by (gen_ai_prompt_name) ({promql.CALLS})", CALLS, promql.PROMPT)
    series = prometheus_query(stack.prometheus, promql.CALLS)
    assert {(s["metric"]["job"], s["metric"]["instance"]) for s in series} == {(SERVICE, stack.instance_id)}
    assert not any("service_name" in s["metric"] for s in series)
    # The other resource attributes are on target_info, under the same job and instance.
    (info,) = prometheus_query(stack.prometheus, f'target_info{{job="{SERVICE}"}}')
    assert info["metric"]["instance"] == stack.instance_id
    assert info["metric"]["telemetry_sdk_language"] == "python"


def test_consecutive_failures_and_last_failure_time_reach_prometheus(stack: Stack) -> None:
    expected = {SUMMARIZE: 0, CLASSIFY: 3}
    assert settled(stack, promql.CONSECUTIVE_FAILURES, expected, promql.PROMPT) == expected
    last_failure = values(prometheus_query(stack.prometheus, promql.LAST_FAILURE_TIMESTAMP), promql.PROMPT)
    assert set(last_failure) == {SUMMARIZE, CLASSIFY}
    started, ended = stack.app_ran
    assert all(started - 1 <= at <= ended + 1 for at in last_failure.values()), (last_failure, stack.app_ran)


def test_duration_histogram_counts_every_call(stack: Stack) -> None:
    count = "sum by (gen_ai_prompt_name) (gen_ai_client_operation_duration_seconds_count)"
    assert settled(stack, count, CALLS, promql.PROMPT) == CALLS


# --- The dashboard and the alerts, on live data -----------------------------------------------------
def test_dashboard_failure_rate_is_failed_over_all_calls(stack: Stack) -> None:
    calls = {(SERVICE, prompt): count for prompt, count in CALLS.items()}
    ratios = {(SERVICE, prompt): FAILED[prompt] / count for prompt, count in CALLS.items()}
    assert settled(stack, dashboard_expr(promql.calls), calls, *promql.PROMPT_KEY) == calls
    # summarize_ticket 0.4, classify_email 1.0: the table's and the graph's expression.
    found = settled(stack, dashboard_expr(promql.failure_ratio), ratios, *promql.PROMPT_KEY)
    assert found == pytest.approx(ratios)


def test_alert_expressions_pick_the_failing_prompt_types(stack: Stack) -> None:
    # 2 of 5 summarize_ticket calls failed: the warning band, and the 5-call minimum is met.
    warning = {(SERVICE, SUMMARIZE): 0.4}
    found = settled(stack, promql.failure_ratio_warning(promql.ALERTS), warning, *promql.PROMPT_KEY)
    assert found == pytest.approx(warning)
    # classify_email failed 3 of 3 calls (100 %), but that is below the ratio alerts' minimum traffic...
    assert prometheus_query(stack.prometheus, promql.failure_ratio_critical(promql.ALERTS)) == []
    # ...and the consecutive-failures alert needs no minimum.
    consecutive = {(SERVICE, CLASSIFY): promql.CONSECUTIVE_FAILURES_THRESHOLD}
    found = settled(stack, promql.consecutive_failures_alert(promql.ALERTS), consecutive, *promql.PROMPT_KEY)
    assert found == consecutive


# --- Tempo's stand-in -------------------------------------------------------------------------------
def test_every_failed_call_reaches_tempo_as_an_error_span_with_its_call_site(stack: Stack) -> None:
    spans = failed_spans(stack)
    prompts = sorted(attributes(span)["gen_ai.prompt.name"] for span in spans)
    assert prompts == sorted([SUMMARIZE] * FAILED[SUMMARIZE] + [CLASSIFY] * FAILED[CLASSIFY])  # no ok call
    for span in spans:
        found = attributes(span)
        prompt = found["gen_ai.prompt.name"]
        assert span.status.code == Status.STATUS_CODE_ERROR
        assert (prompt, found["error.type"]) in ERROR_TYPES
        traceback = found["aitrack.error.traceback"]
        assert traceback.startswith("Traceback (most recent call last):")
        assert f"in {app.CALL_SITES[prompt].__name__}\n" in traceback  # the application's call site
        assert re.search(r"openai\.\w+Error: Error code: 40[14]", traceback)
        (event,) = span.events  # the exception, the semantic-convention way
        assert event.name == "exception"
        assert attributes(event)["exception.stacktrace"] == traceback


def test_the_api_key_is_never_exported(stack: Stack) -> None:
    spans = failed_spans(stack)
    messages = [attributes(s)["aitrack.error.message"] for s in spans]
    # The provider's 401 message quotes the key: it was exported, masked.
    assert sum("Incorrect API key provided: [REDACTED]" in m for m in messages) == FAILED[CLASSIFY]
    exported = stack.collector.sink.exported()
    scraped = stack.collector.get("prometheus", "/metrics").encode()
    for secret in (app.API_KEY.encode(), app.SECRET_MARKER):
        assert secret not in exported
        assert secret not in scraped
