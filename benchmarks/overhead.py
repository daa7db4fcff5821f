"""Added latency per call of otel-aitrack versus the uninstrumented openai SDK, on loopback.

Runs the real openai SDK against the fake OpenAI server (in a separate process, on 127.0.0.1), with the
OpenTelemetry SDK set up as in production: spans through a BatchSpanProcessor, metrics through a
PeriodicExportingMetricReader (both exports discarded). The instrumentation stays on; each call through
the instrumented method is paired with one through the SDK's original method (the wrapper's
`__wrapped__`), in alternating order, so that machine noise hits both alike. Success path, and failure
path (404 with its full traceback). Two clocks:

- wall: what the calling code waits, per call. This machine's noise only ever adds time, so the
  added latency is the difference of the two latency distributions at their median and at their
  25th percentile (the quieter estimate). otel-aitrack's histogram measurements are recorded by its
  hand-off thread while the caller waits on the network (otel_aitrack/handoff.py);
- CPU: this whole process (the hand-off thread, the span batch processor and a final drain of the
  hand-off included, so no work escapes the count), over blocks of calls.

Beside otel-aitrack it measures, in the same run, the floor (one bare span, current while the SDK
runs: the least any one-span-per-call instrumentation pays) and, with `--official`, OpenTelemetry's
own OpenAI instrumentation, as yardsticks of this machine. `--isolated` adds a table of the
instrumentation's own work with no SDK and no network: the wrapper around a function that returns a
prepared result (or raises a prepared error), hot in the CPU caches.

    python benchmarks/overhead.py [--pairs 3000] [--blocks 100] [--official] [--isolated]

Targets: <= 50 us per successful call, <= 150 us per failed call with traceback (wall).
A benchmark, not a test: numbers on shared machines are noisy; read the spread and the floor.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
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

import httpx2 as httpx
import openai
from openai.types.chat import ChatCompletion
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
from tests.fakes.openai_server import FakeOpenAI

_CHAT_MODULE = "openai.resources.chat.completions"
MESSAGES = [{"role": "user", "content": "hi"}]
# OpenTelemetry's own OpenAI instrumentation: its current module, then its earlier name.
OFFICIAL = ("opentelemetry.instrumentation.genai.openai", "opentelemetry.instrumentation.openai_v2")
Create = Callable[..., Any]


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


@dataclass
class Row:
    """One path's figures, in microseconds."""

    base_p50: float
    added_p50: float
    added_p25: float
    spread: float  # IQR of the instrumented calls' latency
    added_cpu: float
    cpu_iqr: float


def one_call(create: Create, completions: Any, model: str) -> None:
    try:
        create(completions, model=model, messages=MESSAGES)
    except openai.NotFoundError:
        pass


def timed_call(create: Create, completions: Any, model: str) -> int:
    started = time.perf_counter_ns()
    one_call(create, completions, model)
    return time.perf_counter_ns() - started


def paired_latencies(
    original: Create, instrumented: Create, completions: Any, model: str, pairs: int
) -> tuple[list[int], list[int]]:
    """Nanoseconds per call, each instrumented call next to an original one, in alternating order."""
    base, ours = [], []
    for index in range(pairs):
        if index % 2:
            ours.append(timed_call(instrumented, completions, model))
            base.append(timed_call(original, completions, model))
        else:
            base.append(timed_call(original, completions, model))
            ours.append(timed_call(instrumented, completions, model))
    return base, ours


