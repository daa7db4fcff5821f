"""Traces for the scale-out tests, made by the real OpenTelemetry SDK and exported over OTLP/HTTP.

Each trace is a root span and a few children; some traces have one failed span, at a random place in the
trace. Ids and the plan come from seeded generators, so a test sends the same traces every run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Status, StatusCode, Tracer

SERVICE = "aitrack-scale-out-test"
# Masked by the agent (and the gateway again): it must reach no trace store.
SECRET = "sk-proj-SCALEOUTsecret1234567890"
SPANS_PER_TRACE = (3, 6)  # inclusive bounds


@dataclass(frozen=True)
class SentTrace:
    trace_id: str  # 32 hex digits, as the receivers decode it
    spans: int
    error: bool


class SeededIds(IdGenerator):
    """Ids from a seeded generator: the same ids, hence the same sampling decisions, every run."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self.random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self.random.getrandbits(128) or 1


def one_trace(tracer: Tracer, spans: int, failing: int | None) -> SentTrace:
    """A root span with `spans - 1` children; span number `failing` (0 is the root) ends in error."""
    with tracer.start_as_current_span("POST /answer") as root:
        for number in range(1, spans):
            with tracer.start_as_current_span("chat gpt-4o-mini") as child:
                if number == failing:
                    child.set_status(Status(StatusCode.ERROR, f"AuthenticationError: key {SECRET} rejected"))
        if failing == 0:
            root.set_status(Status(StatusCode.ERROR, f"AuthenticationError: key {SECRET} rejected"))
    trace_id = format(root.get_span_context().trace_id, "032x")
    return SentTrace(trace_id, spans, failing is not None)


def send_traces(endpoint: str, count: int, *, seed: int, error_share: float) -> list[SentTrace]:
    """`count` traces to the OTLP/HTTP base URL `endpoint`, each with a failed span with `error_share`
    probability; returns them once the SDK has exported every span."""
    # Imported here: the default test run collects this module without the exporter installed.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    plan = random.Random(seed)
    provider = TracerProvider(
        resource=Resource.create({"service.name": SERVICE}), id_generator=SeededIds(seed)
    )
    exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=8192, schedule_delay_millis=100))
    tracer = provider.get_tracer("tests.stack.traffic")
    sent = []
    for _ in range(count):
        spans = plan.randint(*SPANS_PER_TRACE)
        failing = plan.randrange(spans) if plan.random() < error_share else None
        sent.append(one_trace(tracer, spans, failing))
    try:
        assert provider.force_flush(timeout_millis=30_000), "the SDK could not export every span in 30 s"
    finally:
        provider.shutdown()
    return sent
