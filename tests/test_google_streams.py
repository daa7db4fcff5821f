"""What is Google's own in its streams (`generate_content_stream`, sync and async): bare generators that send
their request when first read, so an exception can be thrown into them; a blocked prompt's one chunk; and
the async client's transport, aiohttp when it is installed (CI runs these tests with and without it),
else httpx. The outcomes every provider's streams share are in tests/conformance/test_streams.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google import genai
from google.genai import _api_client, types

import otel_aitrack
from otel_aitrack import names
from tests.conformance.cases import google_client
from tests.conftest import Telemetry
from tests.fakes.google_server import FakeGoogle
from tests.support import attrs, refused_port

MODEL = "gemini-2.5-flash"
CONTENTS = "Write a haiku"
# What google-genai's async client sends through: aiohttp whenever it is installed.
ASYNC_TRANSPORT = "aiohttp" if getattr(_api_client, "has_aiohttp", False) else "httpx"


@pytest.fixture
def client(google_client: genai.Client) -> genai.Client:
    return google_client


def haiku_stream(client: genai.Client) -> Iterator[types.GenerateContentResponse]:
    return client.models.generate_content_stream(model=MODEL, contents=CONTENTS)


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


def test_a_blocked_prompt_ends_the_stream_with_its_block_reason(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("prompt_blocked")
    chunks = list(haiku_stream(client))
    assert len(chunks) == 1 and chunks[0].prompt_feedback is not None
    (request,) = google_fake.requests
    assert request.path.endswith(":streamGenerateContent")
    assert request.query == {"alt": ["sse"]}
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed", "the API's final word, not a truncation"
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == ("SAFETY",)


# --- async twins --------------------------------------------------------------------------------


async def test_async_failures_come_from_the_transport_the_sdk_sends_through(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    """On httpx (`RemoteProtocolError`, `ConnectError`) and, when aiohttp is installed, on aiohttp."""
    google_fake.plan("stream_cut")
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents=CONTENTS)
    with pytest.raises(Exception) as cut:
        async for _ in stream:
            pass
    refused = google_client(f"http://127.0.0.1:{refused_port()}")
    with pytest.raises(Exception) as failed:
        await refused.aio.models.generate_content(model=MODEL, contents=CONTENTS)
    for raised in (cut, failed):
        assert type(raised.value).__module__.startswith(ASYNC_TRANSPORT)
    failures = [
        (attrs(span).get(names.AITRACK_STREAM_OUTCOME), attrs(span)[names.ERROR_TYPE])
        for span in telemetry.spans()
    ]
    assert failures == [("truncated", type(cut.value).__name__), (None, type(failed.value).__name__)]


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
