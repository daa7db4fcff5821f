"""Every failure of a real anthropic call is recorded with what failed, why, and where it was called."""

from __future__ import annotations

import socket

import anthropic
import pytest
from opentelemetry.trace import SpanKind, StatusCode

import otel_aitrack
from otel_aitrack import names
from tests.conftest import ANTHROPIC_API_KEY, Telemetry, anthropic_options
from tests.fakes.anthropic_server import TOKENS_COUNTED, USAGE_CACHE_READ, USAGE_IN, USAGE_OUT, FakeAnthropic
from tests.support import attrs, event

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "Summarize ticket #42"}]


def _error(*candidates: str) -> type[Exception]:
    """The SDK's class for an error: 2.x names some that 1.x folds into a broader class."""
    return next(getattr(anthropic, name) for name in candidates if hasattr(anthropic, name))


# scenario, exception class, HTTP status, provider code (the body's error.type), category
ERROR_CASES = [
    ("bad_request", anthropic.BadRequestError, 400, "invalid_request_error", "bad_request"),
    ("unauthorized", anthropic.AuthenticationError, 401, "authentication_error", "auth"),
    ("billing", _error("PaymentRequiredError", "APIStatusError"), 402, "billing_error", "quota"),
    ("forbidden", anthropic.PermissionDeniedError, 403, "permission_error", "auth"),
    ("not_found", anthropic.NotFoundError, 404, "not_found_error", "not_found"),
    (
        "request_too_large",
        _error("ContentTooLargeError", "RequestTooLargeError"),
        413,
        "request_too_large",
        "bad_request",
    ),
    ("rate_limit", anthropic.RateLimitError, 429, "rate_limit_error", "rate_limit"),
    ("api_error", anthropic.InternalServerError, 500, "api_error", "server"),
    ("timeout_error", _error("GatewayTimeoutError", "InternalServerError"), 504, "timeout_error", "timeout"),
    ("overloaded", anthropic.OverloadedError, 529, "overloaded_error", "server"),
]


def summarize_ticket(client: anthropic.Anthropic, model: str = MODEL) -> anthropic.types.Message:
    """The user's call site: it must show up in the exported traceback."""
    with otel_aitrack.track("summarize_ticket", task="summarize a ticket", user="agent-7"):
        return client.messages.create(model=model, max_tokens=256, messages=MESSAGES)


def test_success_records_the_genai_attributes(
    anthropic_client: anthropic.Anthropic, telemetry: Telemetry
) -> None:
    message = summarize_ticket(anthropic_client)
    span = telemetry.span()
    a = attrs(span)
    assert span.name == "chat claude-haiku-4-5"
    assert span.kind is SpanKind.CLIENT
    assert span.instrumentation_scope.name == "otel_aitrack"
    assert span.status.status_code is StatusCode.UNSET
    assert a[names.GEN_AI_OPERATION_NAME] == "chat"
    assert a[names.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert a[names.GEN_AI_REQUEST_MODEL] == MODEL
    assert a[names.GEN_AI_RESPONSE_MODEL] == message.model == "claude-haiku-4-5-20251001"
    assert a[names.GEN_AI_RESPONSE_ID] == message.id
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    # Input tokens as the semantic conventions count them for Anthropic: cache reads included.
    assert message.usage.input_tokens == USAGE_IN
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] == USAGE_IN + USAGE_CACHE_READ
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == message.usage.output_tokens == USAGE_OUT
    assert a[names.SERVER_ADDRESS] == "127.0.0.1"
    assert isinstance(a[names.SERVER_PORT], int)
    assert a[names.GEN_AI_PROMPT_NAME] == "summarize_ticket"
    assert a[names.AITRACK_TASK] == "summarize a ticket"
    assert a[names.USER_ID] == "agent-7"
    assert a[names.AITRACK_REQUEST_ID] == message._request_id
    assert a[names.AITRACK_REQUEST_ID].startswith("req_")
    assert names.ERROR_TYPE not in a
    assert not span.events


