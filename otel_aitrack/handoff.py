"""Histogram measurements handed off the call path, recorded into the SDK by a background thread.

The SDK validates, hashes and aggregates every measurement (about 10 µs each, three per call). An
AI call mostly waits on the network, so that work is done by one daemon thread while the application
waits, not on the caller's time. While the SDK takes them, nothing is lost or late: every collection
drains what is pending first (`drain` runs from an observable instrument's callback, which the SDK
calls before it reads the histograms), `WAKE_AT` waiting measurements wake the thread, and each entry
keeps its span context so exemplars still point at the call's trace.

The queue is bounded. When the SDK cannot take measurements (in a forked child, a lock that a parent
thread held at the fork stays held, and the thread waits on it forever) new measurements are dropped
rather than kept without end: one warning says so, and the number dropped is counted in
`aitrack.instrumentation.errors` (`error.type` `HandoffFull`) once the SDK takes measurements again.
Calls, `aitrack.calls`, the gauges and `stats()` do not go through the hand-off and stay exact.
"""

from __future__ import annotations

import logging
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
# At most this many wait. An entry keeps its call's span context, and so its span, alive: about 1.5 KB
# each (a forked child whose SDK took nothing grew by 132 MiB over 30,000 calls without a bound).
LIMIT = 4096
# How long `close()` waits for a drain already running (one stuck in the SDK would never end).
CLOSE_WAIT = 5.0

_logger = logging.getLogger("otel_aitrack")
# The `error.type` that dropped measurements are counted under in `aitrack.instrumentation.errors`.
DROPPED = "HandoffFull"


class Handoff:
    """A queue of measurements and the one thread that records them."""

    def __init__(self, wake_at: int = WAKE_AT, limit: int = LIMIT) -> None:
        self.wake_at = wake_at
        self.limit = limit
        self.dropped = 0  # ever, in this process
        self._reported = 0  # of those, counted by `on_dropped`
        self._warned = False
        self._pending: deque[Entry] = deque()
        self._drain_lock = threading.RLock()  # an RLock only so that its owner can be told (collected.py)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._on_error: Callable[[Exception], None] = lambda error: None
        self._on_dropped: Callable[[int], None] = lambda count: None
        forks.register(self)

    def on_error(self, report: Callable[[Exception], None]) -> None:
        """What to do with an error the SDK raises while recording (the thread must not die of it)."""
        self._on_error = report

    def on_dropped(self, count: Callable[[int], None]) -> None:
        """How to count measurements dropped while the hand-off was full (called from a drain)."""
        self._on_dropped = count

    def put(self, entry: Entry) -> None:
        """Queue one measurement (a deque append: safe from any thread without a lock)."""
        pending = self._pending
        waiting = len(pending)
        if waiting >= self.limit:
            self._drop()
            return
        pending.append(entry)
        if waiting + 1 >= self.wake_at:
            self._wake_thread()

    def _drop(self) -> None:
        self.dropped += 1  # two threads racing here may count one: a count of telemetry lost, not of calls
        if not self._warned:
            self._warned = True
            _logger.warning(
                "otel-aitrack: %d histogram measurements are waiting for the OpenTelemetry SDK, which "
                "takes none (a lock held when this process was forked?); new ones are dropped and counted "
                "in aitrack.instrumentation.errors (error.type=%s). Calls, aitrack.calls and "
                "stats() are unaffected.",
                self.limit,
                DROPPED,
            )
        self._wake_thread()

    def drain(self, timeout: float = -1) -> None:
        """Record everything pending, now, in this thread; then count what was dropped meanwhile.

        With a `timeout`, give up when another drain (one stuck in the SDK) holds the hand-off longer."""
        if not self._drain_lock.acquire(timeout=timeout):
            return
        try:
            self._record_pending()
            self._count_dropped()
        finally:
            self._drain_lock.release()

    def _record_pending(self) -> None:
        pending = self._pending
        while pending:
            record, value, attributes, context = pending.popleft()
            try:
                record(value, attributes, context)
            except Exception as error:
                self._on_error(error)

    def _count_dropped(self) -> None:
        dropped = self.dropped - self._reported
        if dropped <= 0:
            return
        self._reported += dropped
        try:
            self._on_dropped(dropped)
        except Exception as error:
            self._on_error(error)

    def held_here(self) -> bool:
        """Whether this thread holds the drain's lock (`collected`)."""
        return collected.owned(self._drain_lock)

    def close(self) -> None:
        """Record what is pending and stop the thread (`uninstrument()`); a drain stuck in the SDK is not
        waited for longer than `CLOSE_WAIT` seconds."""
        self._closed = True
        self._wake.set()
        self.drain(timeout=CLOSE_WAIT)

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
        self.dropped = self._reported = 0
        self._warned = False


def new_handoff() -> Handoff:
    return Handoff()
