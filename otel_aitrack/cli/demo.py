"""`otel-aitrack demo`: a fake provider, a realistic workload through the real openai SDK, a live table.

Nothing to set up: the fake OpenAI provider runs on loopback inside this process. With
OTEL_EXPORTER_OTLP_ENDPOINT set, spans and metrics also go to that collector (see `otlp`).
The first Ctrl-C (or SIGTERM) stops the workload and prints the final table; a second one gives up.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING

import openai
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn
from rich.text import Text

import otel_aitrack

from . import workload
from .fake_provider import FakeOpenAI
from .view import (
    FailureRow,
    GroupRow,
    failure_heading,
    failure_table,
    groups_table,
    latest_failure_with_traceback,
    make_console,
    traceback_block,
)

if TYPE_CHECKING:
    from .otlp import OtlpExport

OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
WORKERS = 8
REFRESH_PER_SECOND = 4
# Without a terminal (CI, `docker compose logs`): a status line this often, sparser when running forever.
PLAIN_STATUS_EVERY_SECONDS = 10.0
PLAIN_STATUS_EVERY_SECONDS_UNTIL_STOPPED = 60.0
LIVE_TITLE = "AI calls of this process, per prompt type (otel_aitrack.stats())"


@dataclass
class Outcome:
    """How the run went: calls started, time taken, how it ended, errors that were not the provider's."""

    calls: int = 0
    elapsed: float = 0.0
    interrupted: bool = False
    unexpected: list[BaseException] = field(default_factory=list)


