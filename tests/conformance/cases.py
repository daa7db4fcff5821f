"""Every provider's conformance case: its fake, its clients, how to call and stream, its scenarios, and what
its SDK and the span make of them. The shared behaviours (tests/conformance/test_*.py) run once for each;
the kit they are written against is tests/conformance/kit.py. A new provider: its fake (tests/fakes/) and
one case here.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import replace
from typing import Any

import anthropic
import anthropic._base_client as anthropic_base
import botocore.client
import botocore.exceptions
import openai
import openai._base_client as openai_base
import openai.resources.chat.completions as openai_chat
from anthropic.resources.beta.messages import messages as anthropic_beta
from anthropic.resources.messages import messages as anthropic_messages
from botocore.eventstream import EventStream
from google import genai
from google.genai import _api_client as google_api_client
from google.genai import errors as google_errors
from google.genai import models as google_models
from google.genai import types as google_types

from otel_aitrack.cli import fake_provider
from otel_aitrack.providers.anthropic import AnthropicProvider
from otel_aitrack.providers.bedrock import BedrockProvider
from otel_aitrack.providers.google import GoogleProvider
from otel_aitrack.providers.openai import OpenAIProvider
from tests.conformance.kit import (
    DIRECT_CAUSE,
    MESSAGES,
    PROMPT,
    Echo,
    ErrorCase,
    Made,
    ProviderCase,
    itself,
    returned,
    stainless,
)
from tests.conftest import (
    ANTHROPIC_API_KEY,
    ANTHROPIC_SDK_TRACES,
    API_KEY,
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN,
    CONVERSE_INPUT_TOKENS,
    converse_reports_cache_reads,
    make_bedrock_client,
)
from tests.fakes import anthropic_server, bedrock_server, google_server
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.bedrock_server import FakeBedrock
from tests.fakes.google_server import FakeGoogle
from tests.fakes.openai_server import FakeOpenAI

# --- OpenAI -------------------------------------------------------------------------------------------------

OPENAI_MODEL = "gpt-4o-mini"
_OPENAI_STREAM = {"stream": True, "stream_options": {"include_usage": True}}


def chat_completions_create(client: openai.OpenAI, system: str | None = None) -> Any:
    return client.chat.completions.create(model=OPENAI_MODEL, messages=_with_system(system))


def _with_system(system: str | None) -> list[dict[str, Any]]:
    return MESSAGES if system is None else [{"role": "system", "content": system}, *MESSAGES]


async def async_chat_completions_create(client: openai.AsyncOpenAI) -> Any:
    return await client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES)


def chat_completions_stream(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES, **_OPENAI_STREAM)


async def async_chat_completions_stream(client: openai.AsyncOpenAI) -> Any:
    return await client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES, **_OPENAI_STREAM)


def _openai_text(chunks: list[Any]) -> str:
    return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)


def _openai_code(error: BaseException) -> str | None:
    """The body's `code`, else its `type` (`conflict`, `unprocessable` and `server_error` have no code)."""
    return getattr(error, "code", None) or getattr(error, "type", None)


