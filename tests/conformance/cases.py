"""One case per provider: its loopback fake, its clients, how to call it and stream from it, its scenarios.

A shared behaviour (tests/conformance/test_*.py) is written once against `ProviderCase` and runs for
every case; where a provider legitimately differs, its case carries the expected value. Adding a provider
means adding its fake (tests/fakes/) and one case here.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, Protocol

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

MESSAGES = [{"role": "user", "content": "Summarize ticket #42"}]
PROMPT = "Summarize ticket #42"
TEXT = "This is a test response."  # what every fake answers
DIRECT_CAUSE = "The above exception was the direct cause of the following exception"


class ClientFactory(Protocol):
    """base URL → a client of the real SDK: one attempt unless told, the SDK's own tracing into ours."""

    def __call__(
        self, base_url: str, *, attempts: int = 1, timeout: float | None = None, tracer_provider: Any = None
    ) -> Any: ...


class ErrorCase(NamedTuple):
    """One failure a fake can be told to answer, and what the SDK and the span make of it."""

    scenario: str
    error_class: str  # the name of the exception class the SDK raises
    status: int  # http.response.status_code (200 for an error inside a stream)
    provider_code: str  # aitrack.error.provider_code
    category: str  # aitrack.error.category
    error_type: str = ""  # error.type, when it is not the class name

    @property
    def expected_type(self) -> str:
        return self.error_type or self.error_class


class Echo(NamedTuple):
    """A scenario whose error message echoes a credential back, as the real service does."""

    scenario: str
    echoed: str | None  # the credential the user's exception then shows; None: nothing is echoed
    shown: str  # what the exported message shows in its place


class Made(NamedTuple):
    """The SDK method that makes a result or an exception: (owner, name, pick(self, returned))."""

    owner: Any
    name: str
    pick: Callable[[Any, Any], Any]


def returned(_self: Any, value: Any) -> Any:
    return value


def itself(instance: Any, _value: Any) -> Any:
    return instance


