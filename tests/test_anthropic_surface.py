"""Every instrumented anthropic method, sync and async, raw and streaming responses, beta and count_tokens;
safety around the stream helper. What every provider shares is in tests/conformance/."""

from __future__ import annotations

import json

import anthropic
import pydantic
import pytest

import otel_aitrack
from otel_aitrack import names
from otel_aitrack.providers.anthropic import AnthropicProvider
from otel_aitrack.wrappers import method_wrapper
from tests.conftest import ANTHROPIC_API_KEY, Telemetry
from tests.fakes.anthropic_server import TEXT, TOKENS_COUNTED, USAGE_IN, FakeAnthropic
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


def test_input_tokens_are_the_messages_input_and_cache_reads(
    anthropic_client: anthropic.Anthropic, telemetry: Telemetry
) -> None:
    """As the semantic conventions count them for Anthropic: the SDK's `input_tokens` leaves them out."""
    usage = anthropic_client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES).usage
    assert usage.input_tokens == USAGE_IN
    expected = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    assert attrs(telemetry.span())[names.GEN_AI_USAGE_INPUT_TOKENS] == expected > USAGE_IN


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


def test_beta_messages_create_success_and_failure(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    message = anthropic_client.beta.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    anthropic_fake.plan("rate_limit")
    with pytest.raises(anthropic.RateLimitError):
        anthropic_client.beta.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    ok, failed = (attrs(span) for span in telemetry.spans())
    assert ok[names.GEN_AI_RESPONSE_ID] == message.id
    assert ok[names.GEN_AI_OPERATION_NAME] == "chat"
    assert failed[names.AITRACK_ERROR_PROVIDER_CODE] == "rate_limit_error"
    assert failed[names.AITRACK_ERROR_CATEGORY] == "rate_limit"


def test_count_tokens_is_its_own_operation_and_reports_no_usage_and_its_failures(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    with otel_aitrack.track("budget"):
        counted = anthropic_client.messages.count_tokens(model=MODEL, messages=MESSAGES)
    anthropic_fake.plan("not_found")
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.beta.messages.count_tokens(model="claude-x", messages=MESSAGES)
    assert counted.input_tokens == TOKENS_COUNTED
    span, failed = telemetry.spans()
    failure = (attrs(failed)[names.AITRACK_ERROR_PROVIDER_CODE], attrs(failed)[names.AITRACK_ERROR_CATEGORY])
    assert (attrs(failed)[names.GEN_AI_OPERATION_NAME], *failure) == (
        "count_tokens",
        "not_found_error",
        "not_found",
    )
    a = attrs(span)
    assert span.name == "count_tokens claude-haiku-4-5"
    assert a[names.GEN_AI_OPERATION_NAME] == "count_tokens"
    assert a[names.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert a[names.AITRACK_REQUEST_ID].startswith("req_")
    assert names.GEN_AI_USAGE_INPUT_TOKENS not in a, "a count is not usage"
    assert telemetry.points(names.METRIC_TOKEN_USAGE) == []
    assert (
        telemetry.value(
            names.METRIC_CALLS, gen_ai__operation__name="count_tokens", gen_ai__prompt__name="budget"
        )
        == 1
    )


# --- async --------------------------------------------------------------------------------------


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


# --- safety -------------------------------------------------------------------------------------


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