OPENAI = ProviderCase(
    **stainless(openai, openai_base, "x-request-id", API_KEY),
    name="openai",
    provider_name="openai",
    operation="chat",
    model=OPENAI_MODEL,
    fake=FakeOpenAI,
    provider=OpenAIProvider,
    call=chat_completions_create,
    acall=async_chat_completions_create,
    open_stream=chat_completions_stream,
    aopen_stream=async_chat_completions_stream,
    text_of=_openai_text,
    request_id_pattern=r"req_[0-9a-f]{32}",
    stream_response_id=lambda chunks: chunks[0].id if chunks else None,
    provider_code_of=_openai_code,
    message_prefix=lambda status, code: f"Error code: {status}",
    response_model=fake_provider.SNAPSHOTS[OPENAI_MODEL],
    finish_reasons=("stop",),
    tokens={
        "input": fake_provider.USAGE_IN,
        "output": fake_provider.USAGE_OUT,
        "cache_read": fake_provider.USAGE_CACHED,
        "reasoning": fake_provider.USAGE_REASONING,
    },
    errors=(
        ErrorCase("bad_request", "BadRequestError", 400, "invalid_value", "bad_request"),
        ErrorCase("content_filter", "BadRequestError", 400, "content_filter", "content_filter"),
        ErrorCase("unauthorized", "AuthenticationError", 401, "invalid_api_key", "auth"),
        ErrorCase("forbidden", "PermissionDeniedError", 403, "unsupported_country_region_territory", "auth"),
        ErrorCase("not_found", "NotFoundError", 404, "model_not_found", "not_found"),
        ErrorCase("conflict", "ConflictError", 409, "invalid_request_error", "bad_request"),
        ErrorCase("unprocessable", "UnprocessableEntityError", 422, "invalid_request_error", "bad_request"),
        ErrorCase("rate_limit", "RateLimitError", 429, "rate_limit_exceeded", "rate_limit"),
        ErrorCase("insufficient_quota", "RateLimitError", 429, "insufficient_quota", "quota"),
        ErrorCase("server_error", "InternalServerError", 500, "server_error", "server"),
        ErrorCase("overloaded", "InternalServerError", 503, "server_error", "server"),
    ),
    stream_errors=(ErrorCase("stream_error", "APIError", 200, "server_error", "other"),),
    echoes=(Echo("unauthorized", API_KEY, "Incorrect API key provided: [REDACTED]"),),
    secrets=(API_KEY, "TESTKEY"),
    retried=("overloaded", "overloaded"),  # 503 with `retry-after-ms: 5`
    failures=("not_found", "rate_limit"),
    patched=lambda: (
        openai_chat.Completions.create,
        openai_chat.AsyncCompletions.create,
        openai_base.BaseClient._build_request,
    ),
)

# --- Anthropic ----------------------------------------------------------------------------------------------

ANTHROPIC_MODEL = anthropic_server.DEFAULT_MODEL
_ANTHROPIC_ASK = {"model": ANTHROPIC_MODEL, "max_tokens": 256, "messages": MESSAGES}


def messages_create(client: anthropic.Anthropic, system: str | None = None) -> Any:
    return client.messages.create(**_ANTHROPIC_ASK, **({} if system is None else {"system": system}))


async def async_messages_create(client: anthropic.AsyncAnthropic) -> Any:
    return await client.messages.create(**_ANTHROPIC_ASK)


def messages_stream(client: anthropic.Anthropic) -> Any:
    return client.messages.create(**_ANTHROPIC_ASK, stream=True)


async def async_messages_stream(client: anthropic.AsyncAnthropic) -> Any:
    return await client.messages.create(**_ANTHROPIC_ASK, stream=True)


def _anthropic_text(events: list[Any]) -> str:
    return "".join(event.delta.text for event in events if event.type == "content_block_delta")


def _anthropic_class(*candidates: str) -> str:
    """The SDK's class for an error: 2.x names some that 1.x folds into a broader class."""
    return next(name for name in candidates if hasattr(anthropic, name))