@pytest.mark.parametrize(("scenario", "error_class", "status", "code", "category"), ERROR_CASES)
def test_each_http_error_records_code_status_provider_code_category_and_request_id(
    anthropic_client: anthropic.Anthropic,
    anthropic_fake: FakeAnthropic,
    telemetry: Telemetry,
    scenario: str,
    error_class: type[Exception],
    status: int,
    code: str,
    category: str,
) -> None:
    anthropic_fake.plan(scenario)
    with pytest.raises(error_class) as raised:
        summarize_ticket(anthropic_client)
    span = telemetry.span()
    a = attrs(span)
    assert a[names.ERROR_TYPE] == type(raised.value).__name__
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == status
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == code == raised.value.type
    assert a[names.AITRACK_ERROR_CATEGORY] == category
    assert a[names.AITRACK_REQUEST_ID] == raised.value.request_id
    assert a[names.AITRACK_REQUEST_ID].startswith("req_")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description.startswith(f"Error code: {status}")  # the message alone, no error.type
    assert a[names.AITRACK_ERROR_MESSAGE].startswith(f"Error code: {status}")
    assert f"'type': '{code}'" in a[names.AITRACK_ERROR_MESSAGE]
    stats = otel_aitrack.stats()["summarize_ticket"]
    assert (stats.total_failed_calls, stats.last_error_code) == (1, type(raised.value).__name__)


