"""Added latency per call of otel-aitrack versus the uninstrumented openai SDK, on loopback.

Runs the real openai SDK against the fake OpenAI server (in a separate process, on 127.0.0.1). The
instrumentation stays on; short blocks of calls through the instrumented method alternate with blocks
through the SDK's original method (the wrapper's `__wrapped__`), so that machine noise hits both
alike, and the added time is the median of the per-block differences. Success path and failure path
(404 with its full traceback). Two clocks:

- wall: what the calling code waits. The histogram measurements are recorded by otel-aitrack's
  hand-off thread while the caller waits on the network (see otel_aitrack/handoff.py);
- CPU: this whole process, the hand-off thread, the span batch processor and a final drain of the
  hand-off included, so no work escapes the count.

The SDK is set up as in production: spans through a BatchSpanProcessor (export discarded), metrics
through a PeriodicExportingMetricReader (export discarded). With `--official`, the same is measured
for OpenTelemetry's own OpenAI instrumentation, when it is installed, as a yardstick of this machine.

    python benchmarks/overhead.py [--blocks 300] [--calls 20] [--official]

Targets: <= 50 us per successful call, <= 150 us per failed call with traceback (wall).
A benchmark, not a test: numbers on shared machines are noisy; read the spread column.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import multiprocessing
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
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
from tests.fakes.openai_server import FakeOpenAI

_CHAT_MODULE = "openai.resources.chat.completions"
MESSAGES = [{"role": "user", "content": "hi"}]
# OpenTelemetry's own OpenAI instrumentation: its current module, then its earlier name.
OFFICIAL = ("opentelemetry.instrumentation.genai.openai", "opentelemetry.instrumentation.openai_v2")


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
class Scenario:
    label: str
    model: str
    target: int


PATHS = (
    Scenario("success (chat.completions.create)", "gpt-4o-mini", 50),
    Scenario("failure (404, full traceback)", "not_found", 150),
)


def one_call(create: Callable[..., Any], completions: Any, model: str) -> None:
    try:
        create(completions, model=model, messages=MESSAGES)
    except openai.NotFoundError:
        pass


def timed_block(create: Callable[..., Any], completions: Any, model: str, calls: int) -> tuple[float, float]:
    """Wall and CPU seconds of `calls` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        one_call(create, completions, model)
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(
    client: openai.OpenAI, path: Scenario, blocks: int, calls: int, drain: Callable[[], None]
) -> list[float]:
    """Median baseline per call, then median added wall and CPU per call with their IQRs, in us."""
    completions = client.chat.completions
    instrumented = type(completions).create  # the wrapt wrapper, called unbound as the SDK's method
    original = instrumented.__wrapped__
    for create in (original, instrumented):  # warm-up: connection pool, caches, first measurements
        timed_block(create, completions, path.model, calls * 5)
    baselines, added_wall, added_cpu = [], [], []
    for _ in range(blocks):
        base_wall, base_cpu = timed_block(original, completions, path.model, calls)
        wall, cpu = timed_block(instrumented, completions, path.model, calls)
        cpu_start = time.process_time()
        drain()  # whatever the hand-off thread has not recorded yet is charged to this block's CPU
        cpu += time.process_time() - cpu_start
        baselines.append(base_wall / calls * 1e6)
        added_wall.append((wall - base_wall) / calls * 1e6)
        added_cpu.append((cpu - base_cpu) / calls * 1e6)
    return [statistics.median(baselines), *_median_and_spread(added_wall), *_median_and_spread(added_cpu)]


def _median_and_spread(values: list[float]) -> tuple[float, float]:
    quartiles = statistics.quantiles(values, n=4)
    return statistics.median(values), quartiles[2] - quartiles[0]


@contextlib.contextmanager
def providers() -> Iterator[tuple[TracerProvider, MeterProvider]]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(DiscardingSpanExporter()))
    reader = PeriodicExportingMetricReader(DiscardingMetricExporter(), export_interval_millis=5_000)
    meter_provider = MeterProvider(metric_readers=[reader])
    try:
        yield tracer_provider, meter_provider
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()


def run_ours(client: openai.OpenAI, options: argparse.Namespace) -> list[tuple[Scenario, list[float]]]:
    rows = []
    with providers() as (tracer_provider, meter_provider):
        instrumentor = otel_aitrack.AITrackInstrumentor()
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        active = runtime.active()
        assert active is not None
        try:
            with otel_aitrack.track("benchmark"):
                for path in PATHS:
                    rows.append(
                        (
                            path,
                            measure(
                                client, path, options.blocks, options.calls, active.instruments.handoff.drain
                            ),
                        )
                    )
        finally:
            instrumentor.uninstrument()
    return rows


