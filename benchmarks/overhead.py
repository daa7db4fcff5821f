"""Added latency per call of otel-aitrack versus the uninstrumented openai SDK, on loopback.

Runs the real openai SDK against the test suite's fake OpenAI server on 127.0.0.1, alternating rounds
with and without instrumentation (so machine noise hits both alike), and prints the median added
microseconds per call for the success path and the failure path (404 with full traceback).

    python benchmarks/overhead.py [--rounds 15] [--calls 200]

Targets on a 2-core machine: <= 50 us per successful call, <= 150 us per failed call.
A benchmark, not a test: numbers on shared machines are noisy; read the spread column.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from tests.fakes.openai_server import FakeOpenAI

import otel_aitrack

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


def per_call_us(call: Callable[[openai.OpenAI], None], client: openai.OpenAI, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call(client)
    return (time.perf_counter() - start) / calls * 1e6


def measure(
    call: Callable[[openai.OpenAI], None], client: openai.OpenAI, rounds: int, calls: int
) -> tuple[float, float, float]:
    """Median baseline, median added latency, and the spread (IQR) of the added latency, in us."""
    instrumentor = otel_aitrack.AITrackInstrumentor()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(DiscardingExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    baselines, added = [], []
    per_call_us(call, client, calls)  # warm-up: connection pool, caches
    for _ in range(rounds):
        base = per_call_us(call, client, calls)
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        with otel_aitrack.track("benchmark"):
            traced = per_call_us(call, client, calls)
        instrumentor.uninstrument()
        baselines.append(base)
        added.append(traced - base)
    quartiles = statistics.quantiles(added, n=4)
    tracer_provider.shutdown()
    return statistics.median(baselines), statistics.median(added), quartiles[2] - quartiles[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    options = parser.parse_args()
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-proj-benchmark0000000000", max_retries=0)
        print(
            f"openai {openai.__version__}, Python {sys.version.split()[0]}, "
            f"{options.rounds} rounds x {options.calls} calls, loopback fake server"
        )
        print(f"{'path':<34}{'uninstrumented':>16}{'added (median)':>16}{'spread (IQR)':>14}{'target':>9}")
        for label, call, target in (
            ("success (chat.completions)", success_call, 50),
            ("failure (404 + full traceback)", failure_call, 150),
        ):
            base, extra, spread = measure(call, client, options.rounds, options.calls)
            print(f"{label:<34}{base:>13.0f} us{extra:>13.1f} us{spread:>11.1f} us{target:>6} us")


if __name__ == "__main__":
    main()
