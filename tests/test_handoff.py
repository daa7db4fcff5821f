"""The metric hand-off: histogram measurements leave the call path and are never lost or late."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from typing import Any

import openai
import pytest

import otel_aitrack
from otel_aitrack import handoff as handoff_module
from otel_aitrack import names, runtime
from otel_aitrack.handoff import Handoff, new_handoff
from tests.conftest import API_KEY, Telemetry, instrumented


class Recorded:
    """A stand-in for a histogram's `record`: remembers what it got and in which thread."""

    def __init__(self, fail_on: float | None = None) -> None:
        self.values: list[float] = []
        self.threads: set[str] = set()
        self.fail_on = fail_on

    def __call__(self, value: float, attributes: dict[str, Any], context: Any) -> None:
        if value == self.fail_on:
            raise ValueError("the SDK refused this one")
        self.values.append(value)
        self.threads.add(threading.current_thread().name)


class Stuck:
    """A `record` that waits until released, as one waits on an SDK lock held since a fork."""

    def __init__(self, then: Any = None) -> None:
        self.released = threading.Event()
        self.entered = threading.Event()
        self.then = then

    def __call__(self, value: float, attributes: dict[str, Any], context: Any) -> None:
        self.entered.set()
        self.released.wait()
        if self.then is not None:
            self.then(value, attributes, context)


def wait_until(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_the_thread_records_once_enough_measurements_wait() -> None:
    handoff, record = Handoff(wake_at=4), Recorded()
    for value in range(3):
        handoff.put((record, float(value), {}, None))
    time.sleep(0.05)
    assert record.values == []  # below the wake-up mark nothing runs: the caller paid a deque append
    handoff.put((record, 3.0, {}, None))
    assert wait_until(lambda: len(record.values) == 4)
    assert record.values == [0.0, 1.0, 2.0, 3.0]
    assert record.threads == {"otel-aitrack-handoff"}
    handoff.close()


def test_drain_records_everything_pending_in_the_calling_thread() -> None:
    handoff, record = Handoff(wake_at=1000), Recorded()
    for value in range(10):
        handoff.put((record, float(value), {}, None))
    handoff.drain()
    assert record.values == [float(v) for v in range(10)]
    assert record.threads == {threading.current_thread().name}


def test_a_refused_measurement_is_reported_and_the_rest_still_recorded() -> None:
    errors: list[Exception] = []
    handoff, record = Handoff(wake_at=3), Recorded(fail_on=1.0)
    handoff.on_error(errors.append)
    for value in (0.0, 1.0, 2.0):
        handoff.put((record, value, {}, None))
    assert wait_until(lambda: record.values == [0.0, 2.0])
    assert [str(error) for error in errors] == ["the SDK refused this one"]
    # The thread survived the error: it records the next batch too.
    for value in (3.0, 4.0, 5.0):
        handoff.put((record, value, {}, None))
    assert wait_until(lambda: record.values == [0.0, 2.0, 3.0, 4.0, 5.0])
    handoff.close()


def test_close_records_what_is_pending_and_stops_the_thread() -> None:
    handoff, record = Handoff(wake_at=2), Recorded()
    handoff.put((record, 1.0, {}, None))
    handoff.put((record, 2.0, {}, None))
    assert wait_until(lambda: len(record.values) == 2)
    handoff.put((record, 3.0, {}, None))
    handoff.close()
    assert record.values == [1.0, 2.0, 3.0]
    assert handoff._thread is not None
    handoff._thread.join(timeout=5)
    assert not handoff._thread.is_alive()


def test_a_stuck_sdk_bounds_the_queue_drops_new_measurements_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handoff, stuck, record = Handoff(wake_at=1, limit=10), Stuck(), Recorded()
    counted: list[int] = []
    handoff.on_dropped(counted.append)
    handoff.put((stuck, 0.0, {}, None))
    assert stuck.entered.wait(5)  # the thread took the first one and waits in the "SDK"
    with caplog.at_level(logging.WARNING, logger="otel_aitrack"):
        for value in range(1, 26):
            handoff.put((record, float(value), {}, None))
    assert len(handoff._pending) == 10  # bounded: the first 10 wait, the next 15 are dropped
    assert handoff.dropped == 15
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "HandoffFull" in warnings[0].getMessage() and "fork" in warnings[0].getMessage()
    assert counted == []  # counted by a drain, never on the caller's path
    stuck.released.set()
    assert wait_until(lambda: len(record.values) == 10)
    handoff.drain()
    assert record.values == [float(value) for value in range(1, 11)]  # what waited is recorded, in order
    assert counted == [15]  # and what was dropped is counted once
    handoff.put((record, 99.0, {}, None))  # taken again once there is room
    handoff.drain()
    assert record.values[-1] == 99.0 and counted == [15]
    handoff.close()


def test_close_does_not_wait_for_ever_on_a_drain_stuck_in_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handoff_module, "CLOSE_WAIT", 0.2)
    handoff, stuck = Handoff(wake_at=1), Stuck()
    handoff.put((stuck, 0.0, {}, None))
    assert stuck.entered.wait(5)
    closer = threading.Thread(target=handoff.close)
    closer.start()
    closer.join(timeout=5)
    try:
        assert not closer.is_alive()  # `uninstrument()` returns; the stuck drain stays the SDK's business
    finally:
        stuck.released.set()


