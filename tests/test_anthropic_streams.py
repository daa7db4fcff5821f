"""Anthropic streams: completed, failed by an `error` event, truncated, cut off, aborted or abandoned.

Both ways to stream: `messages.create(stream=True)` and the `messages.stream(...)` helper. One span each.
"""

from __future__ import annotations

import gc
import warnings

import anthropic
import pytest
from anthropic import AsyncStream, Stream

import otel_aitrack
from otel_aitrack import names
from tests.conftest import Telemetry
from tests.fakes.anthropic_server import USAGE_CACHE_READ, USAGE_IN, USAGE_OUT, FakeAnthropic
from tests.support import attrs

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "Write a haiku"}]


def message_stream(client: anthropic.Anthropic) -> Stream:
    return client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES, stream=True)


def write_haiku(client: anthropic.Anthropic) -> str:
    """The user's call site of the helper: the request is sent when the `with` is entered."""
    with client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as stream:
        return stream.get_final_text()


def test_completed_stream_is_returned_as_the_sdks_own_stream_and_ends_the_span_at_the_end(
    anthropic_client: anthropic.Anthropic, telemetry: Telemetry
) -> None:
    stream = message_stream(anthropic_client)
    assert type(stream) is Stream
    assert telemetry.spans() == [], "the span stays open while the stream is read"
    events = list(stream)
    assert events[0].type == "message_start"
    assert events[-1].type == "message_stop"
    span = telemetry.span()
    a = attrs(span)
    assert span.name == "chat claude-haiku-4-5"
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert a[names.GEN_AI_RESPONSE_ID] == events[0].message.id
    assert a[names.GEN_AI_RESPONSE_MODEL] == "claude-haiku-4-5-20251001"
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] == USAGE_IN + USAGE_CACHE_READ
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == USAGE_OUT, "the final count of message_delta"
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == 200
    assert a[names.AITRACK_REQUEST_ID] == stream.response.headers["request-id"]
    assert names.ERROR_TYPE not in a


