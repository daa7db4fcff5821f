"""otel-aitrack's overhead on the real openai SDK, on loopback, beside the floor and the peers.

The fake OpenAI server runs in a process of its own on 127.0.0.1 (benchmarks/fake.py); the OTel SDK is
set up as in production: spans through a BatchSpanProcessor, metrics through a
PeriodicExportingMetricReader, the exports discarded (benchmarks/setups.py).

    python benchmarks/overhead.py --instructions [--memory] [--collector-down] [--threads] [--short]
    python benchmarks/overhead.py [--pairs 3000] [--blocks 100] [--official] [--isolated]

`--instructions`: instructions added per call, counted by valgrind's callgrind (stable under load, where
wall time is not), over every thread of the process, in windows opened and closed by callgrind client
requests (benchmarks/callgrind.py, benchmarks/instructions.py): success, 404 failure (ours with its full
traceback) and the cost per chunk of a 100-chunk stream, for the floor (one bare span per call,
hand-written), otel-aitrack, OTel genai-openai, OpenInference and OpenLLMetry, each at its defaults and
in its own process, installed by the benchmark in its own environment `.venv-bench/`
(benchmarks/environment.py). Median of 3 windows of 40 calls; with the ratios issue 14 targets:
success <= 0.5x genai-openai's and <= 3x the floor's, failure <= 0.8x genai-openai's, per chunk <=
genai-openai's.

`--memory`, `--collector-down`, `--threads` (benchmarks/loads.py): RSS and tracemalloc over 100,000
mixed calls and 10,100 prompt types; added latency when the OTLP collector is down; throughput of 8
threads against the uninstrumented SDK's (targets: flat, none, >= 0.9x).

`--short`: the same with fewer calls (what CI runs: a benchmark, not a gate; it fails on a crash only).

Without those, the older wall-clock figures: each call through the instrumented method paired with
one through the SDK's original (the wrapper's `__wrapped__`), in alternating order, wall time at the
median and 25th percentile and the whole process's CPU over blocks of calls; `--official` adds
OpenTelemetry's own instrumentation, `--isolated` the instrumentation's own work with no SDK and no
network (the wrapper around a function that returns a prepared result or raises a prepared error).
Wall time on this shared machine swings with other load: read the spread and the floor.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2 as httpx
import openai
from openai.types.chat import ChatCompletion

from benchmarks import fake, instructions, loads, setups

MESSAGES = [{"role": "user", "content": "hi"}]
Create = Callable[..., Any]


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


def _setup(name: str) -> Callable[[], contextlib.AbstractContextManager[Callable[[], None]]]:
    return functools.partial(setups.configured, name)


floor, ours, official = _setup("floor"), _setup("otel-aitrack"), _setup(setups.GENAI_OPENAI.label)


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
                timed = functools.partial(_wrapped_calls, wrapper, body, completions, drain, number)
                costs.append(_best_per_call(timed, repeat, number))
        bare = _best_per_call(
            functools.partial(_wrapped_calls, None, body, completions, setups.nothing, number), repeat, number
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


def wall_clock(url: str, options: argparse.Namespace) -> None:
    client = openai.OpenAI(base_url=url, api_key="sk-proj-benchmark000000", max_retries=0)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instructions", action="store_true", help="instructions per call (callgrind)")
    parser.add_argument("--memory", action="store_true", help="RSS and tracemalloc over many calls")
    parser.add_argument("--collector-down", action="store_true", help="latency with the collector down")
    parser.add_argument("--threads", action="store_true", help="throughput of 8 threads calling at once")
    parser.add_argument("--short", action="store_true", help="fewer calls: what CI runs")
    parser.add_argument("--pairs", type=int, default=3000, help="wall clock: paired calls per path")
    parser.add_argument("--blocks", type=int, default=100, help="wall clock: block pairs of 20 calls (CPU)")
    parser.add_argument(
        "--official", action="store_true", help="wall clock: also OpenTelemetry's own OpenAI instrumentation"
    )
    parser.add_argument(
        "--isolated", action="store_true", help="wall clock: also the work alone, no SDK and no network"
    )
    options = parser.parse_args()
    short = options.short
    loads_asked = options.memory or options.collector_down or options.threads
    with fake.far_end() as far:
        if options.instructions:
            per_block, warmup = (5, 20) if short else (40, 20)  # warm-up runs uncounted, at little cost
            instructions.run(far.openai_url, blocks=3, per_block=per_block, warmup=warmup)
        if options.memory:
            loads.memory(far.openai_url, 2 * loads.PROMPT_TYPES if short else 100_000)
        if options.collector_down:
            loads.collector_down(far.openai_url, far.otlp_endpoint, 200 if short else 1000)
        if options.threads:
            loads.threads(far.openai_url, 25 if short else 250)
        if not (options.instructions or loads_asked):
            wall_clock(far.openai_url, options)
    if options.isolated:
        print("\nThe instrumentation's own work, no SDK and no network (hot, best of 9 x 3000 calls):\n")
        print("| path | floor: one bare span | otel-aitrack (histograms included) | over the floor |")
        print("|---|---|---|---|")
        for label, bare_span, aitrack, over in isolated_rows():
            print(f"| {label} | {bare_span:.1f} us | {aitrack:.1f} us | {over:.1f} us |")


if __name__ == "__main__":
    main()