def _child_state(handoff: Handoff, answer: Any) -> None:
    answer.send((len(handoff._pending), handoff._thread is None))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork-only behaviour")
def test_a_forked_child_starts_empty_and_without_the_parents_thread() -> None:
    handoff, record = new_handoff(), Recorded()
    handoff.wake_at = 2
    handoff.put((record, 1.0, {}, None))
    handoff.put((record, 2.0, {}, None))
    assert wait_until(lambda: len(record.values) == 2)
    handoff.wake_at = 1000
    handoff.put((record, 3.0, {}, None))  # pending in the parent at fork time
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("fork").Process(target=_child_state, args=(handoff, theirs))
    child.start()
    child.join(timeout=10)
    assert ours.recv() == (0, True)  # the parent, not the child, records what was pending
    handoff.close()
    assert record.values == [1.0, 2.0, 3.0]


def test_histograms_of_calls_are_in_the_very_next_collection(telemetry: Telemetry, client: Any) -> None:
    for _ in range(3):  # far below the wake-up mark: only the collection's drain records them
        chat(client)
    assert sum(point.count for point in telemetry.points(names.METRIC_OPERATION_DURATION)) == 3


def test_no_histogram_measurement_is_lost_under_eight_threads(telemetry: Telemetry, client: Any) -> None:
    threads = [threading.Thread(target=lambda: [chat(client) for _ in range(25)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(point.count for point in telemetry.points(names.METRIC_OPERATION_DURATION)) == 200
    # Input and output tokens for each call.
    assert sum(point.count for point in telemetry.points(names.METRIC_TOKEN_USAGE)) == 400


def test_uninstrument_records_what_is_still_pending(fake: Any) -> None:
    with instrumented() as seen:
        chat(openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0))
        active = runtime.active()
        assert active is not None
        handoff = active.instruments.handoff
        assert len(handoff._pending) == 3  # the duration and the two token counts wait
    assert len(handoff._pending) == 0  # recorded by `uninstrument()`, before any collection
    assert sum(point.count for point in seen.points(names.METRIC_OPERATION_DURATION)) == 1


def test_calls_under_a_stuck_sdk_stay_exact_and_the_dropped_histograms_are_counted(
    fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    with instrumented() as seen:
        active = runtime.active()
        assert active is not None
        instruments, handoff = active.instruments, active.instruments.handoff
        monkeypatch.setattr(handoff, "wake_at", 1)
        monkeypatch.setattr(handoff, "limit", 30)
        stuck = Stuck(then=instruments.duration.record)
        monkeypatch.setattr(instruments, "duration", type("StuckHistogram", (), {"record": stuck})())
        for _ in range(40):
            chat(client)
        fake.reset()
        fake.plan("not_found")
        with pytest.raises(openai.NotFoundError):
            chat(client)
        # The calls never waited on the SDK: all returned, counted exactly, the failure too.
        figures = otel_aitrack.stats()["untracked"]
        assert (figures.total_calls, figures.total_failed_calls, figures.consecutive_failures) == (41, 1, 1)
        assert len(handoff._pending) == 30 and handoff.dropped > 0
        stuck.released.set()
        durations = sum(point.count for point in seen.points(names.METRIC_OPERATION_DURATION))
        tokens = sum(point.count for point in seen.points(names.METRIC_TOKEN_USAGE))
        dropped = seen.value(names.METRIC_INSTRUMENTATION_ERRORS, error__type="HandoffFull")
        assert dropped == handoff.dropped
        assert durations + tokens + dropped == 41 + 40 * 2  # a duration per call, two token counts a success
        assert seen.value(names.METRIC_CALLS, error__type="NotFoundError") == 1


def chat(client: Any) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