class Stopper:
    """The first SIGINT or SIGTERM asks for a clean stop; a second SIGINT gives up at once (exit 130)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    @contextmanager
    def installed(self) -> Iterator[Stopper]:
        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {number: signal.signal(number, self._handle) for number in signals}
        try:
            yield self
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.event.is_set() and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.event.set()


def main(args: argparse.Namespace) -> int:
    console = make_console()
    features = workload.features(args.failure_mix)
    export = _start_export()
    otel_aitrack.reset_stats()
    stopper = Stopper()
    with stopper.installed(), FakeOpenAI() as fake:
        instrumentor = otel_aitrack.AITrackInstrumentor()
        instrumentor.instrument(**(export.instrument_kwargs() if export else {}))
        try:
            _print_header(console, fake.base_url, features, args, export)
            display = (LiveDisplay if _is_live(console) else PlainDisplay)(console, args.duration)
            with display:
                outcome = drive(
                    workload.demo_client(fake.base_url),
                    workload.Workload(features, args.seed),
                    args.rate,
                    args.duration,
                    stopper.event,
                    display,
                )
        finally:
            instrumentor.uninstrument()
        _print_result(console, outcome)
        if export:
            export.shutdown()
    for error in outcome.unexpected[:3]:
        print(f"otel-aitrack demo: a call failed unexpectedly: {error!r}", file=sys.stderr)
    return 1 if outcome.unexpected else 0


class Display:
    """What the demo shows while it runs."""

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def tick(self, elapsed: float, calls: int) -> None:
        pass


def drive(
    client: openai.OpenAI,
    calls: workload.Workload,
    rate: float,
    duration: float,
    stop: threading.Event,
    display: Display,
) -> Outcome:
    """Start `rate` calls a second on a thread pool until `duration` (0: forever) or `stop`."""
    outcome = Outcome()

    def call(planned: workload.PlannedCall) -> None:
        try:
            workload.make_call(client, planned)
        except Exception as error:  # not the provider's failure: a bug, shown at the end
            outcome.unexpected.append(error)

    interval = 1.0 / rate
    started = time.monotonic()
    next_call = started
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="aitrack-demo-call") as pool:
        while not stop.is_set():
            now = time.monotonic()
            outcome.elapsed = now - started
            if duration and outcome.elapsed >= duration:
                break
            if now >= next_call:
                pool.submit(call, calls.next_call())
                outcome.calls += 1
                next_call = max(next_call + interval, now - interval)  # a stall does not cause a burst
            display.tick(outcome.elapsed, outcome.calls)
            stop.wait(min(max(next_call - time.monotonic(), 0.0), 0.1))
        outcome.interrupted = stop.is_set()
        pool.shutdown(wait=True, cancel_futures=True)
    return outcome


class LiveDisplay(Display):
    """A terminal: the table refreshed a few times a second above a progress bar; cleared at the end."""

    def __init__(self, console: Console, duration: float) -> None:
        self.duration = duration
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[clock]}"),
            console=console,
        )
        self.task: TaskID = self.progress.add_task("starting", total=duration or None, clock="")
        self.live = Live(
            console=console,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=True,
            get_renderable=self.render,
        )

    def __enter__(self) -> LiveDisplay:
        self.live.start(refresh=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.live.stop()

    def tick(self, elapsed: float, calls: int) -> None:
        clock = (
            f"{elapsed:.0f} s of {self.duration:g} s" if self.duration else f"{elapsed:.0f} s (Ctrl-C stops)"
        )
        self.progress.update(self.task, completed=elapsed, description=f"{calls} calls", clock=clock)

    def render(self) -> RenderableType:
        return Group(_table(LIVE_TITLE), Text(""), self.progress)


class PlainDisplay(Display):
    """A pipe, a file or CI: one plain status line every few seconds, no cursor movement."""

    def __init__(self, console: Console, duration: float) -> None:
        self.console = console
        self.every = PLAIN_STATUS_EVERY_SECONDS if duration else PLAIN_STATUS_EVERY_SECONDS_UNTIL_STOPPED
        self.last = time.monotonic()

    def tick(self, elapsed: float, calls: int) -> None:
        if time.monotonic() - self.last < self.every:
            return
        self.last = time.monotonic()
        stats = otel_aitrack.stats().values()
        figures = ", ".join(f"{s.prompt_type} {s.total_failed_calls}/{s.total_calls} failed" for s in stats)
        self.console.print(f"[{elapsed:4.0f} s] {calls} calls: {figures}")


def _start_export() -> OtlpExport | None:
    endpoint = os.environ.get(OTLP_ENDPOINT, "").strip()
    if not endpoint:
        return None
    # Only now: the SDK and the OTLP exporter (the `cli` extra) are not needed without an endpoint.
    from .otlp import start_export  # noqa: PLC0415

    return start_export(endpoint)


def _is_live(console: Console) -> bool:
    return console.is_terminal and not console.is_dumb_terminal


def _table(title: str) -> RenderableType:
    return failure_table((FailureRow.from_stats(s) for s in otel_aitrack.stats().values()), title=title)


def _print_header(
    console: Console,
    base_url: str,
    features: list[workload.Feature],
    args: argparse.Namespace,
    export: OtlpExport | None,
) -> None:
    length = f"for {args.duration:g} s" if args.duration else "until Ctrl-C"
    mix = ", ".join(f"{f.prompt_type} (fails {100 * f.failure_probability:g} %)" for f in features)
    sink = (
        f"spans and metrics exported over OTLP/HTTP to {export.endpoint}"
        if export
        else "no exporter (set OTEL_EXPORTER_OTLP_ENDPOINT to send spans and metrics to a collector)"
    )
    rate = f"{args.rate:g} calls/s {length}"
    console.print(f"otel-aitrack demo: fake OpenAI provider on {base_url}, {rate}")
    console.print(f"  prompt types: {mix}")
    console.print(f"  telemetry: {sink}")


def _print_result(console: Console, outcome: Outcome) -> None:
    how = "stopped" if outcome.interrupted else "done"
    title = f"{how} after {outcome.elapsed:.1f} s and {outcome.calls} calls: otel_aitrack.stats()"
    console.print(_table(title))
    groups = groups_table(GroupRow.all_from_stats(otel_aitrack.stats().values()), "Top failure groups")
    if groups is not None:
        console.print()
        console.print(groups)
    latest = latest_failure_with_traceback(otel_aitrack.stats().values())
    if latest and latest.last_error_traceback:
        heading = failure_heading(latest.prompt_type, latest.last_error_code, latest.last_failed_at)
        console.print()
        console.print(traceback_block(heading, latest.last_error_traceback, console))
