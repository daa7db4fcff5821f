"""Instructions added per call, counted by callgrind: otel-aitrack beside the floor and three peers.

For each configuration (setups.py: the SDK uninstrumented, the floor, otel-aitrack, OTel genai-openai,
OpenInference, OpenLLMetry), one process of the benchmark's environment (environment.py) runs under
callgrind and makes, per path, a warm-up of uncounted calls, then `blocks` counted windows of `calls`
calls each (callgrind.py). A window ends with the configuration's flush (the span exports and the
histogram hand-off still pending), so every thread's work for those calls is in its count; the metric
reader collects once an hour, outside the windows (its work is per interval, not per call). A figure is
the median window over its calls, minus the uninstrumented process's median on the same path: the
instructions that configuration adds to one call. The stream path is a stream of 100 chunks read to
its end; its figure is divided by 100 (the cost per chunk, the stream's start and end spread over it).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import callgrind, calls, environment, setups

ORDER = ("floor", "otel-aitrack", *(peer.label for peer in setups.PEERS))
PATH_ROWS = (
    ("success", "success"),
    ("failure", "404, ours with the full traceback"),
    ("stream", "stream, per chunk (100-chunk stream)"),
)
_HOUR_MS = 3_600_000
CHILD_TIMEOUT_SECONDS = 3600


@dataclass(frozen=True)
class Figure:
    """One configuration on one path: instructions per call, median window, and the windows' spread."""

    median: float
    low: float
    high: float


def _child_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", choices=sorted(setups.SETUPS), required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--library", required=True)
    parser.add_argument("--paths", nargs="+", default=[name for name, _ in PATH_ROWS])
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=20)


def child(arguments: Sequence[str]) -> None:
    """Inside callgrind: the counted windows of one configuration, one path after the other."""
    parser = argparse.ArgumentParser()
    _child_arguments(parser)
    options = parser.parse_args(arguments)
    windows = callgrind.Windows(options.library)
    client = calls.new_client(options.url)
    export = setups.Export(metric_interval_millis=_HOUR_MS)
    with setups.configured(options.config, export) as flush:
        for path in options.paths:
            call = calls.PATHS[path]
            for _ in range(options.warmup):
                call(client)
            flush()
            for block in range(options.blocks):
                gc.collect()
                windows.open()
                for _ in range(options.calls):
                    call(client)
                flush()
                windows.close(f"{path} {block}")


def count(
    interpreter: Path, config: str, url: str, library: Path, blocks: int, per_block: int, warmup: int
) -> dict[str, list[float]]:
    """Runs one configuration's process under callgrind; its windows' instructions per call, by path."""
    with tempfile.TemporaryDirectory(prefix="aitrack-callgrind-") as output:
        program = [
            str(interpreter), "-m", "benchmarks.instructions", "--config", config,
            "--url", url, "--library", str(library), "--blocks", str(blocks),
            "--calls", str(per_block), "--warmup", str(warmup),
        ]  # fmt: skip
        run = subprocess.run(
            callgrind.command(Path(output), program),
            check=False,
            cwd=environment.ROOT,
            env=_child_environment(),
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_SECONDS,  # a hang is a crash
        )
        if run.returncode != 0:
            raise RuntimeError(f"{config} failed under callgrind:\n{run.stdout}\n{run.stderr}")
        counts = callgrind.window_counts(Path(output))
    by_path: dict[str, list[float]] = {}
    for label, instructions in sorted(counts.items()):
        path, _block = label.rsplit(" ", 1)
        by_path.setdefault(path, []).append(instructions / per_block)
    return by_path


def _child_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "TRACELOOP_"))}
    env["PYTHONHASHSEED"] = "0"  # the same dict and set orders in every run
    return env


def figures(per_call: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, Figure]]:
    """Instructions each configuration adds per call (per chunk on the stream path), by path."""
    base = {path: statistics.median(values) for path, values in per_call["bare"].items()}
    result: dict[str, dict[str, Figure]] = {}
    for config, paths in per_call.items():
        if config == "bare":
            continue
        result[config] = {}
        for path, values in paths.items():
            scale = calls.STREAM_CHUNKS if path == "stream" else 1
            added = [(value - base[path]) / scale for value in values]
            result[config][path] = Figure(statistics.median(added), min(added), max(added))
    return result


