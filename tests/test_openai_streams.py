"""Streams: completed, failed by an error event, truncated, cut off, aborted or abandoned — one span each."""

from __future__ import annotations

import gc
import threading

import openai
import pytest
from openai import AsyncStream, Stream

import otel_aitrack
from otel_aitrack import names
from otel_aitrack.book import BOOK
from tests.conftest import Telemetry
from tests.fakes.openai_server import FakeOpenAI
from tests.support import attrs

MESSAGES = [{"role": "user", "content": "Write a haiku"}]


def chat_stream(client: openai.OpenAI, **extra: object) -> Stream:
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra)


def test_completed_stream_is_returned_as_the_sdks_own_stream_and_ends_the_span_at_the_end(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    stream = chat_stream(client, stream_options={"include_usage": True})
    assert type(stream) is Stream
    assert telemetry.spans() == [], "the span stays open while the stream is read"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == 200
    assert a[names.AITRACK_REQUEST_ID] == stream.response.headers["x-request-id"]
    assert names.ERROR_TYPE not in a


def test_stream_error_event_is_a_failure_with_the_provider_code(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("stream_error")
    with otel_aitrack.track("haiku"), pytest.raises(openai.APIError) as raised:
        for _ in chat_stream(client):
            pass
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "error"
    assert a[names.ERROR_TYPE] == type(raised.value).__name__
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == "server_error"
    assert a[names.AITRACK_ERROR_CATEGORY] == "other"
    assert (
        "in test_stream_error_event_is_a_failure_with_the_provider_code" in a[names.AITRACK_ERROR_TRACEBACK]
    )
    assert otel_aitrack.stats()["haiku"].total_failed_calls == 1


def test_stream_without_finish_reason_is_truncated(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("stream_truncated")
    with otel_aitrack.track("haiku"):
        chunks = list(chat_stream(client))
    assert chunks, "the user still gets every chunk"
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "truncated"
    assert a[names.ERROR_TYPE] == names.STREAM_TRUNCATED_ERROR_TYPE
    assert a[names.AITRACK_ERROR_CATEGORY] == "stream_truncated"
    assert otel_aitrack.stats()["haiku"].last_error_code == "stream_truncated"


def test_stream_cut_off_mid_way_is_a_truncated_failure(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("stream_cut")
    with pytest.raises(Exception) as raised:
        for _ in chat_stream(client):
            pass
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "truncated"
    assert a[names.AITRACK_ERROR_CATEGORY] == "stream_truncated"
    assert a[names.ERROR_TYPE] == type(raised.value).__name__


def test_break_is_an_abort_not_a_failure(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("stream_long")
    stream = chat_stream(client)
    for _ in stream:
        break
    stream.close()
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "aborted"
    assert names.ERROR_TYPE not in a
    assert otel_aitrack.stats()["untracked"].total_failed_calls == 0


def test_leaving_the_with_block_early_is_an_abort(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("stream_long")
    with chat_stream(client) as stream:
        next(iter(stream))
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "aborted"


def test_abandoned_stream_ends_its_span_when_collected(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("stream_long")
    stream = chat_stream(client)
    next(iter(stream))
    del stream
    gc.collect()
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "aborted"


def _collected_while_the_book_is_locked(held: list[Stream]) -> None:
    """Drops the last reference to the stream in `held` (its finalizer runs at once) in a thread holding
    the failure book's lock, as a metric collection does while it reads the book: the garbage collector
    can run a stream's finalizer inside any allocation, that one included."""

    def drop_under_lock() -> None:
        with BOOK._lock:
            held.clear()
            gc.collect()

    worker = threading.Thread(target=drop_under_lock, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the stream's ending waited on the lock its own thread held: a deadlock"


def test_stream_collected_under_the_books_lock_ends_at_the_next_call(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("stream_long")
    held = [chat_stream(client)]
    next(iter(held[0]))
    _collected_while_the_book_is_locked(held)
    assert telemetry.spans() == [], "put off while the lock was held"
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # a safe point
    outcomes = [attrs(span).get(names.AITRACK_STREAM_OUTCOME) for span in telemetry.spans()]
    assert outcomes == ["aborted", None]
    assert otel_aitrack.stats()["untracked"].total_calls == 2


def test_stream_collected_under_the_books_lock_ends_at_the_next_collection(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("stream_long")
    held = [chat_stream(client)]
    next(iter(held[0]))
    _collected_while_the_book_is_locked(held)
    assert telemetry.value(names.METRIC_CALLS) == 1  # the collection ends it before it counts
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "aborted"


def test_never_read_stream_ends_its_span_when_collected(client: openai.OpenAI, telemetry: Telemetry) -> None:
    stream = chat_stream(client)
    del stream
    gc.collect()
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "aborted"


def test_close_after_completion_does_not_end_the_span_twice(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    stream = chat_stream(client)
    list(stream)
    stream.close()
    del stream
    gc.collect()
    assert len(telemetry.spans()) == 1
    assert otel_aitrack.stats()["untracked"].total_calls == 1


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


async def test_async_stream_completed(async_client: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    stream = await async_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert type(stream) is AsyncStream
    chunks = [chunk async for chunk in stream]
    assert chunks
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "completed"


async def test_async_stream_error_event(
    async_client: openai.AsyncOpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("stream_error")
    stream = await async_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "error"
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == "server_error"


async def test_async_stream_truncated(
    async_client: openai.AsyncOpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("stream_truncated")
    stream = await async_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    _ = [chunk async for chunk in stream]
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "truncated"


async def test_async_stream_close_is_an_abort(
    async_client: openai.AsyncOpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("stream_long")
    stream = await async_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    async with stream:
        async for _ in stream:
            break
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "aborted"
    assert names.ERROR_TYPE not in a


async def test_async_responses_stream_helper(async_client: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    async with async_client.responses.stream(model="gpt-4o-mini", input="hi") as stream:
        response = await stream.get_final_response()
    assert response.output_text
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "completed"
