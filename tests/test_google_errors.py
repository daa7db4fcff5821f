"""Every failure of a real google-genai call is recorded with what failed, why, and where it was called."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from google import genai
from google.genai import _api_client, errors, types
from opentelemetry.trace import SpanKind, StatusCode

import otel_aitrack
from otel_aitrack import names
from otel_aitrack.redaction import REDACTED, Redactor
from tests.conftest import Telemetry
from tests.fakes.google_server import API_KEY, CANDIDATES_TOKENS, PROMPT_TOKENS, THOUGHTS_TOKENS, FakeGoogle
from tests.support import attrs, event

MODEL = "gemini-2.5-flash"
CONTENTS = "Summarize ticket #42"
# The SDK retries only when asked to (`HttpRetryOptions`, absent in google-genai 1.20).
retries = pytest.mark.skipif(not hasattr(types, "HttpRetryOptions"), reason="this SDK does not retry")


@pytest.fixture(scope="module")
def google_fake() -> Iterator[FakeGoogle]:
    with FakeGoogle() as server:
        yield server


def make_client(fake: FakeGoogle, **options: object) -> genai.Client:
    return genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=fake.base_url, **options))


def retrying_client(fake: FakeGoogle) -> genai.Client:
    """Three attempts, milliseconds apart."""
    options = types.HttpRetryOptions(attempts=3, initial_delay=0.001, max_delay=0.005, jitter=0)
    return make_client(fake, retry_options=options)


@pytest.fixture
def client(google_fake: FakeGoogle, telemetry: Telemetry) -> genai.Client:
    google_fake.reset()
    return make_client(google_fake)


# scenario, exception class, HTTP status, provider code (the body's status), category
ERROR_CASES = [
    ("invalid_argument", errors.ClientError, 400, "INVALID_ARGUMENT", "bad_request"),
    ("api_key_invalid", errors.ClientError, 400, "INVALID_ARGUMENT", "auth"),
    ("unauthenticated", errors.ClientError, 401, "UNAUTHENTICATED", "auth"),
    ("permission_denied", errors.ClientError, 403, "PERMISSION_DENIED", "auth"),
    ("not_found", errors.ClientError, 404, "NOT_FOUND", "not_found"),
    ("rate_limit", errors.ClientError, 429, "RESOURCE_EXHAUSTED", "rate_limit"),
    ("quota_exhausted", errors.ClientError, 429, "RESOURCE_EXHAUSTED", "quota"),
    ("internal", errors.ServerError, 500, "INTERNAL", "server"),
    ("unavailable", errors.ServerError, 503, "UNAVAILABLE", "server"),
    ("deadline_exceeded", errors.ServerError, 504, "DEADLINE_EXCEEDED", "timeout"),
]


def summarize_ticket(client: genai.Client, model: str = MODEL) -> types.GenerateContentResponse:
    """The user's call site: it must show up in the exported traceback."""
    with otel_aitrack.track("summarize_ticket", task="summarize a ticket", user="agent-7"):
        return client.models.generate_content(model=model, contents=CONTENTS)


def test_success_records_the_genai_attributes(client: genai.Client, telemetry: Telemetry) -> None:
    response = summarize_ticket(client)
    span = telemetry.span()
    a = attrs(span)
    assert span.name == "generate_content gemini-2.5-flash"
    assert span.kind is SpanKind.CLIENT
    assert span.instrumentation_scope.name == "otel_aitrack"
    assert span.status.status_code is StatusCode.UNSET
    assert a[names.GEN_AI_OPERATION_NAME] == "generate_content"
    assert a[names.GEN_AI_PROVIDER_NAME] == "gcp.gemini"
    assert a[names.GEN_AI_REQUEST_MODEL] == MODEL
    assert a[names.GEN_AI_RESPONSE_MODEL] == response.model_version == MODEL
    # google-genai 1.20 drops the body's responseId (later versions keep it): then neither is set.
    assert a.get(names.GEN_AI_RESPONSE_ID) == response.response_id
    assert a.get(names.AITRACK_REQUEST_ID) == response.response_id, "Google's one id: responseId"
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == ("STOP",)
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] == response.usage_metadata.prompt_token_count == PROMPT_TOKENS
    # Output tokens as billed: the candidates' and the thinking's.
    assert response.usage_metadata.candidates_token_count == CANDIDATES_TOKENS
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == CANDIDATES_TOKENS + THOUGHTS_TOKENS
    assert a[names.SERVER_ADDRESS] == "127.0.0.1"
    assert isinstance(a[names.SERVER_PORT], int)
    assert a[names.GEN_AI_PROMPT_NAME] == "summarize_ticket"
    assert a[names.AITRACK_TASK] == "summarize a ticket"
    assert a[names.USER_ID] == "agent-7"
    assert names.ERROR_TYPE not in a
    assert names.HTTP_REQUEST_RESEND_COUNT not in a
    assert not span.events


