"""openai's own ways to stream: the chat and Responses stream helpers, Responses event streams (completed,
failed by an error or failed event, truncated) and legacy completions. One span each.

What every provider's streams share (outcomes, sync and async) is in tests/conformance/test_streams.py."""

from __future__ import annotations

import openai
import pytest

from otel_aitrack import names
from tests.conftest import Telemetry
from tests.fakes.openai_server import FakeOpenAI
from tests.support import attrs

MESSAGES = [{"role": "user", "content": "Write a haiku"}]


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