def test_failure_traceback_runs_from_the_callers_through_the_sdk_to_the_raise(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("not_found")
    with pytest.raises(anthropic.NotFoundError):
        summarize_ticket(anthropic_client, model="claude-x")
    text = attrs(telemetry.span())[names.AITRACK_ERROR_TRACEBACK]
    assert text.startswith("Traceback (most recent call last):\n")
    assert "in test_failure_traceback_runs_from_the_callers_through_the_sdk_to_the_raise" in text
    assert "in summarize_ticket\n    return client.messages.create(model=model" in text
    assert "anthropic/_base_client.py" in text
    assert "otel_aitrack" not in text
    last = text.rstrip().splitlines()[-1]
    assert last.startswith("anthropic.NotFoundError: Error code: 404")
    assert "model: claude-x" in last
    assert text.index("in summarize_ticket") < text.index("_base_client.py")


def test_the_exception_is_recorded_as_a_span_event_redacted(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("unauthorized")
    with pytest.raises(anthropic.AuthenticationError):
        summarize_ticket(anthropic_client)
    span = telemetry.span()
    exception = event(span, "exception")
    assert exception["exception.type"] == "anthropic.AuthenticationError"
    assert exception["exception.message"] == attrs(span)[names.AITRACK_ERROR_MESSAGE]
    assert exception["exception.stacktrace"] == attrs(span)[names.AITRACK_ERROR_TRACEBACK]
    exported = [str(span.status.description), *map(str, attrs(span).values()), *map(str, exception.values())]
    assert all("TESTKEY" not in text for text in exported)


def test_client_timeout_is_a_timeout_failure_without_status(
    anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    client = anthropic.Anthropic(
        base_url=anthropic_fake.base_url, api_key=ANTHROPIC_API_KEY, max_retries=0, timeout=0.2
    )
    anthropic_fake.plan("slow")
    with pytest.raises(anthropic.APITimeoutError):
        summarize_ticket(client)
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == "APITimeoutError"
    assert a[names.AITRACK_ERROR_CATEGORY] == "timeout"
    assert names.HTTP_RESPONSE_STATUS_CODE not in a
    assert names.AITRACK_ERROR_PROVIDER_CODE not in a
    assert "Timeout" in a[names.AITRACK_ERROR_TRACEBACK]  # the chained transport timeout


def test_connection_refused_is_a_connection_failure_with_its_cause(telemetry: Telemetry) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = anthropic.Anthropic(
        base_url=f"http://127.0.0.1:{port}", api_key=ANTHROPIC_API_KEY, max_retries=0
    )
    with pytest.raises(anthropic.APIConnectionError):
        summarize_ticket(client)
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == "APIConnectionError"
    assert a[names.AITRACK_ERROR_CATEGORY] == "connection"
    assert (
        "The above exception was the direct cause of the following exception"
        in a[names.AITRACK_ERROR_TRACEBACK]
    )
    assert "ConnectError" in a[names.AITRACK_ERROR_TRACEBACK]


def test_sdk_retries_of_529_are_one_span_with_the_resend_count(
    anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    client = anthropic.Anthropic(
        base_url=anthropic_fake.base_url,
        api_key=ANTHROPIC_API_KEY,
        max_retries=2,
        **anthropic_options(telemetry),
    )
    anthropic_fake.reset()
    anthropic_fake.plan("overloaded", "overloaded", "ok")
    summarize_ticket(client)
    span = telemetry.span()
    assert attrs(span)[names.HTTP_REQUEST_RESEND_COUNT] == 2
    assert span.status.status_code is StatusCode.UNSET
    assert len(anthropic_fake.requests) == 3
    assert telemetry.value(names.METRIC_CALLS, gen_ai__prompt__name="summarize_ticket") == 1
    assert otel_aitrack.stats()["summarize_ticket"].total_failed_calls == 0


def test_exhausted_retries_are_one_failed_span(anthropic_fake: FakeAnthropic, telemetry: Telemetry) -> None:
    client = anthropic.Anthropic(
        base_url=anthropic_fake.base_url,
        api_key=ANTHROPIC_API_KEY,
        max_retries=2,
        **anthropic_options(telemetry),
    )
    anthropic_fake.plan("overloaded", "overloaded", "overloaded")
    with pytest.raises(anthropic.OverloadedError):
        summarize_ticket(client)
    a = attrs(telemetry.span())
    assert a[names.HTTP_REQUEST_RESEND_COUNT] == 2
    assert a[names.ERROR_TYPE] == "OverloadedError"
    assert a[names.AITRACK_ERROR_CATEGORY] == "server"
    assert otel_aitrack.stats()["summarize_ticket"].total_failed_calls == 1


def test_no_resend_count_without_retries(anthropic_client: anthropic.Anthropic, telemetry: Telemetry) -> None:
    summarize_ticket(anthropic_client)
    assert names.HTTP_REQUEST_RESEND_COUNT not in attrs(telemetry.span())


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


def test_count_tokens_is_its_own_operation_and_reports_no_usage(
    anthropic_client: anthropic.Anthropic, telemetry: Telemetry
) -> None:
    with otel_aitrack.track("budget"):
        counted = anthropic_client.messages.count_tokens(model=MODEL, messages=MESSAGES)
    assert counted.input_tokens == TOKENS_COUNTED
    span = telemetry.span()
    a = attrs(span)
    assert span.name == "count_tokens claude-haiku-4-5"
    assert a[names.GEN_AI_OPERATION_NAME] == "count_tokens"
    assert a[names.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert a[names.AITRACK_REQUEST_ID].startswith("req_")
    assert names.GEN_AI_USAGE_INPUT_TOKENS not in a, "a count is not usage"
    assert telemetry.points(names.METRIC_TOKEN_USAGE) == []
    assert telemetry.value(names.METRIC_CALLS, gen_ai__operation__name="count_tokens") == 1


def test_count_tokens_failure(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("not_found")
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.beta.messages.count_tokens(model="claude-x", messages=MESSAGES)
    a = attrs(telemetry.span())
    assert a[names.GEN_AI_OPERATION_NAME] == "count_tokens"
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == "not_found_error"
    assert a[names.AITRACK_ERROR_CATEGORY] == "not_found"
