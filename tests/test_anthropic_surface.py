"""Every instrumented anthropic method, sync and async, raw and streaming responses; lifecycle and safety."""

from __future__ import annotations

import asyncio
import json

import anthropic
import anthropic._base_client as base_client
import pydantic
import pytest
from anthropic.resources.beta.messages import messages as beta_messages
from anthropic.resources.messages import messages

import otel_aitrack
from otel_aitrack import names
from otel_aitrack.providers.anthropic import AnthropicProvider
from otel_aitrack.wrappers import method_wrapper
from tests.conftest import ANTHROPIC_API_KEY, Telemetry
from tests.fakes.anthropic_server import TEXT, FakeAnthropic
from tests.support import attrs

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "What is six times seven?"}]


class Answer(pydantic.BaseModel):
    answer: str


def test_messages_parse(anthropic_client: anthropic.Anthropic, telemetry: Telemetry) -> None:
    parsed = anthropic_client.messages.parse(
        model=MODEL, max_tokens=256, messages=MESSAGES, output_format=Answer
    )
    assert parsed.parsed_output == Answer(answer="42")
    span = telemetry.span()
    assert span.name == "chat claude-haiku-4-5"
    assert attrs(span)[names.GEN_AI_RESPONSE_ID] == parsed.id


def test_with_raw_response_returns_the_raw_response_and_records_status(
    anthropic_client: anthropic.Anthropic, telemetry: Telemetry
) -> None:
    raw = anthropic_client.messages.with_raw_response.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    assert raw.parse().content[0].text == TEXT
    a = attrs(telemetry.span())
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == 200
    assert a[names.AITRACK_REQUEST_ID] == raw.headers["request-id"]


