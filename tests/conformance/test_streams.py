"""Streams of every provider, sync and async: completed, refused, failed by an error event, truncated, cut
off, aborted or abandoned — one span each, ended once, and the user reads what the SDK gives alone."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from typing import Any

import pytest

import otel_aitrack
from otel_aitrack import names
from tests.conformance.conftest import requires
from tests.conformance.kit import TEXT, ErrorCase, ProviderCase, failure
from tests.conftest import Telemetry
from tests.support import attrs, exception_name


def read(case: ProviderCase, opened: Any) -> list[Any]:
    return list(case.events(opened))


def test_a_completed_stream_is_the_sdks_own_and_its_span_ends_at_the_end(
    case: ProviderCase, provider_fake: Any, client: Any, telemetry: Telemetry
) -> None:
    with otel_aitrack.track("haiku"):
        opened = case.open_stream(client)
    assert case.is_sdk_stream(opened)
    assert telemetry.spans() == [], "the span stays open while the stream is read"
    assert len(provider_fake.requests) == (0 if case.lazy_stream else 1)
    chunks = read(case, opened)
    assert case.text_of(chunks) == TEXT
    span = telemetry.span()
    a = attrs(span)
    assert span.name == f"{case.operation} {case.model}"
    assert a[names.GEN_AI_PROMPT_NAME] == "haiku", "attributed where the stream was made"
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == case.finish_reasons
    assert a.get(names.GEN_AI_RESPONSE_ID) == case.stream_response_id(chunks)
    assert a.get(names.GEN_AI_RESPONSE_MODEL) == case.response_model
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] == case.tokens["input"]
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == case.tokens["output"], "the final count"
    assert a.get(names.HTTP_RESPONSE_STATUS_CODE) == case.stream_status
    case.assert_request_id(a.get(names.AITRACK_REQUEST_ID), case.stream_request_id(opened, chunks))
    assert names.ERROR_TYPE not in a


def test_a_stream_refused_before_it_opened_is_an_ordinary_failed_call(
    case: ProviderCase, provider_fake: Any, client: Any, telemetry: Telemetry
) -> None:
    error = case.error_for("rate_limit")
    provider_fake.plan(error.scenario)
    with pytest.raises(case.error_base):
        read(case, case.open_stream(client))
    a = attrs(telemetry.span())
    assert failure(a) == error.recorded
    assert names.AITRACK_STREAM_OUTCOME not in a, "refused before any stream existed"
    assert (
        "in test_a_stream_refused_before_it_opened_is_an_ordinary_failed_call"
        in (a[names.AITRACK_ERROR_TRACEBACK])
    )


def test_an_error_event_in_the_stream_is_a_failure_with_outcome_error(
    case: ProviderCase, provider_fake: Any, client: Any, telemetry: Telemetry, stream_error: ErrorCase
) -> None:
    provider_fake.plan(stream_error.scenario)
    received: list[Any] = []
    with otel_aitrack.track("haiku"):
        opened = case.open_stream(client)
        with pytest.raises(Exception) as raised:
            for chunk in case.events(opened):
                received.append(chunk)
    assert type(raised.value).__name__ == stream_error.error_class
    assert case.provider_code_of(raised.value) == stream_error.provider_code
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "error"
    assert failure(a) == stream_error.recorded, "the error says it, not the 200 the stream opened with"
    assert stream_error.status == 200
    shown = case.stream_request_id(opened, received)
    case.assert_request_id(a.get(names.AITRACK_REQUEST_ID), shown, failed=not received)  # (nothing told)
    assert a.get(names.GEN_AI_RESPONSE_ID) == case.stream_response_id(received), "what it told before"
    traceback = a[names.AITRACK_ERROR_TRACEBACK]
    assert "in test_an_error_event_in_the_stream_is_a_failure_with_outcome_error" in traceback
    assert traceback.rstrip().splitlines()[-1] == f"{exception_name(raised.value)}: {raised.value}"
    stats = otel_aitrack.stats()["haiku"]
    assert (stats.total_failed_calls, stats.last_error_code) == (1, stream_error.expected_type)


def test_a_stream_without_its_end_is_truncated_and_the_user_still_gets_every_chunk(
    case: ProviderCase, provider_fake: Any, client: Any, telemetry: Telemetry
) -> None:
    provider_fake.plan(case.stream_truncated)
    with otel_aitrack.track("haiku"):
        opened = case.open_stream(client)
        chunks = read(case, opened)
    text = case.text_of(chunks)
    assert text and TEXT.startswith(text)
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "truncated"
    assert a[names.ERROR_TYPE] == names.STREAM_TRUNCATED_ERROR_TYPE
    assert a[names.AITRACK_ERROR_CATEGORY] == "stream_truncated"
    case.assert_request_id(a.get(names.AITRACK_REQUEST_ID), case.stream_request_id(opened, chunks))
    assert a.get(names.GEN_AI_RESPONSE_ID) == case.stream_response_id(chunks)
    stats = otel_aitrack.stats()["haiku"]
    assert (stats.total_failed_calls, stats.last_error_code) == (1, "stream_truncated")


def test_a_stream_cut_off_mid_way_is_a_truncated_failure(
    case: ProviderCase, provider_fake: Any, client: Any, telemetry: Telemetry
) -> None:
    provider_fake.plan(case.stream_cut)
    opened = case.open_stream(client)
    received: list[Any] = []
    with pytest.raises(Exception) as raised:
        received.extend(case.events(opened))
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "truncated"
    assert a[names.AITRACK_ERROR_CATEGORY] == "stream_truncated"
    assert a[names.ERROR_TYPE] == type(raised.value).__name__
    case.assert_request_id(a.get(names.AITRACK_REQUEST_ID), case.stream_request_id(opened, received))


def test_break_and_close_is_an_abort_not_a_failure(
    case: ProviderCase, provider_fake: Any, client: Any, telemetry: Telemetry
) -> None:
    provider_fake.plan(case.stream_long)
    events = case.events(case.open_stream(client))
    for _ in events:
        break
    assert telemetry.spans() == [], "a break alone leaves the stream open, as without instrumentation"
    events.close()
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "aborted"
    assert names.ERROR_TYPE not in a
    assert otel_aitrack.stats()["untracked"].total_failed_calls == 0


@requires("stream_with")
def test_leaving_the_streams_with_block_early_is_an_abort(
    case: ProviderCase, provider_fake: Any, client: Any, telemetry: Telemetry
) -> None:
    provider_fake.plan(case.stream_long)
    events = case.events(case.open_stream(client))
    with events:
        next(iter(events))
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "aborted"


def test_an_abandoned_stream_ends_its_span_when_collected(
    case: ProviderCase, provider_fake: Any, client: Any, telemetry: Telemetry
) -> None:
    provider_fake.plan(case.stream_long)
    opened = case.open_stream(client)
    next(iter(case.events(opened)))
    del opened
    gc.collect()
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "aborted"


def test_a_stream_never_read_ends_when_collected(
    case: ProviderCase, provider_fake: Any, client: Any, telemetry: Telemetry
) -> None:
    opened = case.open_stream(client)
    del opened
    gc.collect()
    (span,) = telemetry.spans()
    if case.lazy_stream:  # the request was never sent: a call cancelled before it started
        assert provider_fake.requests == []
        assert attrs(span)[names.AITRACK_CALL_CANCELLED] is True
        assert otel_aitrack.stats() == {}
        assert telemetry.points(names.METRIC_CALLS) == []
    else:
        assert attrs(span)[names.AITRACK_STREAM_OUTCOME] == "aborted"


def test_a_stream_read_in_two_loops_is_one_completed_call(
    case: ProviderCase, client: Any, telemetry: Telemetry
) -> None:
    events = case.events(case.open_stream(client))
    first = []
    for chunk in events:
        first.append(chunk)
        if len(first) == 2:
            break
    rest = list(events)
    assert case.text_of(first + rest) == TEXT, "the stream carries on where it stopped"
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "completed"


def test_close_after_completion_ends_the_span_once(
    case: ProviderCase, client: Any, telemetry: Telemetry
) -> None:
    opened = case.open_stream(client)
    read(case, opened)
    case.events(opened).close()
    del opened
    gc.collect()
    assert len(telemetry.spans()) == 1
    assert otel_aitrack.stats()["untracked"].total_calls == 1


# --- async twins ---------------------------------------------------------------------------------


async def aopen(case: ProviderCase, client: Any) -> Any:
    assert case.aopen_stream is not None
    return await case.aopen_stream(client)


async def failing_read(stream: Any) -> BaseException:
    """An async stream read until it raises: the exception."""
    with pytest.raises(Exception) as raised:
        async for _ in stream:
            pass
    return raised.value


async def aclose(stream: Any) -> None:
    """An async stream's own close: `close()` on the SDKs' stream objects, `aclose()` on a generator."""
    await (stream.aclose() if hasattr(stream, "aclose") else stream.close())


async def test_an_async_stream_completed(case: ProviderCase, async_client: Any, telemetry: Telemetry) -> None:
    stream = await aopen(case, async_client)
    assert case.is_sdk_async_stream(stream)
    chunks = [chunk async for chunk in stream]
    assert case.text_of(chunks) == TEXT
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert a.get(names.GEN_AI_RESPONSE_ID) == case.stream_response_id(chunks)
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == case.tokens["output"]


async def test_an_async_stream_refused(
    case: ProviderCase, provider_fake: Any, async_client: Any, telemetry: Telemetry
) -> None:
    provider_fake.plan(case.not_found)
    with pytest.raises(case.error_base):  # raised by the call (an SDK's stream object) or its first read
        async for _ in await aopen(case, async_client):
            pass
    a = attrs(telemetry.span())
    assert a[names.AITRACK_ERROR_CATEGORY] == "not_found"
    assert names.AITRACK_STREAM_OUTCOME not in a


async def test_an_async_error_event(
    case: ProviderCase, provider_fake: Any, async_client: Any, telemetry: Telemetry, stream_error: ErrorCase
) -> None:
    provider_fake.plan(stream_error.scenario)
    error = await failing_read(await aopen(case, async_client))
    assert type(error).__name__ == stream_error.error_class
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "error"
    assert failure(a) == stream_error.recorded
    assert "in test_an_async_error_event" in a[names.AITRACK_ERROR_TRACEBACK]


async def test_an_async_stream_truncated(
    case: ProviderCase, provider_fake: Any, async_client: Any, telemetry: Telemetry
) -> None:
    provider_fake.plan(case.stream_truncated)
    _ = [chunk async for chunk in await aopen(case, async_client)]
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "truncated"


async def test_an_async_stream_cut(
    case: ProviderCase, provider_fake: Any, async_client: Any, telemetry: Telemetry
) -> None:
    provider_fake.plan(case.stream_cut)
    error = await failing_read(await aopen(case, async_client))
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "truncated"
    assert a[names.ERROR_TYPE] == type(error).__name__


async def test_an_async_break_and_close_is_an_abort(
    case: ProviderCase, provider_fake: Any, async_client: Any, telemetry: Telemetry
) -> None:
    provider_fake.plan(case.stream_long)
    stream = await aopen(case, async_client)
    async for _ in stream:
        break
    await aclose(stream)
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "aborted"
    assert names.ERROR_TYPE not in a


@requires("stream_with")
async def test_leaving_an_async_streams_with_block_early_is_an_abort(
    case: ProviderCase, provider_fake: Any, async_client: Any, telemetry: Telemetry
) -> None:
    provider_fake.plan(case.stream_long)
    stream = await aopen(case, async_client)
    async with stream:
        async for _ in stream:
            break
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "aborted"
    assert names.ERROR_TYPE not in a


async def test_an_abandoned_async_stream_ends_its_span(
    case: ProviderCase, provider_fake: Any, async_client: Any, telemetry: Telemetry
) -> None:
    provider_fake.plan(case.stream_long)
    stream = await aopen(case, async_client)
    await stream.__anext__()
    del stream
    gc.collect()
    with contextlib.suppress(Exception):
        await asyncio.sleep(0.05)  # the loop closes a collected async generator on its next turns
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "aborted"
