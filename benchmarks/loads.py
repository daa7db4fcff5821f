"""Long and concurrent runs of otel-aitrack: memory over many calls, a collector that is down, 8 threads.

Each run is a fresh process (`python -m benchmarks.loads KIND ...`, printing JSON), so that its memory,
its exporters' threads and its patches are its own; the parent prints the figures.

- memory: `calls` calls mixing successes, failures (404, 429, 500), streams read to the end, streams
  failing midway and abandoned streams (one chunk read, then dropped), each in a `track()` of one of
  10,000 more prompt types than the cap keeps (`max_prompt_types`, 100), spans and metrics exported
  (discarded) as in production. RSS and tracemalloc's traced memory at checkpoints, after a warm-up
  that goes once through every prompt type.
- latency: each call's wall time with otel-aitrack exporting over OTLP/HTTP (batch span processor,
  periodic metric reader, both every second) to a collector that is up (a loopback receiver) or down
  (a closed loopback port: every export fails and is retried in the exporters' threads).
- threads: 8 threads calling at once through one client, uninstrumented or with otel-aitrack; calls
  per second.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

import otel_aitrack
from benchmarks import calls, setups

MIB = 1024 * 1024
MAX_PROMPT_TYPES = 100  # otel-aitrack's default cap
PROMPT_TYPES = MAX_PROMPT_TYPES + 10_000
THREADS = 8
WATCHDOG_SECONDS = 1800


def _mix() -> list[Callable[[Any], Any]]:
    """One cycle of the memory run: 5 successes, 3 failures, 1 stream read through, 1 abandoned,
    1 failing midway."""
    return [
        calls.success,
        lambda client: calls.failure(client, "not_found"),
        calls.success,
        lambda client: calls.stream(client, calls.MODEL),
        lambda client: calls.failure(client, "rate_limit"),
        calls.success,
        calls.abandoned_stream,
        calls.success,
        lambda client: calls.failure(client, "server_error"),
        lambda client: calls.stream(client, "stream_error"),
        calls.success,
    ]


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_child(url: str, total: int, warmup: int, checkpoints: int) -> list[dict[str, float]]:
    tracemalloc.start()
    mix = _mix()
    client = calls.new_client(url)
    marks = {warmup + (total - warmup) * step // checkpoints for step in range(checkpoints + 1)}
    seen = []
    export = setups.Export(metric_interval_millis=1_000, span_delay_millis=1_000)
    with setups.configured("otel-aitrack", export) as flush:
        for index in range(total + 1):
            if index in marks or index == 0:
                gc.collect()
                flush()
                traced, _peak = tracemalloc.get_traced_memory()
                seen.append({"calls": index, "rss": _rss() / MIB, "traced": traced / MIB})
            if index < total:
                with otel_aitrack.track(f"feature-{index % PROMPT_TYPES}"):
                    mix[index % len(mix)](client)
    return seen


def latency_child(url: str, endpoint: str | None, total: int, warmup: int) -> list[int]:
    """Nanoseconds per success call; `endpoint` None: uninstrumented."""
    client = calls.new_client(url)
    config = "bare" if endpoint is None else "otel-aitrack"
    base = endpoint or "http://127.0.0.1:9"
    export = setups.Export(
        spans=lambda: OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=2),
        metrics=lambda: OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=2),
        metric_interval_millis=1_000,
        span_delay_millis=1_000,
        shutdown=False,  # a down collector's retries would hold the exit; the process ends here
    )
    latencies = []
    with setups.configured(config, export):
        for index in range(warmup + total):
            started = time.perf_counter_ns()
            calls.success(client)
            if index >= warmup:
                latencies.append(time.perf_counter_ns() - started)
    return latencies


def threads_child(url: str, config: str, per_thread: int) -> float:
    """Calls per second of THREADS threads calling at once through one client."""
    client = calls.new_client(url)
    start = threading.Barrier(THREADS + 1)

    def calling() -> None:
        with otel_aitrack.track("threads"):
            start.wait()
            for _ in range(per_thread):
                calls.success(client)

    with setups.configured(config) as flush:
        for _ in range(20):  # warm-up: connections, caches
            calls.success(client)
        workers = [threading.Thread(target=calling) for _ in range(THREADS)]
        for worker in workers:
            worker.start()
        start.wait()
        started = time.perf_counter()
        for worker in workers:
            worker.join()
        flush()
        elapsed = time.perf_counter() - started
    return THREADS * per_thread / elapsed


# --- the parent: runs the children, prints the figures -----------------------------------------------


def _child(kind: str, *arguments: object) -> Any:
    command = [sys.executable, "-m", "benchmarks.loads", kind, *map(str, arguments)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} run failed:\n{done.stdout}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory(url: str, total: int) -> None:
    warmup = PROMPT_TYPES if total >= 2 * PROMPT_TYPES else total // 5  # once through every prompt type
    seen = _child("memory", url, total, warmup, 5)
    print(
        f"\nMemory over {total:,} calls (successes, 404/429/500 failures, streams read through, failing "
        f"midway and abandoned), {PROMPT_TYPES:,} prompt types ({PROMPT_TYPES - MAX_PROMPT_TYPES:,} beyond "
        f"the cap), otel-aitrack exporting spans and metrics every second (discarded):\n"
    )
    print("| calls | RSS | traced (tracemalloc) |\n|---|---|---|")
    for point in seen:
        print(f"| {point['calls']:,} | {point['rss']:.1f} MiB | {point['traced']:.2f} MiB |")
    start, end = seen[1], seen[-1]
    print(
        f"\nFrom {start['calls']:,} calls (warm) to {end['calls']:,}: RSS {start['rss']:.1f} → "
        f"{end['rss']:.1f} MiB ({end['rss'] - start['rss']:+.1f}), traced {start['traced']:.2f} → "
        f"{end['traced']:.2f} MiB ({end['traced'] - start['traced']:+.2f})"
    )


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed: connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def collector_down(url: str, collector: str, total: int, rounds: int = 3) -> None:
    down = f"http://127.0.0.1:{_closed_port()}"
    found: dict[str, list[list[int]]] = {"uninstrumented": [], "collector up": [], "collector down": []}
    for _ in range(rounds):  # interleaved, so that the machine's drift hits each alike
        found["uninstrumented"].append(_child("latency", url, "", total, 100))
        found["collector up"].append(_child("latency", url, collector, total, 100))
        found["collector down"].append(_child("latency", url, down, total, 100))
    print(
        f"\nLatency per successful call, otel-aitrack exporting over OTLP/HTTP every second, collector up "
        f"(loopback receiver) or down (closed loopback port); {rounds} interleaved processes of {total} "
        f"calls each:\n"
    )
    print("| setup | p50 | p90 | p50 of each process |\n|---|---|---|---|")
    medians = {}
    for setup, runs in found.items():
        pooled = sorted(value for run in runs for value in run)
        medians[setup] = statistics.median(pooled) / 1e3
        each = ", ".join(f"{statistics.median(run) / 1e3:.0f}" for run in runs)
        p90 = pooled[int(len(pooled) * 0.9)] / 1e3
        print(f"| {setup} | {medians[setup]:.0f} µs | {p90:.0f} µs | {each} µs |")
    added = medians["collector down"] - medians["collector up"]
    print(f"\nAdded by the collector being down, at the median: {added:+.0f} µs per call")


def threads(url: str, per_thread: int, rounds: int = 3) -> None:
    found: dict[str, list[float]] = {"bare": [], "otel-aitrack": []}
    for _ in range(rounds):
        for config, seen in found.items():
            seen.append(_child("threads", url, config, per_thread))
    bare, ours = statistics.median(found["bare"]), statistics.median(found["otel-aitrack"])
    print(
        f"\n{THREADS} threads calling at once through one client, {per_thread} successful calls each, "
        f"{rounds} interleaved processes per setup: uninstrumented {bare:.0f} calls/s "
        f"({', '.join(f'{v:.0f}' for v in found['bare'])}), otel-aitrack {ours:.0f} calls/s "
        f"({', '.join(f'{v:.0f}' for v in found['otel-aitrack'])}): ratio {ours / bare:.2f} "
        f"(target ≥ 0.9: {'met' if ours / bare >= 0.9 else 'NOT met'})"
    )


def main(arguments: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loads")
    kinds = parser.add_subparsers(dest="kind", required=True)
    memory_parser = kinds.add_parser("memory")
    for name in ("url", "total", "warmup", "checkpoints"):
        memory_parser.add_argument(name)
    latency_parser = kinds.add_parser("latency")
    for name in ("url", "endpoint", "total", "warmup"):
        latency_parser.add_argument(name)
    threads_parser = kinds.add_parser("threads")
    for name in ("url", "config", "per_thread"):
        threads_parser.add_argument(name)
    options = parser.parse_args(arguments)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1`: every thread's stack
    # A hang is a crash: every thread's stack on stderr, and the run fails (in CI too).
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
    if options.kind == "memory":
        checkpoints = int(options.checkpoints)
        result: Any = memory_child(options.url, int(options.total), int(options.warmup), checkpoints)
    elif options.kind == "latency":
        result = latency_child(options.url, options.endpoint or None, int(options.total), int(options.warmup))
    else:
        result = threads_child(options.url, options.config, int(options.per_thread))
    print(json.dumps(result), flush=True)
    os._exit(0)  # no shutdown: a down collector's exporters would wait out their retries


if __name__ == "__main__":
    main(sys.argv[1:])