@dataclass(frozen=True)
class ProviderCase:
    """What the shared behaviours need to know of one provider."""

    name: str  # the test id
    provider_name: str  # gen_ai.provider.name
    operation: str  # gen_ai.operation.name of `call`
    model: str  # the request model `call` and `stream` ask for
    fake: type[Any]  # its LoopbackFake
    provider: type[Any]  # its provider class in otel_aitrack (for the internal-error tests)
    client: ClientFactory
    call: Callable[[Any], Any]  # client → the result of one non-streamed call (a named function)
    open_stream: Callable[[Any], Any]  # client → what the SDK returns for a streamed call
    text_of: Callable[[list[Any]], str]  # the chunks of a stream → the text they carry
    # SDK accessors: the request id the SDK shows on a result or an exception, and an error's own figures.
    request_id: Callable[[Any], str | None]
    stream_request_id: Callable[[Any, list[Any]], str | None]  # (opened stream, its chunks) → its id
    request_id_pattern: str  # what the provider's request ids look like
    response_id: Callable[[Any], str | None]
    stream_response_id: Callable[[list[Any]], str | None]
    provider_code_of: Callable[[BaseException], str | None]
    status_of: Callable[[BaseException], int | None]
    message_prefix: Callable[[int, str], str]  # (status, provider code) → how the SDK's message begins
    is_sdk_stream: Callable[[Any], bool]  # the opened stream is the SDK's own object, not a proxy
    # What a successful call records.
    response_model: str | None
    # http.response.status_code of a success: the SDKs' parsed results do not all say it.
    call_status: int | None
    stream_status: int | None
    finish_reasons: tuple[str, ...]
    tokens: dict[str, int]  # by key of ResponseDetails.tokens
    # Failures: the SDK's base exception class, every error answer of the fake, where a traceback goes.
    error_base: type[BaseException]
    errors: tuple[ErrorCase, ...]
    stream_errors: tuple[ErrorCase, ...]  # an error event inside a 200 stream
    sdk_files: tuple[str, ...]  # files of the SDK a failure's traceback runs through
    timeout_error: str
    connection_error: str
    connection_cause: str  # what a refused connection's traceback names, deeper in its chain
    connection_link: str  # how the traceback links that cause to the SDK's error
    echoes: tuple[Echo, ...]
    secrets: tuple[str, ...]  # credentials of the test clients, or marks of theirs, never exported
    # Retries: two scenarios the SDK retries, one it sends once; whether this SDK retries at all.
    retried: tuple[str, str]
    not_retried: str
    retries: bool
    failures: tuple[str, str]  # two failures of different error types (the figures' tests)
    # Where the SDK makes results and exceptions (identity), what instrument() wraps (lifecycle).
    result_made_by: Made
    error_made_by: Made
    patched: Callable[[], tuple[Any, ...]]
    # Async twins: None where the SDK has no async client.
    async_client: ClientFactory | None = None
    acall: Callable[[Any], Awaitable[Any]] | None = None
    aopen_stream: Callable[[Any], Awaitable[Any]] | None = None
    is_sdk_async_stream: Callable[[Any], bool] = inspect.isasyncgen
    events: Callable[[Any], Any] = lambda opened: opened  # the opened stream → what the user iterates
    lazy_stream: bool = False  # the SDK sends a stream's request when it is first read
    stream_with: bool = False  # the SDK's stream objects are context managers (`with stream:`)
    captures_content: bool = True  # the input and output messages, when asked to
    # Internal errors one call meets when the provider can read neither a response nor a stream.
    internal_errors: int = 1
    request_ids: bool = True  # results and streams carry a request id
    error_request_ids: bool = True  # error answers carry one
    # Scenarios of the fake: an error event inside a 200 stream, a stream without its end marker, etc.
    stream_error: str = "stream_error"
    stream_truncated: str = "stream_truncated"
    stream_cut: str = "stream_cut"
    stream_long: str = "stream_long"
    not_found: str = "not_found"
    slow: str = "slow"

    def assert_request_id(self, recorded: str | None, shown: str | None, *, failed: bool = False) -> None:
        """The span's request id is the one the SDK shows; there is one where the provider sends one."""
        assert recorded == shown
        assert (recorded is not None) == (self.error_request_ids if failed else self.request_ids)
        assert recorded is None or re.fullmatch(self.request_id_pattern, recorded), recorded

    def stream(self, client: Any) -> list[Any]:
        """A streamed call, read through: its chunks."""
        return list(self.events(self.open_stream(client)))

    def error(self, scenario: str) -> ErrorCase:
        return next(error for error in self.errors if error.scenario == scenario)

    def error_for(self, category: str) -> ErrorCase:
        """The first error answer of that category."""
        return next(error for error in self.errors if error.category == category)


def http_request_id(header: str) -> Callable[[Any], str | None]:
    """The request id an httpx-based SDK (openai, anthropic) shows: on the error, the result, the stream."""

    def request_id(value: Any) -> str | None:
        if isinstance(value, BaseException):
            return getattr(value, "request_id", None)
        response = getattr(value, "response", None)
        if response is not None:
            return response.headers.get(header)  # type: ignore[no-any-return]
        return getattr(value, "_request_id", None)

    return request_id


def status_code(error: BaseException) -> int | None:
    return getattr(error, "status_code", None)


# --- OpenAI ------------------------------------------------------------------------------------------

OPENAI_MODEL = "gpt-4o-mini"


def _openai_options(attempts: int, timeout: float | None) -> dict[str, Any]:
    options: dict[str, Any] = {"api_key": API_KEY, "max_retries": attempts - 1}
    return options if timeout is None else {**options, "timeout": timeout}


def openai_client(
    base_url: str, *, attempts: int = 1, timeout: float | None = None, tracer_provider: Any = None
) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, **_openai_options(attempts, timeout))


def openai_async_client(
    base_url: str, *, attempts: int = 1, timeout: float | None = None, tracer_provider: Any = None
) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, **_openai_options(attempts, timeout))


def chat_completions_create(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES)


async def async_chat_completions_create(client: openai.AsyncOpenAI) -> Any:
    return await client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES)


_INCLUDE_USAGE = {"stream": True, "stream_options": {"include_usage": True}}


def chat_completions_stream(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES, **_INCLUDE_USAGE)