def test_error_event_mid_stream_is_a_failure_with_the_provider_code(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("stream_error")
    with otel_aitrack.track("haiku"), pytest.raises(anthropic.APIStatusError) as raised:
        stream = message_stream(anthropic_client)
        for _ in stream:
            pass
    assert raised.value.type == "overloaded_error"
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "error"
    assert a[names.ERROR_TYPE] == type(raised.value).__name__ == "APIStatusError"
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == "overloaded_error"
    assert a[names.AITRACK_ERROR_CATEGORY] == "server", "the event's error type says it, not the 200"
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == 200, "the stream opened fine"
    assert a[names.AITRACK_REQUEST_ID] == stream.response.headers["request-id"]
    assert a[names.GEN_AI_RESPONSE_ID].startswith("msg_"), "what the stream told before it failed stays"
    traceback = a[names.AITRACK_ERROR_TRACEBACK]
    assert "in test_error_event_mid_stream_is_a_failure_with_the_provider_code" in traceback
    assert traceback.rstrip().splitlines()[-1].startswith("anthropic.APIStatusError:")
    assert otel_aitrack.stats()["haiku"].total_failed_calls == 1


def test_stream_without_message_stop_is_truncated(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("stream_truncated")
    with otel_aitrack.track("haiku"):
        events = list(message_stream(anthropic_client))
    assert events[-1].type == "message_delta", "the user still gets every event"
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "truncated"
    assert a[names.ERROR_TYPE] == names.STREAM_TRUNCATED_ERROR_TYPE
    assert a[names.AITRACK_ERROR_CATEGORY] == "stream_truncated"
    assert a[names.AITRACK_REQUEST_ID].startswith("req_")
    assert otel_aitrack.stats()["haiku"].last_error_code == "stream_truncated"


def test_stream_cut_off_mid_way_is_a_truncated_failure(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("stream_cut")
    stream = message_stream(anthropic_client)
    with pytest.raises(Exception) as raised:
        for _ in stream:
            pass
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "truncated"
    assert a[names.AITRACK_ERROR_CATEGORY] == "stream_truncated"
    assert a[names.ERROR_TYPE] == type(raised.value).__name__
    assert a[names.AITRACK_REQUEST_ID] == stream.response.headers["request-id"]


def test_break_is_an_abort_not_a_failure(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("stream_long")
    stream = message_stream(anthropic_client)
    for _ in stream:
        break
    stream.close()
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "aborted"
    assert names.ERROR_TYPE not in a
    assert otel_aitrack.stats()["untracked"].total_failed_calls == 0


def test_leaving_the_with_block_early_is_an_abort(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("stream_long")
    with message_stream(anthropic_client) as stream:
        next(iter(stream))
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "aborted"


def test_abandoned_stream_ends_its_span_when_collected(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("stream_long")
    stream = message_stream(anthropic_client)
    next(iter(stream))
    del stream
    gc.collect()
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "aborted"


def test_never_read_stream_ends_its_span_when_collected(
    anthropic_client: anthropic.Anthropic, telemetry: Telemetry
) -> None:
    stream = message_stream(anthropic_client)
    del stream
    gc.collect()
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "aborted"


def test_close_after_completion_does_not_end_the_span_twice(
    anthropic_client: anthropic.Anthropic, telemetry: Telemetry
) -> None:
    stream = message_stream(anthropic_client)
    list(stream)
    stream.close()
    del stream
    gc.collect()
    assert len(telemetry.spans()) == 1
    assert otel_aitrack.stats()["untracked"].total_calls == 1


# --- the messages.stream(...) helper --------------------------------------------------------------


def test_stream_helper_is_one_span_that_starts_when_the_with_is_entered(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    manager = anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES)
    assert anthropic_fake.requests == [], "the helper sends nothing before `with`"
    with otel_aitrack.track("haiku"), manager as stream:
        text = stream.get_final_text()
    assert text == "This is a test response."
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert a[names.GEN_AI_PROMPT_NAME] == "haiku"
    assert a[names.GEN_AI_REQUEST_MODEL] == MODEL
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == USAGE_OUT
    assert a[names.AITRACK_REQUEST_ID] == stream.request_id


def test_stream_helper_refused_at_enter_is_one_failed_span_with_the_callers_traceback(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("overloaded")
    with pytest.raises(anthropic.OverloadedError):
        write_haiku(anthropic_client)
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == "OverloadedError"
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == 529
    assert a[names.AITRACK_ERROR_CATEGORY] == "server"
    assert "in write_haiku\n    with client.messages.stream(" in a[names.AITRACK_ERROR_TRACEBACK]
    assert names.AITRACK_STREAM_OUTCOME not in a, "refused before any stream existed"


def test_stream_helper_error_event_is_a_failure(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("stream_error")
    with pytest.raises(anthropic.APIStatusError):
        write_haiku(anthropic_client)
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "error"
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == "overloaded_error"


def test_stream_helper_truncated(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("stream_truncated")
    with anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
    assert text
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "truncated"


def test_stream_helper_left_early_is_an_abort(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("stream_long")
    with anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as stream:
        next(iter(stream.text_stream))
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "aborted"


def test_stream_helper_never_entered_sends_nothing_and_records_nothing(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    manager = anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES)
    del manager
    gc.collect()
    assert anthropic_fake.requests == []
    assert telemetry.spans() == []
    assert otel_aitrack.stats() == {}


def test_beta_stream_helper_and_beta_create_stream(
    anthropic_client: anthropic.Anthropic, telemetry: Telemetry
) -> None:
    with anthropic_client.beta.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as stream:
        stream.until_done()
    list(anthropic_client.beta.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES, stream=True))
    outcomes = [attrs(span)[names.AITRACK_STREAM_OUTCOME] for span in telemetry.spans()]
    assert outcomes == ["completed", "completed"]


# --- async twins --------------------------------------------------------------------------------


async def test_async_stream_completed(
    async_anthropic_client: anthropic.AsyncAnthropic, telemetry: Telemetry
) -> None:
    stream = await async_anthropic_client.messages.create(
        model=MODEL, max_tokens=256, messages=MESSAGES, stream=True
    )
    assert type(stream) is AsyncStream
    events = [event async for event in stream]
    assert events[-1].type == "message_stop"
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == USAGE_OUT


async def test_async_error_event(
    async_anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("stream_error")
    stream = await async_anthropic_client.messages.create(
        model=MODEL, max_tokens=256, messages=MESSAGES, stream=True
    )
    with pytest.raises(anthropic.APIStatusError):
        async for _ in stream:
            pass
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "error"
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == "overloaded_error"
    assert a[names.AITRACK_ERROR_CATEGORY] == "server"


async def test_async_truncated(
    async_anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("stream_truncated")
    stream = await async_anthropic_client.messages.create(
        model=MODEL, max_tokens=256, messages=MESSAGES, stream=True
    )
    _ = [event async for event in stream]
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "truncated"


async def test_async_cut(
    async_anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("stream_cut")
    stream = await async_anthropic_client.messages.create(
        model=MODEL, max_tokens=256, messages=MESSAGES, stream=True
    )
    with pytest.raises(Exception) as raised:
        async for _ in stream:
            pass
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "truncated"
    assert a[names.ERROR_TYPE] == type(raised.value).__name__


async def test_async_close_is_an_abort(
    async_anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("stream_long")
    stream = await async_anthropic_client.messages.create(
        model=MODEL, max_tokens=256, messages=MESSAGES, stream=True
    )
    async with stream:
        async for _ in stream:
            break
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "aborted"
    assert names.ERROR_TYPE not in a


async def test_async_stream_helper(
    async_anthropic_client: anthropic.AsyncAnthropic, telemetry: Telemetry
) -> None:
    async with async_anthropic_client.messages.stream(
        model=MODEL, max_tokens=256, messages=MESSAGES
    ) as stream:
        message = await stream.get_final_message()
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert a[names.GEN_AI_RESPONSE_ID] == message.id


async def test_async_stream_helper_refused_at_enter(
    async_anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("not_found")
    with otel_aitrack.track("haiku"), pytest.raises(anthropic.NotFoundError):
        async with async_anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES):
            pass
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == "NotFoundError"
    assert a[names.GEN_AI_PROMPT_NAME] == "haiku"
    assert "in test_async_stream_helper_refused_at_enter" in a[names.AITRACK_ERROR_TRACEBACK]


async def test_async_beta_stream_helper_error_event(
    async_anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("stream_error")
    with pytest.raises(anthropic.APIStatusError):
        async with async_anthropic_client.beta.messages.stream(
            model=MODEL, max_tokens=256, messages=MESSAGES
        ) as stream:
            await stream.until_done()
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "error"
    assert a[names.AITRACK_ERROR_CATEGORY] == "server"


async def test_async_stream_helper_never_entered_records_nothing_and_leaves_no_coroutine_of_ours(
    async_anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manager = async_anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES)
        del manager
        gc.collect()
    never_awaited = [str(w.message) for w in caught if "never awaited" in str(w.message)]
    assert all("otel_aitrack" not in text and "wrapper" not in text for text in never_awaited), never_awaited
    assert anthropic_fake.requests == []
    assert telemetry.spans() == []
