"""Google streams (`generate_content_stream`, sync and async): completed, refused, failed by an error
object, truncated, cut off, aborted or abandoned. One span each.

The SDK's streams are bare generators that send their request when first read; the core hands back a
generator of the same kind that reads them (docs/providers.md, "Google GenAI"). The async client goes
through aiohttp when it is installed (CI runs these tests with and without it), else through httpx.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import Iterator

import pytest
from google import genai
from google.genai import _api_client, errors, types

import otel_aitrack
from otel_aitrack import names
from tests.conftest import Telemetry
from tests.fakes.google_server import API_KEY, CANDIDATES_TOKENS, PROMPT_TOKENS, THOUGHTS_TOKENS, FakeGoogle
from tests.support import attrs

MODEL = "gemini-2.5-flash"
CONTENTS = "Write a haiku"
# google-genai reads an error object inside a stream from 1.50 on; before, it fails to parse the
# object's JSON lines (JSONDecodeError), which the call then records as its failure.
reads_stream_errors = pytest.mark.skipif(
    tuple(int(part) for part in genai.__version__.split(".")[:2]) < (1, 50),
    reason="this google-genai cannot parse an error object inside a stream",
)
# What google-genai's async client sends through: aiohttp whenever it is installed.
ASYNC_TRANSPORT = "aiohttp" if getattr(_api_client, "has_aiohttp", False) else "httpx"


@pytest.fixture(scope="module")
def google_fake() -> Iterator[FakeGoogle]:
    with FakeGoogle() as server:
        yield server


@pytest.fixture
def client(google_fake: FakeGoogle, telemetry: Telemetry) -> genai.Client:
    google_fake.reset()
    return genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=google_fake.base_url))


def haiku_stream(client: genai.Client) -> Iterator[types.GenerateContentResponse]:
    return client.models.generate_content_stream(model=MODEL, contents=CONTENTS)


def test_completed_stream_is_one_span_that_ends_at_the_end(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    with otel_aitrack.track("haiku"):
        stream = haiku_stream(client)
    assert inspect.isgenerator(stream)
    assert google_fake.requests == [], "the SDK sends the request when the stream is first read"
    chunks = list(stream)
    assert [chunk.candidates[0].finish_reason for chunk in chunks][-1] == "STOP"
    span = telemetry.span()
    a = attrs(span)
    assert span.name == "generate_content gemini-2.5-flash"
    assert a[names.GEN_AI_PROMPT_NAME] == "haiku", "attributed where the stream was made"
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == ("STOP",)
    # google-genai 1.20 reads no `responseId`: then neither has a value.
    assert a.get(names.GEN_AI_RESPONSE_ID) == a.get(names.AITRACK_REQUEST_ID) == chunks[0].response_id
    assert a[names.GEN_AI_RESPONSE_MODEL] == MODEL
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == CANDIDATES_TOKENS + THOUGHTS_TOKENS, "the last chunk's"
    assert names.ERROR_TYPE not in a
    request = google_fake.requests[0]
    assert request.path.endswith(":streamGenerateContent")
    assert request.query == {"alt": ["sse"]}


def test_a_stream_refused_when_first_read_is_an_ordinary_failed_call(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("rate_limit")
    stream = haiku_stream(client)
    with pytest.raises(errors.ClientError):
        for _ in stream:
            pass
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == "ClientError"
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == 429
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == "RESOURCE_EXHAUSTED"
    assert a[names.AITRACK_ERROR_CATEGORY] == "rate_limit"
    assert names.AITRACK_STREAM_OUTCOME not in a, "refused before any stream existed"
    assert (
        "in test_a_stream_refused_when_first_read_is_an_ordinary_failed_call"
        in (a[names.AITRACK_ERROR_TRACEBACK])
    )


@reads_stream_errors
def test_an_error_object_mid_stream_is_a_failure_with_the_provider_code(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("stream_error")
    received = []
    with otel_aitrack.track("haiku"), pytest.raises(errors.ServerError) as raised:
        for chunk in haiku_stream(client):
            received.append(chunk)
    assert (raised.value.code, raised.value.status) == (503, "UNAVAILABLE")
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "error"
    assert a[names.ERROR_TYPE] == "ServerError"
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == "UNAVAILABLE"
    assert a[names.AITRACK_ERROR_CATEGORY] == "server", "the error's status says it, not the 200"
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == 200, "the stream opened fine"
    assert a.get(names.GEN_AI_RESPONSE_ID) == received[0].response_id, "what the stream told before it failed"
    traceback = a[names.AITRACK_ERROR_TRACEBACK]
    assert "in test_an_error_object_mid_stream_is_a_failure_with_the_provider_code" in traceback
    assert traceback.rstrip().splitlines()[-1].startswith("google.genai.errors.ServerError: 503 UNAVAILABLE.")
    assert otel_aitrack.stats()["haiku"].total_failed_calls == 1


@reads_stream_errors
def test_an_error_object_as_the_first_payload_is_the_streams_failure(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("stream_error_first")
    with pytest.raises(errors.ServerError):
        list(haiku_stream(client))
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "error", "the stream had opened: not a refused call"
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == 200
    assert (a[names.AITRACK_ERROR_PROVIDER_CODE], a[names.AITRACK_ERROR_CATEGORY]) == (
        "UNAVAILABLE",
        "server",
    )


def test_an_exception_thrown_into_the_stream_comes_back_out_and_is_an_abort(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("stream_long")
    stream = haiku_stream(client)
    next(stream)
    with pytest.raises(LookupError):
        stream.throw(LookupError("the consumer gave up"))
    with pytest.raises(StopIteration):
        next(stream)
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "aborted"
    assert names.ERROR_TYPE not in a
    assert otel_aitrack.stats()["untracked"].total_failed_calls == 0


def test_stream_without_a_finish_reason_is_truncated(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("stream_truncated")
    chunks = list(haiku_stream(client))
    assert len(chunks) == 3, "the user still gets every chunk"
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "truncated"
    assert a[names.ERROR_TYPE] == names.STREAM_TRUNCATED_ERROR_TYPE
    assert a[names.AITRACK_ERROR_CATEGORY] == "stream_truncated"
    assert a.get(names.GEN_AI_RESPONSE_ID) == chunks[0].response_id


def test_stream_cut_off_mid_way_is_a_truncated_failure(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("stream_cut")
    with pytest.raises(Exception) as raised:
        for _ in haiku_stream(client):
            pass
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "truncated"
    assert a[names.AITRACK_ERROR_CATEGORY] == "stream_truncated"
    assert a[names.ERROR_TYPE] == type(raised.value).__name__ == "RemoteProtocolError"


def test_break_and_close_is_an_abort_not_a_failure(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("stream_long")
    stream = haiku_stream(client)
    for _ in stream:
        break
    stream.close()
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "aborted"
    assert names.ERROR_TYPE not in a
    assert otel_aitrack.stats()["untracked"].total_failed_calls == 0


def test_abandoned_stream_ends_its_span_when_collected(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("stream_long")
    stream = haiku_stream(client)
    next(stream)
    del stream
    gc.collect()
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "aborted"


def test_a_stream_never_read_sends_nothing_and_counts_nothing(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    stream = haiku_stream(client)
    del stream
    gc.collect()
    assert google_fake.requests == []
    assert otel_aitrack.stats() == {}
    assert telemetry.points(names.METRIC_CALLS) == []
    assert [attrs(span)[names.AITRACK_CALL_CANCELLED] for span in telemetry.spans()] == [True]


def test_close_after_completion_does_not_end_the_span_twice(
    client: genai.Client, telemetry: Telemetry
) -> None:
    stream = haiku_stream(client)
    list(stream)
    stream.close()
    del stream
    gc.collect()
    assert len(telemetry.spans()) == 1
    assert otel_aitrack.stats()["untracked"].total_calls == 1


def test_a_blocked_prompt_ends_the_stream_with_its_block_reason(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("prompt_blocked")
    chunks = list(haiku_stream(client))
    assert len(chunks) == 1 and chunks[0].prompt_feedback is not None
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed", "the API's final word, not a truncation"
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == ("SAFETY",)


@pytest.mark.skipif(not hasattr(types, "HttpRetryOptions"), reason="this SDK does not retry")
def test_stream_retried_by_the_sdk_is_one_span(google_fake: FakeGoogle, telemetry: Telemetry) -> None:
    retries = types.HttpRetryOptions(attempts=2, initial_delay=0.001, max_delay=0.005, jitter=0)
    client = genai.Client(
        api_key=API_KEY, http_options=types.HttpOptions(base_url=google_fake.base_url, retry_options=retries)
    )
    google_fake.reset()
    google_fake.plan("unavailable", "ok")
    list(haiku_stream(client))
    assert len(google_fake.requests) == 2
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert a[names.HTTP_REQUEST_RESEND_COUNT] == 1


# --- async twins --------------------------------------------------------------------------------


async def test_async_stream_completed(client: genai.Client, telemetry: Telemetry) -> None:
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents=CONTENTS)
    assert inspect.isasyncgen(stream)
    chunks = [chunk async for chunk in stream]
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert a.get(names.GEN_AI_RESPONSE_ID) == chunks[-1].response_id
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == CANDIDATES_TOKENS + THOUGHTS_TOKENS


async def test_async_refused(client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry) -> None:
    google_fake.plan("not_found")
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents=CONTENTS)
    with pytest.raises(errors.ClientError):
        async for _ in stream:
            pass
    a = attrs(telemetry.span())
    assert a[names.AITRACK_ERROR_CATEGORY] == "not_found"
    assert names.AITRACK_STREAM_OUTCOME not in a


@reads_stream_errors
async def test_async_error_object(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("stream_error")
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents=CONTENTS)
    with pytest.raises(errors.ServerError):
        async for _ in stream:
            pass
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "error"
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == "UNAVAILABLE"
    assert a[names.AITRACK_ERROR_CATEGORY] == "server"
    assert "in test_async_error_object" in a[names.AITRACK_ERROR_TRACEBACK]


async def test_async_truncated(client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry) -> None:
    google_fake.plan("stream_truncated")
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents=CONTENTS)
    _ = [chunk async for chunk in stream]
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "truncated"


async def test_async_cut(client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry) -> None:
    google_fake.plan("stream_cut")
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents=CONTENTS)
    with pytest.raises(Exception) as raised:
        async for _ in stream:
            pass
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "truncated"
    assert a[names.ERROR_TYPE] == type(raised.value).__name__
    assert type(raised.value).__module__.startswith(ASYNC_TRANSPORT)


async def test_async_break_and_aclose_is_an_abort(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("stream_long")
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents=CONTENTS)
    async for _ in stream:
        break
    await stream.aclose()
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "aborted"
    assert names.ERROR_TYPE not in a


async def test_async_athrow_is_an_abort(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("stream_long")
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents=CONTENTS)
    await stream.__anext__()
    with pytest.raises(LookupError):
        await stream.athrow(LookupError("the consumer gave up"))
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "aborted"
    assert names.ERROR_TYPE not in a


async def test_async_abandoned_stream_ends_its_span(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("stream_long")
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents=CONTENTS)
    await stream.__anext__()
    del stream
    gc.collect()
    await asyncio.sleep(0.05)  # the loop closes a collected async generator on its next turns
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "aborted"