ANTHROPIC = ProviderCase(
    **stainless(anthropic, anthropic_base, "request-id", ANTHROPIC_API_KEY, traces=ANTHROPIC_SDK_TRACES),
    name="anthropic",
    provider_name="anthropic",
    operation="chat",
    model=ANTHROPIC_MODEL,
    fake=FakeAnthropic,
    provider=AnthropicProvider,
    call=messages_create,
    acall=async_messages_create,
    open_stream=messages_stream,
    aopen_stream=async_messages_stream,
    text_of=_anthropic_text,
    request_id_pattern=r"req_011C[1-9A-HJ-NP-Za-km-z]{20}",
    stream_response_id=lambda events: events[0].message.id if events else None,
    provider_code_of=lambda error: getattr(error, "type", None),
    message_prefix=lambda status, code: (
        f"Error code: {status} - {{'type': 'error', 'error': {{'type': '{code}'"
    ),
    response_model=anthropic_server.SNAPSHOTS[ANTHROPIC_MODEL],
    finish_reasons=("end_turn",),
    # Input tokens as the semantic conventions count them for Anthropic: cache reads included.
    tokens={
        "input": anthropic_server.USAGE_IN + anthropic_server.USAGE_CACHE_READ,
        "output": anthropic_server.USAGE_OUT,
        "cache_read": anthropic_server.USAGE_CACHE_READ,
        "cache_creation": 0,
    },
    errors=(
        ErrorCase("bad_request", "BadRequestError", 400, "invalid_request_error", "bad_request"),
        ErrorCase("unauthorized", "AuthenticationError", 401, "authentication_error", "auth"),
        ErrorCase(
            "billing",
            _anthropic_class("PaymentRequiredError", "APIStatusError"),
            402,
            "billing_error",
            "quota",
        ),
        ErrorCase("forbidden", "PermissionDeniedError", 403, "permission_error", "auth"),
        ErrorCase("not_found", "NotFoundError", 404, "not_found_error", "not_found"),
        ErrorCase(
            "request_too_large",
            _anthropic_class("ContentTooLargeError", "RequestTooLargeError"),
            413,
            "request_too_large",
            "bad_request",
        ),
        ErrorCase("rate_limit", "RateLimitError", 429, "rate_limit_error", "rate_limit"),
        ErrorCase("api_error", "InternalServerError", 500, "api_error", "server"),
        ErrorCase(
            "timeout_error",
            _anthropic_class("GatewayTimeoutError", "InternalServerError"),
            504,
            "timeout_error",
            "timeout",
        ),
        ErrorCase("overloaded", "OverloadedError", 529, "overloaded_error", "server"),
    ),
    # The event's error type says what failed, not the 200 the stream opened with.
    stream_errors=(ErrorCase("stream_error", "APIStatusError", 200, "overloaded_error", "server"),),
    echoes=(Echo("unauthorized", None, "invalid x-api-key"),),
    secrets=(ANTHROPIC_API_KEY, "TESTKEY"),
    retried=("overloaded", "overloaded"),  # 529 with `x-should-retry: true` and `retry-after-ms: 5`
    failures=("not_found", "overloaded"),
    patched=lambda: (
        anthropic_messages.Messages.create,
        anthropic_messages.AsyncMessages.create,
        anthropic_messages.Messages.stream,
        anthropic_messages.AsyncMessages.stream,
        anthropic_messages.Messages.count_tokens,
        anthropic_beta.Messages.create,
        anthropic_beta.AsyncMessages.stream,
        anthropic_base.BaseClient._build_request,
        getattr(anthropic_base, "start_api_call_span", None),  # absent before the SDK traced its calls
    ),
)

# --- Google -------------------------------------------------------------------------------------------------

GOOGLE_MODEL = google_server.DEFAULT_MODEL
GOOGLE_VERSION = tuple(int(part) for part in genai.__version__.split(".")[:2])
# The SDK retries only when asked to (`HttpRetryOptions`, absent in google-genai 1.20).
GOOGLE_RETRIES = hasattr(google_types, "HttpRetryOptions")
# google-genai 1.20 drops the answer's `responseId` (later versions keep it): its response model has the
# field, but the SDK's conversion of the Gemini API's answer does not copy it.
GOOGLE_RESPONSE_IDS = "responseId" in inspect.getsource(
    getattr(google_models, "_GenerateContentResponse_from_mldev", lambda: None)
)