def block_cpu(create: Create, completions: Any, model: str, calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        one_call(create, completions, model)
    return time.process_time() - started


def added_cpu(
    original: Create,
    instrumented: Create,
    completions: Any,
    model: str,
    blocks: int,
    calls: int,
    drain: Callable[[], None],
) -> list[float]:
    """Process CPU added per call, one figure per pair of blocks, in microseconds."""
    added = []
    for _ in range(blocks):
        base = block_cpu(original, completions, model, calls)
        ours = block_cpu(instrumented, completions, model, calls)
        started = time.process_time()
        drain()  # what the hand-off thread has not recorded yet is charged to this block
        ours += time.process_time() - started
        added.append((ours - base) / calls * 1e6)
    return added


def measure(
    client: openai.OpenAI, path: Scenario, options: argparse.Namespace, drain: Callable[[], None]
) -> Row:
    completions = client.chat.completions
    instrumented = type(completions).create  # the wrapt wrapper, called unbound as the SDK's method
    original = instrumented.__wrapped__
    for create in (original, instrumented):  # warm-up: connection pool, caches, first measurements
        for _ in range(200):
            one_call(create, completions, path.model)
    drain()
    base, ours = paired_latencies(original, instrumented, completions, path.model, options.pairs)
    cpu = added_cpu(original, instrumented, completions, path.model, options.blocks, 20, drain)
    base_q, ours_q, cpu_q = _quartiles(base), _quartiles(ours), statistics.quantiles(cpu, n=4)
    return Row(
        base_p50=base_q[1] / 1e3,
        added_p50=(ours_q[1] - base_q[1]) / 1e3,
        added_p25=(ours_q[0] - base_q[0]) / 1e3,
        spread=(ours_q[2] - ours_q[0]) / 1e3,
        added_cpu=statistics.median(cpu),
        cpu_iqr=cpu_q[2] - cpu_q[0],
    )


def _quartiles(values: list[int]) -> list[float]:
    return statistics.quantiles(values, n=4)


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


def _no_drain() -> None:
    return None


@contextlib.contextmanager
def ours() -> Iterator[Callable[[], None]]:
    """otel-aitrack instrumented, inside a `track()` block; yields its hand-off's drain."""
    with providers() as (tracer_provider, meter_provider):
        instrumentor = otel_aitrack.AITrackInstrumentor()
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        active = runtime.active()
        assert active is not None
        try:
            with otel_aitrack.track("benchmark"):
                yield active.instruments.handoff.drain
        finally:
            instrumentor.uninstrument()


@contextlib.contextmanager
def floor() -> Iterator[Callable[[], None]]:
    """The least any one-span-per-call instrumentation pays: one bare span, current while the SDK runs."""
    with providers() as (tracer_provider, _):
        tracer = tracer_provider.get_tracer("floor")

        def bare_span(wrapped: Create, instance: Any, args: Any, kwargs: Any) -> Any:
            with tracer.start_as_current_span(
                "chat", kind=SpanKind.CLIENT, record_exception=False, set_status_on_exception=False
            ):
                return wrapped(*args, **kwargs)

        wrap_function_wrapper(_CHAT_MODULE, "Completions.create", bare_span)
        try:
            yield _no_drain
        finally:
            unwrap(importlib.import_module(_CHAT_MODULE).Completions, "create")


@contextlib.contextmanager
def official() -> Iterator[Callable[[], None]]:
    module = _import_first(OFFICIAL)
    with providers() as (tracer_provider, meter_provider):
        instrumentor = module.OpenAIInstrumentor()
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        try:
            yield _no_drain
        finally:
            instrumentor.uninstrument()


def _import_first(modules: Sequence[str]) -> Any:
    for name in modules[:-1]:
        with contextlib.suppress(ImportError):
            return importlib.import_module(name)
    return importlib.import_module(modules[-1])


def run(
    setup: Callable[[], contextlib.AbstractContextManager[Callable[[], None]]],
    client: openai.OpenAI,
    options: argparse.Namespace,
) -> list[tuple[Scenario, Row]]:
    with setup() as drain:
        return [(path, measure(client, path, options, drain)) for path in PATHS]


def print_rows(who: str, rows: list[tuple[Scenario, Row]]) -> None:
    for path, row in rows:
        print(
            f"| {who} | {path.label} | {row.base_p50:.0f} us | **{row.added_p50:.1f} us** "
            f"({row.added_p25:.1f}) | {row.spread:.0f} us | {row.added_cpu:.1f} us ({row.cpu_iqr:.1f}) "
            f"| {path.target} us |"
        )


# --- The instrumentation's own work, no SDK and no network ------------------------------------------

_COMPLETION = {
    "id": "chatcmpl-benchmark",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}
_NOT_FOUND = {
    "message": "The model `x` does not exist",
    "type": "invalid_request_error",
    "code": "model_not_found",
}


def isolated_rows(repeat: int = 9, number: int = 3000) -> list[tuple[str, float, float, float]]:
    """Per path: the bare-span floor's and otel-aitrack's own cost, hot, best of `repeat`, in us."""
    completion = ChatCompletion.model_validate(_COMPLETION)
    completion._request_id = "req_benchmark"  # as the SDK sets it on every parsed body
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    headers = {"x-request-id": "req_benchmark"}
    response = httpx.Response(404, json={"error": _NOT_FOUND}, headers=headers, request=request)

    def succeed(**kwargs: Any) -> Any:
        return completion

    def fail(**kwargs: Any) -> Any:
        raise openai.NotFoundError(f"Error code: 404 - {_NOT_FOUND}", response=response, body=_NOT_FOUND)

    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-proj-benchmark000000", max_retries=0)
    completions = client.chat.completions
    rows = []
    for label, body in (("success", succeed), ("failure (404)", fail)):
        costs = []
        for setup in (floor, ours):
            with setup() as drain:
                wrapper = type(completions).create._self_wrapper  # the wrapt wrapper function itself
                calls = functools.partial(_wrapped_calls, wrapper, body, completions, drain, number)
                costs.append(_best_per_call(calls, repeat, number))
        bare = _best_per_call(
            functools.partial(_wrapped_calls, None, body, completions, _no_drain, number), repeat, number
        )
        rows.append((label, costs[0] - bare, costs[1] - bare, costs[1] - costs[0]))
    return rows


def _wrapped_calls(
    wrapper: Any, body: Create, completions: Any, drain: Callable[[], None], number: int
) -> None:
    """`number` calls of `body` through `wrapper` (None: called bare), then `drain` (the histogram
    measurements are charged here)."""
    kwargs = {"model": "gpt-4o-mini", "messages": MESSAGES}
    for _ in range(number):
        with contextlib.suppress(openai.NotFoundError):
            if wrapper is None:
                body(**kwargs)
            else:
                wrapper(body, completions, (), kwargs)
    drain()


def _best_per_call(calls: Callable[[], None], repeat: int, number: int) -> float:
    return min(timeit.repeat(calls, number=1, repeat=repeat)) / number * 1e6


def serve(port_pipe: Connection) -> None:
    """The fake provider in its own process, so that its work is not on this process's clocks."""
    with FakeOpenAI() as fake:
        port_pipe.send(fake.port)
        port_pipe.recv()  # until the benchmark is done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3000, help="paired calls per path (wall clock)")
    parser.add_argument("--blocks", type=int, default=100, help="block pairs of 20 calls per path (CPU)")
    parser.add_argument(
        "--official", action="store_true", help="also measure OpenTelemetry's own OpenAI instrumentation"
    )
    parser.add_argument(
        "--isolated", action="store_true", help="also measure the work alone: no SDK, no network"
    )
    options = parser.parse_args()
    ours_end, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(theirs,), daemon=True)
    server.start()
    port = ours_end.recv()
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-proj-benchmark000000", max_retries=0
    )
    print(
        f"openai {openai.__version__}, Python {sys.version.split()[0]}, {options.pairs} call pairs and "
        f"{options.blocks} block pairs of 20 calls per path, fake server in another process on loopback\n"
    )
    print(
        "| instrumentation | path | uninstrumented p50 | added wall: p50 (p25) | instrumented IQR "
        "| added CPU (IQR) | target |"
    )
    print("|---|---|---|---|---|---|---|")
    print_rows("floor: one bare span", run(floor, client, options))
    print_rows("otel-aitrack", run(ours, client, options))
    if options.official:
        try:
            print_rows("OpenTelemetry genai-openai", run(official, client, options))
        except ImportError as error:
            print(f"(OpenTelemetry's OpenAI instrumentation could not be imported, not measured: {error})")
    ours_end.send("done")
    server.join(timeout=5)
    if options.isolated:
        print("\nThe instrumentation's own work, no SDK and no network (hot, best of 9 x 3000 calls):\n")
        print("| path | floor: one bare span | otel-aitrack (histograms included) | over the floor |")
        print("|---|---|---|---|")
        for label, bare_span, aitrack, over in isolated_rows():
            print(f"| {label} | {bare_span:.1f} us | {aitrack:.1f} us | {over:.1f} us |")


if __name__ == "__main__":
    main()
