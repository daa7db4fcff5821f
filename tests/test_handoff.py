"""The metric hand-off: histogram measurements leave the call path and are never lost or late."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from typing import Any

import openai
import pytest

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


def chat(client: Any) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