def google_client(
    base_url: str, *, attempts: int = 1, timeout: float | None = None, tracer_provider: Any = None
) -> genai.Client:
    options: dict[str, Any] = {"base_url": base_url}
    if timeout is not None:
        options["timeout"] = round(timeout * 1000)  # milliseconds
    if attempts > 1:  # milliseconds apart
        options["retry_options"] = google_types.HttpRetryOptions(
            attempts=attempts, initial_delay=0.001, max_delay=0.005, jitter=0
        )
    return genai.Client(api_key=google_server.API_KEY, http_options=google_types.HttpOptions(**options))


def generate_content(client: genai.Client, system: str | None = None) -> Any:
    config = None if system is None else {"system_instruction": system}
    return client.models.generate_content(model=GOOGLE_MODEL, contents=PROMPT, config=config)


async def async_generate_content(client: genai.Client) -> Any:
    return await client.aio.models.generate_content(model=GOOGLE_MODEL, contents=PROMPT)


def generate_content_stream(client: genai.Client) -> Any:
    return client.models.generate_content_stream(model=GOOGLE_MODEL, contents=PROMPT)


async def async_generate_content_stream(client: genai.Client) -> Any:
    return await client.aio.models.generate_content_stream(model=GOOGLE_MODEL, contents=PROMPT)


def _google_code(error: BaseException) -> str | None:
    return getattr(error, "status", None)


def _google_status(error: BaseException) -> int | None:
    return getattr(error, "code", None)


_GOOGLE_STREAM_ERRORS = (
    ErrorCase("stream_error", "ServerError", 200, "UNAVAILABLE", "server"),
    # The same error object before any chunk: the stream had opened, so not a refused call.
    ErrorCase("stream_error_first", "ServerError", 200, "UNAVAILABLE", "server"),
)

GOOGLE = ProviderCase(
    name="google",
    provider_name="gcp.gemini",
    operation="generate_content",
    model=GOOGLE_MODEL,
    fake=FakeGoogle,
    provider=GoogleProvider,
    client=google_client,
    call=generate_content,
    open_stream=generate_content_stream,
    text_of=lambda chunks: "".join(chunk.text or "" for chunk in chunks),
    # Google's one id is the answer's `responseId` (google-genai 1.20 drops it: then none); its error
    # answers carry none.
    request_id=lambda value: None if isinstance(value, BaseException) else value.response_id,
    stream_request_id=lambda opened, chunks: chunks[0].response_id if chunks else None,
    request_id_pattern=r"[A-Za-z0-9_-]{23}",
    response_id=lambda result: result.response_id,
    stream_response_id=lambda chunks: chunks[0].response_id if chunks else None,
    provider_code_of=_google_code,
    status_of=_google_status,
    message_prefix=lambda status, code: f"{status} {code}. {{'error': {{'code': {status}",
    is_sdk_stream=inspect.isgenerator,
    response_model=GOOGLE_MODEL,
    call_status=None,
    stream_status=None,
    finish_reasons=("STOP",),
    # Output tokens as billed: the candidates' and the thinking's.
    tokens={
        "input": google_server.PROMPT_TOKENS,
        "output": google_server.CANDIDATES_TOKENS + google_server.THOUGHTS_TOKENS,
        "cache_read": google_server.CACHED_TOKENS,
        "reasoning": google_server.THOUGHTS_TOKENS,
    },
    error_base=google_errors.APIError,
    errors=(
        ErrorCase("invalid_argument", "ClientError", 400, "INVALID_ARGUMENT", "bad_request"),
        ErrorCase("api_key_invalid", "ClientError", 400, "INVALID_ARGUMENT", "auth"),
        ErrorCase("unauthenticated", "ClientError", 401, "UNAUTHENTICATED", "auth"),
        ErrorCase("permission_denied", "ClientError", 403, "PERMISSION_DENIED", "auth"),
        ErrorCase("not_found", "ClientError", 404, "NOT_FOUND", "not_found"),
        ErrorCase("rate_limit", "ClientError", 429, "RESOURCE_EXHAUSTED", "rate_limit"),
        # A daily quota: waiting a minute will not help.
        ErrorCase("quota_exhausted", "ClientError", 429, "RESOURCE_EXHAUSTED", "quota"),
        ErrorCase("internal", "ServerError", 500, "INTERNAL", "server"),
        ErrorCase("unavailable", "ServerError", 503, "UNAVAILABLE", "server"),
        ErrorCase("deadline_exceeded", "ServerError", 504, "DEADLINE_EXCEEDED", "timeout"),
    ),
    # google-genai reads an error object inside a stream from 1.50 on; before, it fails to parse the
    # object's JSON lines (JSONDecodeError), which the call then records as its failure.
    stream_errors=_GOOGLE_STREAM_ERRORS if GOOGLE_VERSION >= (1, 50) else (),
    sdk_files=("google/genai/models.py", "google/genai/_api_client.py"),
    timeout_error="ReadTimeout",
    connection_error="ConnectError",
    connection_cause="ConnectError",
    connection_link=DIRECT_CAUSE,
    echoes=(
        Echo("permission_denied", google_server.API_KEY, "Consumer 'api_key:[REDACTED]' has been suspended"),
    ),
    secrets=(google_server.API_KEY, "TESTKEY"),
    retried=("unavailable", "rate_limit"),
    not_retried="not_found",
    retries=GOOGLE_RETRIES,
    failures=("not_found", "internal"),
    result_made_by=Made(google_models.Models, "_generate_content", returned),
    error_made_by=Made(google_errors.APIError, "__init__", itself),
    patched=lambda: (
        google_models.Models.generate_content,
        google_models.AsyncModels.generate_content,
        # `ApiClient` in early 1.x; `_request_once` absent before the SDK retried (HttpRetryOptions).
        getattr(getattr(google_api_client, "BaseApiClient", None), "_request_once", None),
        getattr(getattr(google_api_client, "BaseApiClient", None), "_async_request_once", None),
    ),
    async_client=google_client,
    acall=async_generate_content,
    aopen_stream=async_generate_content_stream,
    lazy_stream=True,
    request_ids=GOOGLE_RESPONSE_IDS,
    error_request_ids=False,
)