async def async_chat_completions_stream(client: openai.AsyncOpenAI) -> Any:
    return await client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES, **_INCLUDE_USAGE)


def _openai_text(chunks: list[Any]) -> str:
    return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)


def _openai_code(error: BaseException) -> str | None:
    return getattr(error, "code", None) or getattr(error, "type", None)


OPENAI = ProviderCase(
    name="openai",
    provider_name="openai",
    operation="chat",
    model=OPENAI_MODEL,
    fake=FakeOpenAI,
    provider=OpenAIProvider,
    client=openai_client,
    call=chat_completions_create,
    open_stream=chat_completions_stream,
    text_of=_openai_text,
    request_id=http_request_id("x-request-id"),
    stream_request_id=lambda opened, chunks: http_request_id("x-request-id")(opened),
    request_id_pattern=r"req_[0-9a-f]{32}",
    response_id=lambda result: result.id,
    stream_response_id=lambda chunks: chunks[0].id if chunks else None,
    provider_code_of=_openai_code,
    status_of=status_code,
    message_prefix=lambda status, code: f"Error code: {status}",
    is_sdk_stream=lambda opened: type(opened) is openai.Stream,
    response_model=fake_provider.SNAPSHOTS[OPENAI_MODEL],
    call_status=None,
    stream_status=200,
    finish_reasons=("stop",),
    tokens={
        "input": fake_provider.USAGE_IN,
        "output": fake_provider.USAGE_OUT,
        "cache_read": fake_provider.USAGE_CACHED,
        "reasoning": fake_provider.USAGE_REASONING,
    },
    error_base=openai.APIError,
    errors=(
        ErrorCase("bad_request", "BadRequestError", 400, "invalid_value", "bad_request"),
        ErrorCase("content_filter", "BadRequestError", 400, "content_filter", "content_filter"),
        ErrorCase("unauthorized", "AuthenticationError", 401, "invalid_api_key", "auth"),
        ErrorCase("forbidden", "PermissionDeniedError", 403, "unsupported_country_region_territory", "auth"),
        ErrorCase("not_found", "NotFoundError", 404, "model_not_found", "not_found"),
        # No `code` in the body: the provider code is its `type`.
        ErrorCase("conflict", "ConflictError", 409, "invalid_request_error", "bad_request"),
        ErrorCase("unprocessable", "UnprocessableEntityError", 422, "invalid_request_error", "bad_request"),
        ErrorCase("rate_limit", "RateLimitError", 429, "rate_limit_exceeded", "rate_limit"),
        ErrorCase("insufficient_quota", "RateLimitError", 429, "insufficient_quota", "quota"),
        ErrorCase("server_error", "InternalServerError", 500, "server_error", "server"),
        ErrorCase("overloaded", "InternalServerError", 503, "server_error", "server"),
    ),
    stream_errors=(ErrorCase("stream_error", "APIError", 200, "server_error", "other"),),
    sdk_files=("openai/_base_client.py",),
    timeout_error="APITimeoutError",
    connection_error="APIConnectionError",
    connection_cause="ConnectError",
    connection_link=DIRECT_CAUSE,
    echoes=(Echo("unauthorized", API_KEY, "Incorrect API key provided: [REDACTED]"),),
    secrets=(API_KEY, "TESTKEY"),
    retried=("overloaded", "overloaded"),
    not_retried="not_found",
    retries=True,
    failures=("not_found", "rate_limit"),
    result_made_by=Made(openai_base.SyncAPIClient, "request", returned),
    error_made_by=Made(openai_base.SyncAPIClient, "_make_status_error_from_response", returned),
    patched=lambda: (
        openai_chat.Completions.create,
        openai_chat.AsyncCompletions.create,
        openai_base.BaseClient._build_request,
    ),
    async_client=openai_async_client,
    acall=async_chat_completions_create,
    aopen_stream=async_chat_completions_stream,
    is_sdk_async_stream=lambda opened: type(opened) is openai.AsyncStream,
    stream_with=True,
)

# --- Anthropic ---------------------------------------------------------------------------------------

ANTHROPIC_MODEL = anthropic_server.DEFAULT_MODEL