def run_floor(client: openai.OpenAI, options: argparse.Namespace) -> list[tuple[Scenario, list[float]]]:
    """The least any one-span-per-call instrumentation pays: one bare span, current while the SDK runs."""
    rows = []
    with providers() as (tracer_provider, _):
        tracer = tracer_provider.get_tracer("floor")

        def bare_span(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
            with tracer.start_as_current_span(
                "chat", kind=SpanKind.CLIENT, record_exception=False, set_status_on_exception=False
            ):
                return wrapped(*args, **kwargs)

        wrap_function_wrapper(_CHAT_MODULE, "Completions.create", bare_span)
        try:
            for path in PATHS:
                rows.append((path, measure(client, path, options.blocks, options.calls, lambda: None)))
        finally:
            unwrap(importlib.import_module(_CHAT_MODULE).Completions, "create")
    return rows


def run_official(client: openai.OpenAI, options: argparse.Namespace) -> list[tuple[Scenario, list[float]]]:
    module = _import_first(OFFICIAL)
    rows = []
    with providers() as (tracer_provider, meter_provider):
        instrumentor = module.OpenAIInstrumentor()
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        try:
            for path in PATHS:
                rows.append((path, measure(client, path, options.blocks, options.calls, lambda: None)))
        finally:
            instrumentor.uninstrument()
    return rows


def _import_first(modules: Sequence[str]) -> Any:
    for name in modules[:-1]:
        with contextlib.suppress(ImportError):
            return importlib.import_module(name)
    return importlib.import_module(modules[-1])


def calibration_us() -> tuple[float, float]:
    """What this machine charges right now for one SDK span (start+end) and one histogram record."""
    tracer = TracerProvider().get_tracer("calibration")
    histogram = (
        MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("calibration").create_histogram("h")
    )
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "server.port": 443}
    span = timeit.timeit(
        lambda: tracer.start_span("chat gpt-4o-mini", attributes=attributes).end(), number=5000
    )
    record = timeit.timeit(lambda: histogram.record(0.5, attributes), number=5000)
    return span / 5000 * 1e6, record / 5000 * 1e6


def serve(port_pipe: Connection) -> None:
    """The fake provider in its own process, so that its work is not on this process's clocks."""
    with FakeOpenAI() as fake:
        port_pipe.send(fake.port)
        port_pipe.recv()  # until the benchmark is done


def print_rows(who: str, rows: list[tuple[Scenario, list[float]]]) -> None:
    for path, (base, wall, wall_iqr, cpu, cpu_iqr) in rows:
        added = f"{wall:.1f} us ({wall_iqr:.1f}) | {cpu:.1f} us ({cpu_iqr:.1f})"
        print(f"| {who} | {path.label} | {base:.0f} us | {added} | {path.target} us |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=300, help="block pairs per path")
    parser.add_argument("--calls", type=int, default=20, help="calls per block")
    parser.add_argument(
        "--official", action="store_true", help="also measure OpenTelemetry's own OpenAI instrumentation"
    )
    options = parser.parse_args()
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(theirs,), daemon=True)
    server.start()
    port = ours.recv()
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-proj-benchmark000000", max_retries=0
    )
    print(
        f"openai {openai.__version__}, Python {sys.version.split()[0]}, {options.blocks} block pairs x "
        f"{options.calls} calls per path, fake server in another process on loopback\n"
    )
    print(
        "| instrumentation | path | uninstrumented (wall) | added, wall (IQR) | added, CPU (IQR) | target |"
    )
    print("|---|---|---|---|---|---|")
    print_rows("floor: one bare span", run_floor(client, options))
    print_rows("otel-aitrack", run_ours(client, options))
    if options.official:
        try:
            print_rows("official (OTel genai-openai)", run_official(client, options))
        except ImportError as error:
            print(f"(OpenTelemetry's OpenAI instrumentation could not be imported, not measured: {error})")
    span, record = calibration_us()
    print(
        f"\ncalibration, same machine and moment: one OTel SDK span start+end = {span:.1f} us, "
        f"one histogram record = {record:.1f} us"
    )
    ours.send("done")
    server.join(timeout=5)


if __name__ == "__main__":
    main()
