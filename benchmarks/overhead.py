"""Added latency per call of otel-aitrack versus the uninstrumented openai SDK, on loopback.

Runs the real openai SDK against the fake OpenAI server (in a separate process, on 127.0.0.1),
alternating rounds with and without instrumentation so that machine noise hits both alike, and prints
the median added microseconds per call for the success path and the failure path (404 with its full
traceback). Two clocks: wall time (what the app waits) and this process's CPU time (what the
instrumentation itself costs; far less sensitive to other load on a shared machine).

    python benchmarks/overhead.py [--rounds 15] [--calls 200]

Targets on a 2-core machine: <= 50 us per successful call, <= 150 us per failed call.
A benchmark, not a test: numbers on shared machines are noisy; read the spread column.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import otel_aitrack
from tests.fakes.openai_server import FakeOpenAI

MESSAGES = [{"role": "user", "content": "hi"}]


class DiscardingExporter(SpanExporter):
    """Export costs nothing here: the batch processor's hand-off is what the app pays."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def success_call(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def failure_call(client: openai.OpenAI) -> None:
    try:
        client.chat.completions.create(model="not_found", messages=MESSAGES)
    except openai.NotFoundError:
        pass


def per_call_us(
    call: Callable[[openai.OpenAI], None], client: openai.OpenAI, calls: int
) -> tuple[float, float]:
    """Wall and CPU microseconds per call."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        call(client)
    return (time.perf_counter() - wall) / calls * 1e6, (time.process_time() - cpu) / calls * 1e6


def measure(
    call: Callable[[openai.OpenAI], None], client: openai.OpenAI, rounds: int, calls: int
) -> list[float]:
    """Median baseline wall time, then median added wall and CPU time with their spreads (IQR), in us."""
    instrumentor = otel_aitrack.AITrackInstrumentor()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(DiscardingExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    baselines, added_wall, added_cpu = [], [], []
    per_call_us(call, client, calls)  # warm-up: connection pool, caches
    for _ in range(rounds):
        base_wall, base_cpu = per_call_us(call, client, calls)
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        with otel_aitrack.track("benchmark"):
            wall, cpu = per_call_us(call, client, calls)
        instrumentor.uninstrument()
        baselines.append(base_wall)
        added_wall.append(wall - base_wall)
        added_cpu.append(cpu - base_cpu)
    tracer_provider.shutdown()
    return [statistics.median(baselines), *_median_and_spread(added_wall), *_median_and_spread(added_cpu)]


def _median_and_spread(values: list[float]) -> tuple[float, float]:
    quartiles = statistics.quantiles(values, n=4)
    return statistics.median(values), quartiles[2] - quartiles[0]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    options = parser.parse_args()
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(theirs,), daemon=True)
    server.start()
    port = ours.recv()
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-proj-benchmark000000", max_retries=0
    )
    print(
        f"openai {openai.__version__}, Python {sys.version.split()[0]}, {options.rounds} rounds x "
        f"{options.calls} calls, fake server in another process on loopback\n"
    )
    print("| path | uninstrumented (wall) | added, wall (IQR) | added, CPU (IQR) | target |")
    print("|---|---|---|---|---|")
    for label, call, target in (
        ("success (chat.completions.create)", success_call, 50),
        ("failure (404, full traceback)", failure_call, 150),
    ):
        base, wall, wall_iqr, cpu, cpu_iqr = measure(call, client, options.rounds, options.calls)
        added = f"{wall:.1f} us ({wall_iqr:.1f}) | {cpu:.1f} us ({cpu_iqr:.1f})"
        print(f"| {label} | {base:.0f} us | {added} | {target} us |")
    span, record = calibration_us()
    print(
        f"\ncalibration, same machine and moment: one OTel SDK span start+end = {span:.1f} us, "
        f"one histogram record = {record:.1f} us"
    )
    ours.send("done")
    server.join(timeout=5)


if __name__ == "__main__":
    main()