def _anthropic_options(attempts: int, timeout: float | None, tracer_provider: Any) -> dict[str, Any]:
    """The SDK's own tracing on, into the test's tracer provider: every test then proves one span per call."""
    options: dict[str, Any] = {"api_key": ANTHROPIC_API_KEY, "max_retries": attempts - 1}
    if ANTHROPIC_SDK_TRACES and tracer_provider is not None:
        options["open_telemetry"] = {"tracer_provider": tracer_provider}
    return options if timeout is None else {**options, "timeout": timeout}


def anthropic_client(
    base_url: str, *, attempts: int = 1, timeout: float | None = None, tracer_provider: Any = None
) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, **_anthropic_options(attempts, timeout, tracer_provider))


def anthropic_async_client(
    base_url: str, *, attempts: int = 1, timeout: float | None = None, tracer_provider: Any = None
) -> anthropic.AsyncAnthropic:
    options = _anthropic_options(attempts, timeout, tracer_provider)
    return anthropic.AsyncAnthropic(base_url=base_url, **options)


def messages_create(client: anthropic.Anthropic) -> Any:
    return client.messages.create(model=ANTHROPIC_MODEL, max_tokens=256, messages=MESSAGES)


async def async_messages_create(client: anthropic.AsyncAnthropic) -> Any:
    return await client.messages.create(model=ANTHROPIC_MODEL, max_tokens=256, messages=MESSAGES)


def messages_stream(client: anthropic.Anthropic) -> Any:
    return client.messages.create(model=ANTHROPIC_MODEL, max_tokens=256, messages=MESSAGES, stream=True)


async def async_messages_stream(client: anthropic.AsyncAnthropic) -> Any:
    return await client.messages.create(model=ANTHROPIC_MODEL, max_tokens=256, messages=MESSAGES, stream=True)


def _anthropic_text(events: list[Any]) -> str:
    return "".join(event.delta.text for event in events if event.type == "content_block_delta")


def _anthropic_error(*candidates: str) -> str:
    """The SDK's class for an error: 2.x names some that 1.x folds into a broader class."""
    return next(name for name in candidates if hasattr(anthropic, name))


ANTHROPIC = ProviderCase(
    name="anthropic",
    provider_name="anthropic",
    operation="chat",
    model=ANTHROPIC_MODEL,
    fake=FakeAnthropic,
    provider=AnthropicProvider,
    client=anthropic_client,
    call=messages_create,
    open_stream=messages_stream,
    text_of=_anthropic_text,
    request_id=http_request_id("request-id"),
    stream_request_id=lambda opened, chunks: http_request_id("request-id")(opened),
    request_id_pattern=r"req_011C[1-9A-HJ-NP-Za-km-z]{20}",
    response_id=lambda result: result.id,
    stream_response_id=lambda events: events[0].message.id if events else None,
    provider_code_of=lambda error: getattr(error, "type", None),
    status_of=status_code,
    message_prefix=lambda status, code: (
        f"Error code: {status} - {{'type': 'error', 'error': {{'type': '{code}'"
    ),
    is_sdk_stream=lambda opened: type(opened) is anthropic.Stream,
    response_model=anthropic_server.SNAPSHOTS[ANTHROPIC_MODEL],
    call_status=None,
    stream_status=200,
    finish_reasons=("end_turn",),
    # Input tokens as the semantic conventions count them for Anthropic: cache reads included.
    tokens={
        "input": anthropic_server.USAGE_IN + anthropic_server.USAGE_CACHE_READ,
        "output": anthropic_server.USAGE_OUT,
        "cache_read": anthropic_server.USAGE_CACHE_READ,
        "cache_creation": 0,
    },
    error_base=anthropic.APIError,
    errors=(
        ErrorCase("bad_request", "BadRequestError", 400, "invalid_request_error", "bad_request"),
        ErrorCase("unauthorized", "AuthenticationError", 401, "authentication_error", "auth"),
        ErrorCase(
            "billing",
            _anthropic_error("PaymentRequiredError", "APIStatusError"),
            402,
            "billing_error",
            "quota",
        ),
        ErrorCase("forbidden", "PermissionDeniedError", 403, "permission_error", "auth"),
        ErrorCase("not_found", "NotFoundError", 404, "not_found_error", "not_found"),
        ErrorCase(
            "request_too_large",
            _anthropic_error("ContentTooLargeError", "RequestTooLargeError"),
            413,
            "request_too_large",
            "bad_request",
        ),
        ErrorCase("rate_limit", "RateLimitError", 429, "rate_limit_error", "rate_limit"),
        ErrorCase("api_error", "InternalServerError", 500, "api_error", "server"),
        ErrorCase(
            "timeout_error",
            _anthropic_error("GatewayTimeoutError", "InternalServerError"),
            504,
            "timeout_error",
            "timeout",
        ),
        ErrorCase("overloaded", "OverloadedError", 529, "overloaded_error", "server"),
    ),
    # The event's error type says what failed, not the 200 the stream opened with.
    stream_errors=(ErrorCase("stream_error", "APIStatusError", 200, "overloaded_error", "server"),),
    sdk_files=("anthropic/_base_client.py",),
    timeout_error="APITimeoutError",
    connection_error="APIConnectionError",
    connection_cause="ConnectError",
    connection_link=DIRECT_CAUSE,
    echoes=(Echo("unauthorized", None, "invalid x-api-key"),),
    secrets=(ANTHROPIC_API_KEY, "TESTKEY"),
    retried=("overloaded", "overloaded"),
    not_retried="not_found",
    retries=True,
    failures=("not_found", "overloaded"),
    result_made_by=Made(anthropic_base.SyncAPIClient, "request", returned),
    error_made_by=Made(anthropic_base.SyncAPIClient, "_make_status_error_from_response", returned),
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
    async_client=anthropic_async_client,
    acall=async_messages_create,
    aopen_stream=async_messages_stream,
    is_sdk_async_stream=lambda opened: type(opened) is anthropic.AsyncStream,
    stream_with=True,
)