# --- AWS Bedrock Runtime (boto3): Converse ------------------------------------------------------------------

BEDROCK_MODEL = bedrock_server.CLAUDE
_BEDROCK_MESSAGES = [{"role": "user", "content": [{"text": PROMPT}]}]


def bedrock_client(
    base_url: str, *, attempts: int = 1, timeout: float | None = None, tracer_provider: Any = None
) -> Any:
    options: dict[str, Any] = {"retries": {"mode": "standard", "total_max_attempts": attempts}}
    return make_bedrock_client(base_url, **options, **({} if timeout is None else {"read_timeout": timeout}))


def converse(client: Any, system: str | None = None) -> Any:
    instructions = {} if system is None else {"system": [{"text": system}]}
    return client.converse(modelId=BEDROCK_MODEL, messages=_BEDROCK_MESSAGES, **instructions)


def converse_stream(client: Any) -> Any:
    return client.converse_stream(modelId=BEDROCK_MODEL, messages=_BEDROCK_MESSAGES)


def _bedrock_metadata(value: Any) -> dict[str, Any]:
    response = value.response if isinstance(value, BaseException) else value
    return response.get("ResponseMetadata", {})  # type: ignore[no-any-return]


def _converse_text(events: list[Any]) -> str:
    return "".join(
        event["contentBlockDelta"]["delta"]["text"] for event in events if "contentBlockDelta" in event
    )


def _converse_tokens() -> dict[str, int]:
    tokens = {"input": CONVERSE_INPUT_TOKENS, "output": bedrock_server.OUTPUT_TOKENS}
    if converse_reports_cache_reads():  # botocore drops the counts its service model lacks
        tokens.update(cache_read=bedrock_server.CACHE_READ_TOKENS, cache_creation=0)
    return tokens


