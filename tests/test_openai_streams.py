"""openai's own ways to stream: the chat and Responses stream helpers, Responses event streams (completed,
failed by an error or failed event, truncated) and legacy completions. One span each.

What every provider's streams share (outcomes, sync and async) is in tests/conformance/test_streams.py."""

from __future__ import annotations

import gc
import threading

import openai
import pytest
from openai import Stream

import otel_aitrack
from otel_aitrack import names
from otel_aitrack.book import BOOK
from tests.conftest import Telemetry
from tests.fakes.openai_server import FakeOpenAI
from tests.support import attrs

MESSAGES = [{"role": "user", "content": "Write a haiku"}]


def chat_stream(client: openai.OpenAI, **extra: object) -> Stream:
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra)


@pytest.fixture
def collected_under_the_books_lock(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    """A stream, its first chunk read, whose last reference is dropped (its finalizer runs at once) in a
    thread holding the failure book's lock, as a metric collection does while it reads the book: the
    garbage collector can run a stream's finalizer inside any allocation, that one included."""
    fake.plan("stream_long")
    held = [chat_stream(client)]
    next(iter(held[0]))

    def drop_under_lock() -> None:
        with BOOK._lock:
            held.clear()
            gc.collect()

    worker = threading.Thread(target=drop_under_lock, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the stream's ending waited on the lock its own thread held: a deadlock"


@pytest.mark.usefixtures("collected_under_the_books_lock")
def test_stream_collected_under_the_books_lock_ends_at_the_next_call(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    assert telemetry.spans() == [], "put off while the lock was held"
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # a safe point
    outcomes = [attrs(span).get(names.AITRACK_STREAM_OUTCOME) for span in telemetry.spans()]
    assert outcomes == ["aborted", None]
    assert otel_aitrack.stats()["untracked"].total_calls == 2


@pytest.mark.usefixtures("collected_under_the_books_lock")
def test_stream_collected_under_the_books_lock_ends_at_the_next_collection(telemetry: Telemetry) -> None:
    assert telemetry.value(names.METRIC_CALLS) == 1  # the collection ends it before it counts
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "aborted"


def test_chat_stream_helper_is_one_span(client: openai.OpenAI, telemetry: Telemetry) -> None:
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "completed"


def test_responses_stream_completed(client: openai.OpenAI, telemetry: Telemetry) -> None:
    events = list(client.responses.create(model="gpt-4o-mini", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert a[names.GEN_AI_RESPONSE_ID].startswith("resp_")
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] > 0


@pytest.mark.parametrize(
    ("scenario", "event_class"),
    [("stream_error", "ResponseErrorEvent"), ("stream_failed", "ResponseFailedEvent")],
)
def test_responses_stream_error_events_are_failures(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry, scenario: str, event_class: str
) -> None:
    fake.plan(scenario)
    events = list(client.responses.create(model="gpt-4o-mini", input="hi", stream=True))
    assert events, "the user still gets the events"
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "error"
    assert a[names.ERROR_TYPE] == event_class
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == "server_error"
    assert a[names.AITRACK_ERROR_CATEGORY] == "other"


def test_responses_stream_without_completion_is_truncated(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("stream_truncated")
    list(client.responses.create(model="gpt-4o-mini", input="hi", stream=True))
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "truncated"


def test_responses_stream_helper_is_one_span(client: openai.OpenAI, telemetry: Telemetry) -> None:
    with client.responses.stream(model="gpt-4o-mini", input="hi") as stream:
        response = stream.get_final_response()
    assert response.output_text
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "completed"


def test_legacy_completions_stream(client: openai.OpenAI, telemetry: Telemetry) -> None:
    list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi", stream=True))
    a = attrs(telemetry.span())
    assert a[names.GEN_AI_OPERATION_NAME] == "text_completion"
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed"


# --- async twins --------------------------------------------------------------------------------


async def test_async_responses_stream_helper(async_client: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    async with async_client.responses.stream(model="gpt-4o-mini", input="hi") as stream:
        response = await stream.get_final_response()
    assert response.output_text
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "completed"