# --- Google ------------------------------------------------------------------------------------------

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


def generate_content(client: genai.Client) -> Any:
    return client.models.generate_content(model=GOOGLE_MODEL, contents=PROMPT)


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

# --- AWS Bedrock (Converse) --------------------------------------------------------------------------

BEDROCK_MODEL = bedrock_server.CLAUDE
_BEDROCK_MESSAGES = [{"role": "user", "content": [{"text": PROMPT}]}]


def bedrock_client(
    base_url: str, *, attempts: int = 1, timeout: float | None = None, tracer_provider: Any = None
) -> Any:
    options: dict[str, Any] = {"retries": {"mode": "standard", "total_max_attempts": attempts}}
    return make_bedrock_client(base_url, **options, **({} if timeout is None else {"read_timeout": timeout}))


def converse(client: Any) -> Any:
    return client.converse(modelId=BEDROCK_MODEL, messages=_BEDROCK_MESSAGES)


def converse_stream(client: Any) -> Any:
    return client.converse_stream(modelId=BEDROCK_MODEL, messages=_BEDROCK_MESSAGES)


def _bedrock_metadata(value: Any) -> dict[str, Any]:
    response = value.response if isinstance(value, BaseException) else value
    return response.get("ResponseMetadata", {})  # type: ignore[no-any-return]


def _bedrock_text(events: list[Any]) -> str:
    return "".join(
        event["contentBlockDelta"]["delta"]["text"] for event in events if "contentBlockDelta" in event
    )


def _bedrock_tokens() -> dict[str, int]:
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
    text_of=_bedrock_text,
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
    tokens=_bedrock_tokens(),
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


# --- AWS Bedrock (InvokeModel, Anthropic Messages bodies) --------------------------------------------

_INVOKE_BODY = json.dumps(
    {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 256, "messages": _BEDROCK_MESSAGES}
).encode()
# The last response and the body read from it (kept alive: a call must end on the body's read, not on
# the response's collection).
_BODIES: dict[int, tuple[Any, Any]] = {}


def invoke_model(client: Any) -> Any:
    """invoke_model as the AWS examples use it: the body read at once (kept, for the response id)."""
    return _read_body(client.invoke_model(modelId=BEDROCK_MODEL, body=_INVOKE_BODY))


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
