"""What the benchmarks compare: the openai SDK uninstrumented, the floor, otel-aitrack and its peers.

Each configuration instruments the SDK into OTel SDK providers set up as in production (spans through
a BatchSpanProcessor, metrics through a PeriodicExportingMetricReader; the exports discarded unless an
exporter is given) and yields a `flush()`: the per-call work still waiting in background threads
(span exports, otel-aitrack's histogram hand-off) done now, so that a measurement can include it.

A peer patches the SDK for the life of its process (OpenLLMetry's `uninstrument()` removes nothing):
the instruction benchmark runs each configuration in a process of its own.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind
from wrapt import wrap_function_wrapper

import otel_aitrack
from otel_aitrack import runtime

CHAT_MODULE = "openai.resources.chat.completions"
Create = Callable[..., Any]
Flush = Callable[[], None]


class DiscardingSpanExporter(SpanExporter):
    """Export costs nothing here: the batch processor's hand-off is what the app pays."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class DiscardingMetricExporter(MetricExporter):
    def __init__(self) -> None:
        super().__init__()

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


@dataclass
class Export:
    """Where the telemetry goes and how often: discarded, every 5 s, unless told otherwise."""

    spans: Callable[[], SpanExporter] = DiscardingSpanExporter
    metrics: Callable[[], MetricExporter] = DiscardingMetricExporter
    metric_interval_millis: float = 5_000
    span_delay_millis: float | None = None  # the BatchSpanProcessor's default (5 s)
    shutdown: bool = True  # False: leave the providers running (a process about to exit)


@contextlib.contextmanager
def providers(export: Export) -> Iterator[tuple[TracerProvider, MeterProvider]]:
    tracer_provider = TracerProvider()
    processor = BatchSpanProcessor(export.spans(), schedule_delay_millis=export.span_delay_millis)
    tracer_provider.add_span_processor(processor)
    reader = PeriodicExportingMetricReader(
        export.metrics(), export_interval_millis=export.metric_interval_millis
    )
    meter_provider = MeterProvider(metric_readers=[reader])
    try:
        yield tracer_provider, meter_provider
    finally:
        if export.shutdown:
            tracer_provider.shutdown()
            meter_provider.shutdown()


# --- the configurations: each instruments the given providers and yields its own pending work's flush


def nothing() -> None:
    return None


@contextlib.contextmanager
def bare(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> Iterator[Flush]:
    """The SDK uninstrumented (the providers exist, unused): what every other figure is compared to."""
    yield nothing


@contextlib.contextmanager
def floor(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> Iterator[Flush]:
    """The least any one-span-per-call instrumentation pays: one bare span, current while the SDK runs
    (for a stream: until the SDK returns it)."""
    tracer = tracer_provider.get_tracer("floor")

    def bare_span(wrapped: Create, instance: Any, args: Any, kwargs: Any) -> Any:
        with tracer.start_as_current_span(
            "chat", kind=SpanKind.CLIENT, record_exception=False, set_status_on_exception=False
        ):
            return wrapped(*args, **kwargs)

    wrap_function_wrapper(CHAT_MODULE, "Completions.create", bare_span)
    try:
        yield nothing
    finally:
        unwrap(importlib.import_module(CHAT_MODULE).Completions, "create")


@contextlib.contextmanager
def ours(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> Iterator[Flush]:
    """otel-aitrack with its defaults, inside a `track()` block; its flush drains the hand-off."""
    instrumentor = otel_aitrack.AITrackInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    active = runtime.active()
    assert active is not None
    try:
        with otel_aitrack.track("benchmark"):
            yield active.instruments.handoff.drain
    finally:
        instrumentor.uninstrument()


@dataclass(frozen=True)
class Peer:
    """Another OpenAI instrumentation, used with its defaults."""

    label: str
    distribution: str  # what pip installs
    modules: tuple[str, ...]  # its instrumentor's module: the current name first
    metrics: bool  # whether its instrument() takes a meter provider

    def instrumentor(self) -> Any:
        for name in self.modules[:-1]:
            with contextlib.suppress(ImportError):
                return importlib.import_module(name).OpenAIInstrumentor()
        return importlib.import_module(self.modules[-1]).OpenAIInstrumentor()

    @contextlib.contextmanager
    def setup(self, tracer_provider: TracerProvider, meter_provider: MeterProvider) -> Iterator[Flush]:
        instrumentor = self.instrumentor()
        keywords: dict[str, Any] = {"tracer_provider": tracer_provider}
        if self.metrics:
            keywords["meter_provider"] = meter_provider
        instrumentor.instrument(**keywords)
        try:
            yield nothing
        finally:
            with contextlib.suppress(Exception):  # a peer that cannot undo itself: the process ends anyway
                instrumentor.uninstrument()


GENAI_OPENAI = Peer(
    "OTel genai-openai",
    "opentelemetry-instrumentation-genai-openai",
    ("opentelemetry.instrumentation.genai.openai", "opentelemetry.instrumentation.openai_v2"),
    metrics=True,
)
OPENINFERENCE = Peer(
    "OpenInference",
    "openinference-instrumentation-openai",
    ("openinference.instrumentation.openai",),
    metrics=False,  # traces only
)
OPENLLMETRY = Peer(
    "OpenLLMetry",
    "opentelemetry-instrumentation-openai",
    ("opentelemetry.instrumentation.openai",),
    metrics=True,
)
PEERS = (GENAI_OPENAI, OPENINFERENCE, OPENLLMETRY)

Setup = Callable[[TracerProvider, MeterProvider], contextlib.AbstractContextManager[Flush]]
SETUPS: dict[str, Setup] = {
    "bare": bare,
    "floor": floor,
    "otel-aitrack": ours,
    **{peer.label: peer.setup for peer in PEERS},
}


@contextlib.contextmanager
def configured(name: str, export: Export | None = None) -> Iterator[Flush]:
    """The configuration `name` over fresh providers; yields the flush of all its pending work."""
    with contextlib.ExitStack() as stack:
        tracer_provider, meter_provider = stack.enter_context(providers(export or Export()))
        own_flush = stack.enter_context(SETUPS[name](tracer_provider, meter_provider))

        def flush() -> None:
            own_flush()
            tracer_provider.force_flush()

        yield flush