def _stream_error(event: str, error_type: str, category: str) -> ErrorCase:
    """An exception event of ConverseStream: botocore raises EventStreamError; error.type is the modelled
    exception the event stands for."""
    return ErrorCase(
        f"stream_{event}",
        "EventStreamError",
        200,
        bedrock_server.STREAM_ERRORS[f"stream_{event}"][0],
        category,
        error_type,
    )


BEDROCK = ProviderCase(
    name="bedrock",
    provider_name="aws.bedrock",
    operation="chat",
    model=BEDROCK_MODEL,
    fake=FakeBedrock,
    provider=BedrockProvider,
    client=bedrock_client,
    call=converse,
    open_stream=converse_stream,
    events=lambda opened: opened["stream"],
    text_of=_converse_text,
    # The x-amzn-RequestId header, as botocore keeps it (and parses it into `RequestId`).
    request_id=lambda value: _bedrock_metadata(value).get("HTTPHeaders", {}).get("x-amzn-requestid"),
    stream_request_id=lambda opened, chunks: _bedrock_metadata(opened).get("RequestId"),
    request_id_pattern=r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    response_id=lambda result: None,  # Converse answers carry no id
    stream_response_id=lambda chunks: None,
    provider_code_of=lambda error: getattr(error, "response", {}).get("Error", {}).get("Code"),
    status_of=lambda error: _bedrock_metadata(error).get("HTTPStatusCode"),
    message_prefix=lambda status, code: f"An error occurred ({code}) when calling the Converse",
    is_sdk_stream=lambda opened: type(opened["stream"]) is EventStream,
    response_model=None,  # Converse answers do not name it
    call_status=200,
    stream_status=200,
    finish_reasons=("end_turn",),
    # Input as the semantic conventions count it: Bedrock's `inputTokens` and the cache reads counted apart.
    tokens=_converse_tokens(),
    error_base=botocore.exceptions.ClientError,
    errors=(
        ErrorCase("throttling", "ThrottlingException", 429, "ThrottlingException", "rate_limit"),
        ErrorCase(
            "service_quota", "ServiceQuotaExceededException", 400, "ServiceQuotaExceededException", "quota"
        ),
        ErrorCase("access_denied", "AccessDeniedException", 403, "AccessDeniedException", "auth"),
        # Not in Bedrock's model: botocore raises its generic ClientError; the code names the error.
        ErrorCase(
            "unrecognized_client",
            "ClientError",
            403,
            "UnrecognizedClientException",
            "auth",
            "UnrecognizedClientException",
        ),
        ErrorCase(
            "resource_not_found", "ResourceNotFoundException", 404, "ResourceNotFoundException", "not_found"
        ),
        ErrorCase("validation", "ValidationException", 400, "ValidationException", "bad_request"),
        ErrorCase("model_timeout", "ModelTimeoutException", 408, "ModelTimeoutException", "timeout"),
        ErrorCase("internal", "InternalServerException", 500, "InternalServerException", "server"),
        ErrorCase(
            "service_unavailable", "ServiceUnavailableException", 503, "ServiceUnavailableException", "server"
        ),
        ErrorCase("model_not_ready", "ModelNotReadyException", 429, "ModelNotReadyException", "server"),
        ErrorCase("model_error", "ModelErrorException", 424, "ModelErrorException", "server"),
    ),
    stream_errors=(
        _stream_error("throttling", "ThrottlingException", "rate_limit"),
        _stream_error("model_stream_error", "ModelStreamErrorException", "server"),
        _stream_error("internal", "InternalServerException", "server"),
        _stream_error("validation", "ValidationException", "bad_request"),
        _stream_error("service_unavailable", "ServiceUnavailableException", "server"),
    ),
    sdk_files=("botocore/client.py",),
    timeout_error="ReadTimeoutError",
    connection_error="EndpointConnectionError",
    connection_cause="NewConnectionError",
    connection_link="During handling of the above exception, another exception occurred",
    # AWS echoes the Authorization header (`Credential=<key id>/…`) and the canonical request
    # (`x-amz-security-token:<token>`) in some of its error messages.
    echoes=(
        Echo("incomplete_signature", AWS_ACCESS_KEY_ID, "[REDACTED]"),
        Echo("invalid_signature", AWS_SESSION_TOKEN, "[REDACTED]"),
    ),
    secrets=(
        AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY,
        AWS_SESSION_TOKEN,
        "TESTKEY1",
        "TESTSECRET",
        "TESTSESSION",
    ),
    retried=("throttling", "service_unavailable"),
    not_retried="validation",
    retries=True,
    failures=("throttling", "model_error"),
    result_made_by=Made(botocore.client.BaseClient, "_make_request", lambda self, value: value[1]),
    error_made_by=Made(botocore.exceptions.ClientError, "__init__", itself),
    patched=lambda: (botocore.client.BaseClient.__dict__["_make_api_call"],),
    stream_error="stream_internal",
    not_found="resource_not_found",
)


