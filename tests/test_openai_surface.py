"""Every instrumented openai method, sync and async, raw and streaming responses: one span, same result.

What every provider shares (errors, retries, streams, identity) is in tests/conformance/."""

from __future__ import annotations

import re

import openai
import pydantic
import pytest

from otel_aitrack import names
from tests.conftest import Telemetry
from tests.fakes.openai_server import FakeOpenAI
from tests.support import attrs

MESSAGES = [{"role": "user", "content": "What is six times seven?"}]


class Answer(pydantic.BaseModel):
    answer: str


def test_chat_completions_parse(client: openai.OpenAI, telemetry: Telemetry) -> None:
    parsed = client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Answer)
    assert parsed.choices[0].message.parsed == Answer(answer="42")
    span = telemetry.span()
    assert span.name == "chat gpt-4o-mini"
    assert attrs(span)[names.GEN_AI_RESPONSE_ID] == parsed.id


def test_responses_create(client: openai.OpenAI, telemetry: Telemetry) -> None:
    response = client.responses.create(model="gpt-4o-mini", input="hi")
    a = attrs(telemetry.span())
    assert a[names.GEN_AI_OPERATION_NAME] == "chat"
    assert a[names.GEN_AI_RESPONSE_ID] == response.id
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] == response.usage.input_tokens
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == response.usage.output_tokens


def test_responses_create_failure(client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry) -> None:
    fake.plan("rate_limit")
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="gpt-4o-mini", input="hi")
    assert attrs(telemetry.span())[names.AITRACK_ERROR_PROVIDER_CODE] == "rate_limit_exceeded"


def test_a_200_whose_body_does_not_parse_fails_with_the_status_and_request_id_it_was_answered_with(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("garbled_200")
    with pytest.raises(Exception) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == type(raised.value).__name__
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == 200
    assert re.fullmatch(r"req_[0-9a-f]{32}", a[names.AITRACK_REQUEST_ID])


def test_secrets_in_urls_and_bearer_tokens_of_an_error_message_are_redacted(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("key_in_query")
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    a = attrs(telemetry.span())
    for text in (a[names.AITRACK_ERROR_MESSAGE], a[names.AITRACK_ERROR_TRACEBACK]):
        assert "sk-abc123def456ghi789" not in text
        assert "abc.def.ghi" not in text
        assert "api_key=[REDACTED]" in text


def test_embeddings_create(client: openai.OpenAI, telemetry: Telemetry) -> None:
    result = client.embeddings.create(model="text-embedding-3-small", input="hello")
    span = telemetry.span()
    assert span.name == "embeddings text-embedding-3-small"
    assert attrs(span)[names.GEN_AI_USAGE_INPUT_TOKENS] == result.usage.prompt_tokens


def test_legacy_completions_create(client: openai.OpenAI, telemetry: Telemetry) -> None:
    client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi")
    span = telemetry.span()
    assert span.name == "text_completion gpt-3.5-turbo-instruct"
    assert attrs(span)[names.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


def test_with_raw_response_returns_the_raw_response_and_records_status(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    completion = raw.parse()
    assert completion.choices[0].message.content
    a = attrs(telemetry.span())
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == 200
    assert a[names.AITRACK_REQUEST_ID] == raw.headers["x-request-id"]


def test_with_raw_response_failure(client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry) -> None:
    fake.plan("not_found")
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert attrs(telemetry.span())[names.ERROR_TYPE] == "NotFoundError"


def test_with_streaming_response(client: openai.OpenAI, telemetry: Telemetry) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES
    ) as response:
        body = response.parse()
    assert body.choices[0].message.content
    assert attrs(telemetry.span())[names.HTTP_RESPONSE_STATUS_CODE] == 200


async def test_async_parse_responses_embeddings_completions(
    async_client: openai.AsyncOpenAI, telemetry: Telemetry
) -> None:
    await async_client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Answer)
    await async_client.responses.create(model="gpt-4o-mini", input="hi")
    await async_client.embeddings.create(model="text-embedding-3-small", input="hello")
    await async_client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi")
    operations = [attrs(s)[names.GEN_AI_OPERATION_NAME] for s in telemetry.spans()]
    assert operations == ["chat", "chat", "embeddings", "text_completion"]


async def test_async_with_raw_response(async_client: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    raw = await async_client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.parse().choices
    assert attrs(telemetry.span())[names.HTTP_RESPONSE_STATUS_CODE] == 200
