"""The application of tests/stack/test_end_to_end.py, run in a process of its own:

    python -m tests.stack.e2e_app <collector OTLP/HTTP base URL> <service.instance.id> [<plan as JSON>]

It sets up the OpenTelemetry SDK as an application would (OTLP/HTTP exporters for traces and metrics,
pointed at the collector), instruments with `AITrackInstrumentor().instrument()` and calls a fake
OpenAI server through the real openai SDK under `otel_aitrack.track()`: PLAN (or the plan given, the same
shape in JSON: tests/stack/test_scale_out_metrics.py runs several workers with plans of their own) says
what the fake answers to each call. Its own process keeps the global OTel providers of the test process
untouched. It prints one JSON line: the errors the calls raised and figures of `otel_aitrack.stats()`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence

import openai
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import otel_aitrack
from tests.fakes.openai_server import FakeOpenAI

SERVICE_NAME = "aitrack-e2e-app"
# The fake's `unauthorized` answer echoes the key in its error message, as OpenAI does.
API_KEY = "sk-proj-E2ESECRETq7Xm2vL9pR4tK8wZ3nB6cY1dF5gH0jAe"
SECRET_MARKER = b"E2ESECRET"
SUMMARIZE = "summarize_ticket"
CLASSIFY = "classify_email"
# Per prompt type, the fake's answer to each of its calls, in order.
PLAN = {
    SUMMARIZE: ("ok", "not_found", "ok", "not_found", "ok"),  # 5 calls, 2 failed, ends on a success
    CLASSIFY: ("unauthorized", "unauthorized", "unauthorized"),  # 3 failures in a row
}
FIGURES = ("total_calls", "total_failed_calls", "consecutive_failures", "last_error_code")
METRIC_EXPORT_MILLIS = 500
SPAN_EXPORT_DELAY_MILLIS = 200
MODEL = "gpt-4o-mini"


def summarize_support_ticket(client: openai.OpenAI, ticket: str) -> None:
    with otel_aitrack.track(SUMMARIZE, task="summarize a support ticket"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": ticket}])


def classify_incoming_email(client: openai.OpenAI, email: str) -> None:
    with otel_aitrack.track(CLASSIFY, task="route an incoming email"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": email}])


# The application's own call sites: their names must show in the exported tracebacks.
CALL_SITES: dict[str, Callable[[openai.OpenAI, str], None]] = {
    SUMMARIZE: summarize_support_ticket,
    CLASSIFY: classify_incoming_email,
}


def set_up_opentelemetry(endpoint: str, instance_id: str) -> tuple[TracerProvider, MeterProvider]:
    # Imported here: the default test run collects this module's test without the exporter installed.
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    resource = Resource.create({"service.name": SERVICE_NAME, "service.instance.id": instance_id})
    tracer_provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
    processor = BatchSpanProcessor(exporter, schedule_delay_millis=SPAN_EXPORT_DELAY_MILLIS)
    tracer_provider.add_span_processor(processor)
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics"), export_interval_millis=METRIC_EXPORT_MILLIS
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider


def make_calls(
    client: openai.OpenAI, fake: FakeOpenAI, plan: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Every call of `plan`; the error class names each prompt type's calls raised."""
    raised: dict[str, list[str]] = {prompt_type: [] for prompt_type in plan}
    for prompt_type, answers in plan.items():
        for number, answer in enumerate(answers):
            fake.plan(answer)
            try:
                CALL_SITES[prompt_type](client, f"{prompt_type} input #{number}")
            except openai.APIError as error:
                raised[prompt_type].append(type(error).__name__)
    return raised


def figures_of(stats: otel_aitrack.PromptStats) -> dict[str, object]:
    return {key: value for key, value in stats.as_dict().items() if key in FIGURES}


def main(endpoint: str, instance_id: str, plan: Mapping[str, Sequence[str]] = PLAN) -> None:
    tracer_provider, meter_provider = set_up_opentelemetry(endpoint, instance_id)
    otel_aitrack.AITrackInstrumentor().instrument()
    try:
        with FakeOpenAI() as fake:
            client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
            raised = make_calls(client, fake, plan)
        figures = {name: figures_of(stats) for name, stats in otel_aitrack.stats().items()}
    finally:
        tracer_provider.force_flush()
        meter_provider.force_flush()
        tracer_provider.shutdown()
        meter_provider.shutdown()
    print(json.dumps({"raised": raised, "stats": figures}))


if __name__ == "__main__":
    main(*sys.argv[1:3], *(json.loads(arg) for arg in sys.argv[3:4]))