def test_an_alias_records_the_model_version_that_answered(client: genai.Client, telemetry: Telemetry) -> None:
    client.models.generate_content(model="gemini-flash-latest", contents=CONTENTS)
    a = attrs(telemetry.span())
    assert a[names.GEN_AI_REQUEST_MODEL] == "gemini-flash-latest"
    assert a[names.GEN_AI_RESPONSE_MODEL] == "gemini-2.5-flash-preview-09-2025"


@pytest.mark.parametrize(("scenario", "error_class", "status", "code", "category"), ERROR_CASES)
def test_each_http_error_records_code_status_provider_code_and_category(
    client: genai.Client,
    google_fake: FakeGoogle,
    telemetry: Telemetry,
    scenario: str,
    error_class: type[errors.APIError],
    status: int,
    code: str,
    category: str,
) -> None:
    google_fake.plan(scenario)
    with pytest.raises(error_class) as raised:
        summarize_ticket(client)
    span = telemetry.span()
    a = attrs(span)
    assert a[names.ERROR_TYPE] == type(raised.value).__name__
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == status == raised.value.code
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == code == raised.value.status
    assert a[names.AITRACK_ERROR_CATEGORY] == category
    assert names.AITRACK_REQUEST_ID not in a, "Google's error answers carry no request id"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description.startswith(f"{status} {code}. ")  # the message alone, no error.type
    assert a[names.AITRACK_ERROR_MESSAGE].startswith(f"{status} {code}. {{'error': {{'code': {status}")
    stats = otel_aitrack.stats()["summarize_ticket"]
    assert (stats.total_failed_calls, stats.last_error_code) == (1, type(raised.value).__name__)