# --- InvokeModel, with Anthropic Messages bodies ------------------------------------------------------

_INVOKE_BODY = json.dumps(
    {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 256, "messages": _BEDROCK_MESSAGES}
).encode()
# The last response and the body read from it (kept alive: a call must end on the body's read, not on
# the response's collection).
_BODIES: dict[int, tuple[Any, Any]] = {}


def invoke_model(client: Any, system: str | None = None) -> Any:
    """invoke_model as the AWS examples use it: the body read at once (kept, for the response id)."""
    body = _INVOKE_BODY if system is None else json.dumps({**json.loads(_INVOKE_BODY), "system": system})
    return _read_body(client.invoke_model(modelId=BEDROCK_MODEL, body=body))


def _read_body(response: Any) -> Any:
    _BODIES.clear()
    _BODIES[id(response)] = (response, json.loads(response["body"].read()))
    return response


def invoke_model_with_response_stream(client: Any) -> Any:
    return client.invoke_model_with_response_stream(modelId=BEDROCK_MODEL, body=_INVOKE_BODY)


def _invoke_chunks(events: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(event["chunk"]["bytes"]) for event in events]


def _invoke_text(events: list[Any]) -> str:
    deltas = [chunk for chunk in _invoke_chunks(events) if chunk["type"] == "content_block_delta"]
    return "".join(chunk["delta"]["text"] for chunk in deltas)


BEDROCK_INVOKE = replace(
    BEDROCK,
    name="bedrock-invoke",
    call=invoke_model,
    open_stream=invoke_model_with_response_stream,
    events=lambda opened: opened["body"],
    text_of=_invoke_text,
    response_id=lambda response: _BODIES[id(response)][1]["id"],
    stream_response_id=lambda events: _invoke_chunks(events)[0]["message"]["id"] if events else None,
    message_prefix=lambda status, code: f"An error occurred ({code}) when calling the InvokeModel",
    is_sdk_stream=lambda opened: type(opened["body"]) is EventStream,
    response_model=bedrock_server.CLAUDE_BODY_MODEL,
    # The Anthropic body's usage: input with the cache reads (headers and body agree).
    tokens={
        "input": bedrock_server.INPUT_TOKENS + bedrock_server.CACHE_READ_TOKENS,
        "output": bedrock_server.OUTPUT_TOKENS,
    },
    captures_content=False,  # the body is the model's own JSON
    internal_errors=2,  # following its body, then its details (the call still ends)
    stream_errors=(
        *BEDROCK.stream_errors,
        # InvokeModelWithResponseStream's stream only (ConverseStream's has no such event).
        _stream_error("model_timeout", "ModelTimeoutException", "timeout"),
    ),
)

CASES = (OPENAI, ANTHROPIC, GOOGLE, BEDROCK, BEDROCK_INVOKE)