def _millions(figure: Figure | None, per_chunk: bool) -> str:
    if figure is None:
        return "—"
    if per_chunk:
        return f"+{figure.median / 1e3:.1f} k"
    return f"+{figure.median / 1e6:.2f} M"


def table(found: dict[str, dict[str, Figure]], base: dict[str, float]) -> list[str]:
    header = "| path | uninstrumented | " + " | ".join(ORDER) + " |"
    lines = [header, "|---" * (len(ORDER) + 2) + "|"]
    for path, label in PATH_ROWS:
        per_chunk = path == "stream"
        uninstrumented = base[path] / (calls.STREAM_CHUNKS if per_chunk else 1)
        shown = f"{uninstrumented / 1e3:.1f} k" if per_chunk else f"{uninstrumented / 1e6:.2f} M"
        cells = [_millions(found.get(config, {}).get(path), per_chunk) for config in ORDER]
        lines.append(f"| {label} | {shown} | " + " | ".join(cells) + " |")
    return lines


def spreads(found: dict[str, dict[str, Figure]]) -> list[str]:
    """The range of the windows behind each median, so a reader sees how stable the figures are."""
    lines = []
    for config in ORDER:
        paths = found.get(config, {})
        parts = []
        for path, _ in PATH_ROWS:
            figure = paths.get(path)
            if figure is not None:
                unit, scale = ("k", 1e3) if path == "stream" else ("M", 1e6)
                parts.append(f"{path} {figure.low / scale:.3g}–{figure.high / scale:.3g} {unit}")
        lines.append(f"- {config}: " + ", ".join(parts))
    return lines


def ratios(found: dict[str, dict[str, Figure]]) -> list[str]:
    """otel-aitrack against the issue's targets: each ratio, its target, met or not."""
    ours = found["otel-aitrack"]
    official = found.get(setups.GENAI_OPENAI.label)
    checks = [("success", "floor", found["floor"]["success"].median, 3.0)]
    if official is not None:
        checks = [
            ("success", "genai-openai", official["success"].median, 0.5),
            *checks,
            ("failure", "genai-openai", official["failure"].median, 0.8),
            ("stream, per chunk", "genai-openai", official["stream"].median, 1.0),
        ]
    lines = []
    for path, against, theirs, target in checks:
        mine = ours["stream" if path.startswith("stream") else path].median
        ratio = mine / theirs if theirs > 0 else float("inf")
        verdict = "met" if ratio <= target else "NOT met"
        lines.append(f"- {path}: otel-aitrack / {against} = {ratio:.2f} (target ≤ {target:g}: {verdict})")
    return lines


def run(url: str, blocks: int, per_block: int, warmup: int) -> None:
    library = callgrind.requests_library()
    interpreter = environment.python()
    versions = environment.versions(interpreter)
    per_call: dict[str, dict[str, list[float]]] = {}
    for config in ("bare", *ORDER):
        print(f"(counting {config} under callgrind)", flush=True)
        per_call[config] = count(interpreter, config, url, library, blocks, per_block, warmup)
    found = figures(per_call)
    base = {path: statistics.median(values) for path, values in per_call["bare"].items()}
    today = datetime.date.today().isoformat()
    print(
        f"\nInstructions added per call over the uninstrumented call (callgrind, every thread), median of "
        f"{blocks} windows of {per_block} calls, {today}:\n"
    )
    print("\n".join(table(found, base)))
    print("\nVersions: " + ", ".join(f"{name} {version}" for name, version in versions.items()))
    print("\nSpread (lowest–highest window):")
    print("\n".join(spreads(found)))
    print("\nTargets (issue 14):")
    print("\n".join(ratios(found)))


if __name__ == "__main__":  # the measured process: python -m benchmarks.instructions --config ...
    child(sys.argv[1:])