def test_failure_traceback_runs_from_the_callers_through_the_sdk_to_the_raise(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("not_found")
    with pytest.raises(errors.ClientError):
        summarize_ticket(client, model="gemini-x")
    text = attrs(telemetry.span())[names.AITRACK_ERROR_TRACEBACK]
    assert text.startswith("Traceback (most recent call last):\n")
    assert "in test_failure_traceback_runs_from_the_callers_through_the_sdk_to_the_raise" in text
    assert "in summarize_ticket\n    return client.models.generate_content(model=model" in text
    assert "google/genai/models.py" in text
    assert "google/genai/_api_client.py" in text
    assert "otel_aitrack" not in text
    last = text.rstrip().splitlines()[-1]
    assert last.startswith("google.genai.errors.ClientError: 404 NOT_FOUND.")
    assert "models/gemini-x is not found" in last
    assert text.index("in summarize_ticket") < text.index("google/genai/models.py")


def test_an_api_key_echoed_by_the_error_is_redacted_everywhere(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("permission_denied")
    with pytest.raises(errors.ClientError) as raised:
        summarize_ticket(client)
    assert API_KEY in str(raised.value), "the API echoes the key: the user's exception keeps it"
    span = telemetry.span()
    exception = event(span, "exception")
    assert exception["exception.type"] == "google.genai.errors.ClientError"
    assert exception["exception.message"] == attrs(span)[names.AITRACK_ERROR_MESSAGE]
    assert exception["exception.stacktrace"] == attrs(span)[names.AITRACK_ERROR_TRACEBACK]
    stats = otel_aitrack.stats()["summarize_ticket"]
    exported = [
        str(span.status.description),
        *map(str, attrs(span).values()),
        *map(str, exception.values()),
        stats.last_error_message,
        stats.last_error_traceback,
    ]
    assert all(API_KEY not in text and "TESTKEY" not in text for text in exported)
    assert "Consumer 'api_key:[REDACTED]' has been suspended" in attrs(span)[names.AITRACK_ERROR_MESSAGE]


@pytest.mark.parametrize(
    "text",
    [
        f"API key {API_KEY} was reported as leaked.",
        f"https://generativelanguage.googleapis.com/v1beta/models?key={API_KEY}",
        f"headers: {{'x-goog-api-key': '{API_KEY}'}}",
    ],
)
def test_a_google_api_key_is_redacted_wherever_it_stands(text: str) -> None:
    out = Redactor().redact(text)
    assert API_KEY not in out
    assert "TESTKEY" not in out
    assert REDACTED in out


def test_a_word_that_merely_contains_the_key_prefix_is_left_alone() -> None:
    text = "xAIzaSyNotAKeyBecauseItStartsInsideAWord1234567 and AIzaShort"
    assert Redactor().redact(text) == text


def test_client_timeout_is_a_timeout_failure_without_status(
    google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    client = make_client(google_fake, timeout=200)  # milliseconds
    google_fake.plan("slow")
    with pytest.raises(Exception) as raised:
        summarize_ticket(client)
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == type(raised.value).__name__ == "ReadTimeout"
    assert a[names.AITRACK_ERROR_CATEGORY] == "timeout"
    assert names.HTTP_RESPONSE_STATUS_CODE not in a
    assert names.AITRACK_ERROR_PROVIDER_CODE not in a
    assert "in summarize_ticket" in a[names.AITRACK_ERROR_TRACEBACK]


def test_connection_refused_is_a_connection_failure(telemetry: Telemetry) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = genai.Client(api_key=API_KEY, http_options={"base_url": f"http://127.0.0.1:{port}"})
    with pytest.raises(Exception) as raised:
        summarize_ticket(client)
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == type(raised.value).__name__ == "ConnectError"
    assert a[names.AITRACK_ERROR_CATEGORY] == "connection"
    assert a[names.SERVER_PORT] == port
    assert "ConnectError" in a[names.AITRACK_ERROR_TRACEBACK].rstrip().splitlines()[-1]


async def test_async_connection_refused_is_a_connection_failure(telemetry: Telemetry) -> None:
    """On httpx (`ConnectError`) and, when aiohttp is installed, on aiohttp (`ClientConnectorError`)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = genai.Client(api_key=API_KEY, http_options={"base_url": f"http://127.0.0.1:{port}"})
    with pytest.raises(Exception) as raised:
        await client.aio.models.generate_content(model=MODEL, contents=CONTENTS)
    transport = "aiohttp" if getattr(_api_client, "has_aiohttp", False) else "httpx"
    assert type(raised.value).__module__.startswith(transport)
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == type(raised.value).__name__
    assert a[names.AITRACK_ERROR_CATEGORY] == "connection"
    assert "in test_async_connection_refused_is_a_connection_failure" in a[names.AITRACK_ERROR_TRACEBACK]


@retries
async def test_async_sdk_retries_are_one_span(google_fake: FakeGoogle, telemetry: Telemetry) -> None:
    client = retrying_client(google_fake)
    google_fake.reset()
    google_fake.plan("unavailable", "ok")
    await client.aio.models.generate_content(model=MODEL, contents=CONTENTS)
    assert len(google_fake.requests) == 2
    a = attrs(telemetry.span())
    assert a[names.HTTP_REQUEST_RESEND_COUNT] == 1
    assert names.ERROR_TYPE not in a


@retries
def test_sdk_retries_are_one_span(google_fake: FakeGoogle, telemetry: Telemetry) -> None:
    client = retrying_client(google_fake)
    google_fake.reset()
    google_fake.plan("unavailable", "rate_limit", "ok")
    summarize_ticket(client)
    span = telemetry.span()
    assert span.status.status_code is StatusCode.UNSET
    assert len(google_fake.requests) == 3
    assert telemetry.value(names.METRIC_CALLS, gen_ai__prompt__name="summarize_ticket") == 1
    assert otel_aitrack.stats()["summarize_ticket"].total_failed_calls == 0


@retries
def test_sdk_retries_carry_the_resend_count(google_fake: FakeGoogle, telemetry: Telemetry) -> None:
    client = retrying_client(google_fake)
    google_fake.reset()
    google_fake.plan("unavailable", "unavailable", "ok")
    summarize_ticket(client)
    assert attrs(telemetry.span()).get(names.HTTP_REQUEST_RESEND_COUNT) == 2


@retries
def test_exhausted_retries_are_one_failed_span(google_fake: FakeGoogle, telemetry: Telemetry) -> None:
    client = retrying_client(google_fake)
    google_fake.reset()
    google_fake.plan("unavailable", "unavailable", "unavailable")
    with pytest.raises(errors.ServerError):
        summarize_ticket(client)
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == "ServerError"
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == "UNAVAILABLE"
    assert a[names.AITRACK_ERROR_CATEGORY] == "server"
    assert len(google_fake.requests) == 3
    assert otel_aitrack.stats()["summarize_ticket"].total_failed_calls == 1


@retries
def test_an_error_the_sdk_does_not_retry_is_sent_once(google_fake: FakeGoogle, telemetry: Telemetry) -> None:
    client = retrying_client(google_fake)
    google_fake.reset()
    google_fake.plan("not_found", "ok")
    with pytest.raises(errors.ClientError):
        summarize_ticket(client)
    assert len(google_fake.requests) == 1
    assert attrs(telemetry.span())[names.AITRACK_ERROR_CATEGORY] == "not_found"


def test_a_blocked_prompt_is_returned_and_recorded_with_its_block_reason(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("prompt_blocked")
    response = summarize_ticket(client)
    assert response.candidates is None
    assert response.prompt_feedback is not None and response.prompt_feedback.block_reason == "SAFETY"
    span = telemetry.span()
    a = attrs(span)
    assert span.status.status_code is StatusCode.UNSET, "the SDK returned it: not a failed call"
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == ("SAFETY",)
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert names.GEN_AI_USAGE_OUTPUT_TOKENS not in a, "nothing was generated"
    assert otel_aitrack.stats()["summarize_ticket"].total_failed_calls == 0


def test_automatic_function_calling_is_one_span_and_its_second_request_no_resend(
    google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    calls: list[int] = []

    def get_ticket(ticket_id: int) -> str:
        """Reads a support ticket."""
        calls.append(ticket_id)
        return "The printer is on fire."

    # google-genai 1.x reads the annotations as types, and this module's are strings (`__future__`).
    get_ticket.__annotations__ = {"ticket_id": int, "return": str}

    can_retry = hasattr(types, "HttpRetryOptions")
    client = retrying_client(google_fake) if can_retry else make_client(google_fake)
    google_fake.reset()
    google_fake.plan("function_call", "ok")
    with otel_aitrack.track("summarize_ticket"):
        response = client.models.generate_content(
            model=MODEL, contents=CONTENTS, config=types.GenerateContentConfig(tools=[get_ticket])
        )
    assert calls == [42], "the SDK ran the function the model asked for"
    assert len(google_fake.requests) == 2
    a = attrs(telemetry.span())
    assert a.get(names.GEN_AI_RESPONSE_ID) == response.response_id, "the final answer's"
    assert names.HTTP_REQUEST_RESEND_COUNT not in a, "a second request is not a resend of the first"
    assert otel_aitrack.stats()["summarize_ticket"].total_calls == 1
