"""Histogram measurements handed off the call path, recorded into the SDK by a background thread.

The SDK validates, hashes and aggregates every measurement (about 10 µs each, three per call). An
AI call mostly waits on the network, so that work is done by one daemon thread while the application
waits, not on the caller's time. Nothing is lost or late: every collection drains what is pending
first (`drain` runs from an observable instrument's callback, which the SDK calls before it reads the
histograms), a full hand-off wakes the thread, and each entry keeps its span context so exemplars
still point at the call's trace.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from opentelemetry.context import Context

from . import collected, forks

# (record, value, attributes, context): `record` is a histogram's bound `record` method.
Entry = tuple[Callable[..., None], float, dict[str, Any], Context | None]

# The thread wakes when this many measurements wait; a collection drains whatever is there.
WAKE_AT = 64


class Handoff:
    """A queue of measurements and the one thread that records them."""

    def __init__(self, wake_at: int = WAKE_AT) -> None:
        self.wake_at = wake_at
        self._pending: deque[Entry] = deque()
        self._drain_lock = threading.RLock()  # an RLock only so that its owner can be told (collected.py)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._on_error: Callable[[Exception], None] = lambda error: None
        forks.register(self)

    def on_error(self, report: Callable[[Exception], None]) -> None:
        """What to do with an error the SDK raises while recording (the thread must not die of it)."""
        self._on_error = report

    def put(self, entry: Entry) -> None:
        """Queue one measurement (a deque append: safe from any thread without a lock)."""
        pending = self._pending
        pending.append(entry)
        if len(pending) >= self.wake_at:
            self._wake_thread()

    def drain(self) -> None:
        """Record everything pending, now, in this thread."""
        with self._drain_lock:
            pending = self._pending
            while pending:
                record, value, attributes, context = pending.popleft()
                try:
                    record(value, attributes, context)
                except Exception as error:
                    self._on_error(error)

    def held_here(self) -> bool:
        """Whether this thread holds the drain's lock (`collected`)."""
        return collected.owned(self._drain_lock)

    def close(self) -> None:
        """Record what is pending and stop the thread (`uninstrument()`)."""
        self._closed = True
        self._wake.set()
        self.drain()

    def reopen(self) -> None:
        """Take measurements again after `close()`; the thread starts anew when needed."""
        self._closed = False

    def _wake_thread(self) -> None:
        if not self._closed and not self._thread_alive():
            self._start_thread()
        self._wake.set()

    def _thread_alive(self) -> bool:
        # A thread that saw `close()` ends; a later `reopen()` then needs a new one.
        return self._thread is not None and self._thread.is_alive()

    def _start_thread(self) -> None:
        with self._drain_lock:
            if self._thread_alive():
                return
            self._thread = threading.Thread(target=self._run, name="otel-aitrack-handoff", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            try:
                self.drain()
            except Exception:  # already reported by `on_error` (which re-raises in strict mode)
                continue

    def reset_after_fork(self) -> None:
        """A forked child has no thread, and the parent records what was pending before the fork."""
        self._pending = deque()
        self._drain_lock = threading.RLock()  # an RLock only so that its owner can be told (collected.py)
        self._wake = threading.Event()
        self._thread = None


def new_handoff() -> Handoff:
    return Handoff()