def test_with_raw_response_failure(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("not_found")
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.messages.with_raw_response.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == "NotFoundError"
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == "not_found_error"


def test_with_streaming_response(anthropic_client: anthropic.Anthropic, telemetry: Telemetry) -> None:
    with anthropic_client.messages.with_streaming_response.create(
        model=MODEL, max_tokens=256, messages=MESSAGES
    ) as response:
        body = response.parse()
    assert body.content[0].text == TEXT
    assert attrs(telemetry.span())[names.HTTP_RESPONSE_STATUS_CODE] == 200


def test_bedrock_and_vertex_clients_name_their_own_provider(
    anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    class BedrockLike(anthropic.Anthropic):
        _gen_ai_provider_name = "aws.bedrock"  # what AnthropicBedrock declares

    client = BedrockLike(base_url=anthropic_fake.base_url, api_key=ANTHROPIC_API_KEY, max_retries=0)
    client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    assert attrs(telemetry.span())[names.GEN_AI_PROVIDER_NAME] == "aws.bedrock"
    assert telemetry.value(names.METRIC_CALLS, gen_ai__provider__name="aws.bedrock") == 1


def test_content_capture_records_system_input_and_output_messages(
    anthropic_client: anthropic.Anthropic, telemetry: Telemetry
) -> None:
    with otel_aitrack.track("math", capture_content=True):
        anthropic_client.messages.create(
            model=MODEL,
            max_tokens=256,
            system="You are terse. My key is sk-ant-api03-abcdefghijklmnop",
            messages=[*MESSAGES, {"role": "assistant", "content": [{"type": "text", "text": "Let me see"}]}],
        )
    a = attrs(telemetry.span())
    assert json.loads(a[names.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is six times seven?"}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "Let me see"}]},
    ]
    assert json.loads(a[names.GEN_AI_SYSTEM_INSTRUCTIONS]) == [
        {"type": "text", "content": "You are terse. My key is [REDACTED]"}
    ]
    assert json.loads(a[names.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": TEXT}], "finish_reason": "end_turn"}
    ]


def test_content_capture_of_a_stream(anthropic_client: anthropic.Anthropic, telemetry: Telemetry) -> None:
    with otel_aitrack.track("math", capture_content=True):
        list(anthropic_client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES, stream=True))
    output = json.loads(attrs(telemetry.span())[names.GEN_AI_OUTPUT_MESSAGES])
    assert output == [
        {"role": "assistant", "parts": [{"type": "text", "content": TEXT}], "finish_reason": "end_turn"}
    ]


def test_no_content_without_capture(anthropic_client: anthropic.Anthropic, telemetry: Telemetry) -> None:
    anthropic_client.messages.create(model=MODEL, max_tokens=256, system="be terse", messages=MESSAGES)
    a = attrs(telemetry.span())
    assert not {
        names.GEN_AI_INPUT_MESSAGES,
        names.GEN_AI_SYSTEM_INSTRUCTIONS,
        names.GEN_AI_OUTPUT_MESSAGES,
    } & set(a)


# --- async --------------------------------------------------------------------------------------


async def test_async_messages_create(
    async_anthropic_client: anthropic.AsyncAnthropic, telemetry: Telemetry
) -> None:
    message = await async_anthropic_client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    a = attrs(telemetry.span())
    assert a[names.GEN_AI_RESPONSE_ID] == message.id
    assert a[names.AITRACK_REQUEST_ID] == message._request_id


async def test_async_failure(
    async_anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("billing")
    with pytest.raises(anthropic.APIStatusError):
        await async_anthropic_client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    a = attrs(telemetry.span())
    assert a[names.AITRACK_ERROR_CATEGORY] == "quota"
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == "billing_error"
    assert "in test_async_failure" in a[names.AITRACK_ERROR_TRACEBACK]


async def test_async_parse_beta_and_count_tokens(
    async_anthropic_client: anthropic.AsyncAnthropic, telemetry: Telemetry
) -> None:
    client = async_anthropic_client
    await client.messages.parse(model=MODEL, max_tokens=256, messages=MESSAGES, output_format=Answer)
    await client.beta.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    await client.messages.count_tokens(model=MODEL, messages=MESSAGES)
    await client.beta.messages.count_tokens(model=MODEL, messages=MESSAGES)
    operations = [attrs(s)[names.GEN_AI_OPERATION_NAME] for s in telemetry.spans()]
    assert operations == ["chat", "chat", "count_tokens", "count_tokens"]


async def test_async_with_raw_response(
    async_anthropic_client: anthropic.AsyncAnthropic, telemetry: Telemetry
) -> None:
    raw = await async_anthropic_client.messages.with_raw_response.create(
        model=MODEL, max_tokens=256, messages=MESSAGES
    )
    assert (await raw.parse()).content
    assert attrs(telemetry.span())[names.HTTP_RESPONSE_STATUS_CODE] == 200


# --- lifecycle and safety -----------------------------------------------------------------------


def _sdk_methods() -> tuple[object, ...]:
    return (
        messages.Messages.create,
        messages.AsyncMessages.create,
        messages.Messages.stream,
        messages.AsyncMessages.stream,
        messages.Messages.count_tokens,
        beta_messages.Messages.create,
        beta_messages.AsyncMessages.stream,
        base_client.BaseClient._build_request,
        getattr(base_client, "start_api_call_span", None),  # absent before the SDK traced its calls
    )


def test_uninstrument_restores_the_sdk_exactly_and_instrument_twice_is_one_span(
    anthropic_fake: FakeAnthropic,
) -> None:
    originals = _sdk_methods()
    seen = Telemetry()
    instrumentor = otel_aitrack.AITrackInstrumentor()
    client = anthropic.Anthropic(base_url=anthropic_fake.base_url, api_key=ANTHROPIC_API_KEY, max_retries=0)
    try:
        instrumentor.instrument(tracer_provider=seen.tracer_provider, meter_provider=seen.meter_provider)
        wrapped = [now is not before for now, before in zip(_sdk_methods(), originals, strict=True) if before]
        assert all(wrapped)
        client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
        assert len(seen.spans()) == 1

        instrumentor.uninstrument()
        assert _sdk_methods() == originals
        client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
        assert len(seen.spans()) == 1

        instrumentor.instrument(tracer_provider=seen.tracer_provider, meter_provider=seen.meter_provider)
        instrumentor.instrument(tracer_provider=seen.tracer_provider, meter_provider=seen.meter_provider)
        with client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as stream:
            stream.until_done()
        assert len(seen.spans()) == 2
    finally:
        instrumentor.uninstrument()
        otel_aitrack.reset_stats()
    assert _sdk_methods() == originals


def test_the_exception_is_the_very_instance_the_sdk_raised(
    anthropic_client: anthropic.Anthropic,
    anthropic_fake: FakeAnthropic,
    telemetry: Telemetry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[BaseException] = []
    original = base_client.SyncAPIClient._make_status_error_from_response

    def remember(self: object, response: object) -> BaseException:
        error = original(self, response)
        made.append(error)
        return error

    monkeypatch.setattr(base_client.SyncAPIClient, "_make_status_error_from_response", remember)
    anthropic_fake.plan("overloaded")
    with pytest.raises(anthropic.OverloadedError) as raised:
        anthropic_client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    assert raised.value is made[0]


def test_an_internal_error_is_swallowed_counted_and_the_call_succeeds(
    anthropic_client: anthropic.Anthropic, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_AITRACK_STRICT", "0")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("instrumentation bug")

    monkeypatch.setattr(AnthropicProvider, "stream_state", broken)
    with anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as stream:
        assert stream.get_final_text() == TEXT
    assert telemetry.value(names.METRIC_INSTRUMENTATION_ERRORS, error__type="RuntimeError") == 1


def test_a_stream_manager_of_an_unknown_shape_is_an_internal_error_not_the_users(
    anthropic_client: anthropic.Anthropic, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_AITRACK_STRICT", "0")

    class Manager:
        def __init__(self) -> None:
            self.request = lambda: "sent"

    manager = Manager()  # the provider finds no pending request on it: the guard counts that
    endpoint = next(e for e in AnthropicProvider.endpoints if e.deferred and not e.is_async)
    wrapper = method_wrapper(AnthropicProvider(), endpoint)
    assert wrapper(lambda **kwargs: manager, anthropic_client.messages, (), {"model": MODEL}) is manager
    assert manager.request() == "sent"
    assert telemetry.value(names.METRIC_INSTRUMENTATION_ERRORS, error__type="LookupError") == 1


async def test_task_cancellation_ends_the_span_without_counting_a_failure(
    async_anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("slow")
    with otel_aitrack.track("cancelled"):
        task = asyncio.create_task(
            async_anthropic_client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
        )
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    a = attrs(telemetry.span())
    assert a[names.AITRACK_CALL_CANCELLED] is True
    assert names.ERROR_TYPE not in a
    assert otel_aitrack.stats() == {}
    assert telemetry.points(names.METRIC_CALLS) == []
