"""Every failure of a real openai call is recorded with what failed, why, and where it was called."""

from __future__ import annotations

import socket

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

import otel_aitrack
from otel_aitrack import names
from tests.conftest import API_KEY, Telemetry, instrumented
from tests.fakes.openai_server import FakeOpenAI
from tests.support import attrs, event

MESSAGES = [{"role": "user", "content": "Summarize ticket #42"}]

# scenario, exception class, HTTP status, provider code, category
ERROR_CASES = [
    ("bad_request", openai.BadRequestError, 400, "invalid_value", "bad_request"),
    ("content_filter", openai.BadRequestError, 400, "content_filter", "content_filter"),
    ("unauthorized", openai.AuthenticationError, 401, "invalid_api_key", "auth"),
    ("forbidden", openai.PermissionDeniedError, 403, "unsupported_country_region_territory", "auth"),
    ("not_found", openai.NotFoundError, 404, "model_not_found", "not_found"),
    ("conflict", openai.ConflictError, 409, None, "bad_request"),
    ("unprocessable", openai.UnprocessableEntityError, 422, None, "bad_request"),
    ("rate_limit", openai.RateLimitError, 429, "rate_limit_exceeded", "rate_limit"),
    ("insufficient_quota", openai.RateLimitError, 429, "insufficient_quota", "quota"),
    ("server_error", openai.InternalServerError, 500, "server_error", "server"),
    ("overloaded", openai.InternalServerError, 503, "server_error", "server"),
]


def summarize_ticket(client: openai.OpenAI, model: str = "gpt-4o-mini") -> object:
    """The user's call site: it must show up in the exported traceback."""
    with otel_aitrack.track("summarize_ticket", task="summarize a ticket", user="agent-7"):
        return client.chat.completions.create(model=model, messages=MESSAGES)


def test_success_records_the_genai_attributes(client: openai.OpenAI, telemetry: Telemetry) -> None:
    completion = summarize_ticket(client)
    span = telemetry.span()
    a = attrs(span)
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert a[names.GEN_AI_OPERATION_NAME] == "chat"
    assert a[names.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[names.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert a[names.GEN_AI_RESPONSE_MODEL] == completion.model
    assert a[names.GEN_AI_RESPONSE_ID] == completion.id
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] == completion.usage.prompt_tokens
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == completion.usage.completion_tokens
    assert a[names.SERVER_ADDRESS] == "127.0.0.1"
    assert isinstance(a[names.SERVER_PORT], int)
    assert a[names.GEN_AI_PROMPT_NAME] == "summarize_ticket"
    assert a[names.AITRACK_TASK] == "summarize a ticket"
    assert a[names.USER_ID] == "agent-7"
    assert a[names.AITRACK_REQUEST_ID] == completion._request_id
    assert names.ERROR_TYPE not in a
    assert not span.events


@pytest.mark.parametrize(("scenario", "error_class", "status", "code", "category"), ERROR_CASES)
def test_each_http_error_records_code_status_provider_code_category_and_request_id(
    client: openai.OpenAI,
    fake: FakeOpenAI,
    telemetry: Telemetry,
    scenario: str,
    error_class: type[Exception],
    status: int,
    code: str | None,
    category: str,
) -> None:
    fake.plan(scenario)
    with pytest.raises(error_class) as raised:
        summarize_ticket(client)
    span = telemetry.span()
    a = attrs(span)
    assert a[names.ERROR_TYPE] == error_class.__name__
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == status
    assert a.get(names.AITRACK_ERROR_PROVIDER_CODE) == (code or raised.value.type)
    assert a[names.AITRACK_ERROR_CATEGORY] == category
    assert a[names.AITRACK_REQUEST_ID] == raised.value.request_id
    assert a[names.AITRACK_REQUEST_ID].startswith("req_")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description.startswith(f"Error code: {status}")  # the message alone, no error.type
    assert span.status.description == attrs(span)[names.AITRACK_ERROR_MESSAGE]
    assert a[names.AITRACK_ERROR_MESSAGE].startswith(f"Error code: {status}")


def test_failure_traceback_runs_from_the_callers_through_the_sdk_to_the_raise(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("not_found")
    with pytest.raises(openai.NotFoundError):
        summarize_ticket(client, model="gpt-5-nano-x")
    text = attrs(telemetry.span())[names.AITRACK_ERROR_TRACEBACK]
    assert text.startswith("Traceback (most recent call last):\n")
    assert "in test_failure_traceback_runs_from_the_callers_through_the_sdk_to_the_raise" in text
    assert (
        "in summarize_ticket\n    return client.chat.completions.create(model=model, messages=MESSAGES)"
        in text
    )
    assert "openai/_base_client.py" in text
    assert "otel_aitrack" not in text
    assert text.rstrip().splitlines()[-1].startswith("openai.NotFoundError: Error code: 404")
    assert text.index("in summarize_ticket") < text.index("_base_client.py")


def test_the_exception_is_recorded_as_a_span_event_redacted(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("unauthorized")
    with pytest.raises(openai.AuthenticationError):
        summarize_ticket(client)
    span = telemetry.span()
    exception = event(span, "exception")
    assert exception["exception.type"] == "openai.AuthenticationError"
    assert exception["exception.message"] == attrs(span)[names.AITRACK_ERROR_MESSAGE]
    assert exception["exception.stacktrace"] == attrs(span)[names.AITRACK_ERROR_TRACEBACK]
    assert not telemetry.logs_exporter.get_finished_logs()


def test_the_api_key_echoed_by_a_401_is_exported_nowhere(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("unauthorized")
    with pytest.raises(openai.AuthenticationError) as raised:
        summarize_ticket(client)
    assert API_KEY in str(raised.value), "the fake must echo the key for this test to mean anything"
    span = telemetry.span()
    exported = [str(span.status.description), *map(str, attrs(span).values())]
    exported += [str(v) for e in span.events for v in (e.attributes or {}).values()]
    stats = otel_aitrack.stats()["summarize_ticket"]
    exported += [str(stats.last_error_message), str(stats.last_error_traceback)]
    assert all(API_KEY not in text and "TESTKEY" not in text for text in exported)
    assert "[REDACTED]" in attrs(span)[names.AITRACK_ERROR_MESSAGE]


def test_secrets_in_urls_and_bearer_tokens_are_redacted(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("key_in_query")
    with pytest.raises(openai.BadRequestError):
        summarize_ticket(client)
    a = attrs(telemetry.span())
    for text in (a[names.AITRACK_ERROR_MESSAGE], a[names.AITRACK_ERROR_TRACEBACK]):
        assert "sk-abc123def456ghi789" not in text
        assert "abc.def.ghi" not in text
        assert "api_key=[REDACTED]" in text


@pytest.mark.parametrize("signal", ["logs", "logs/dup"])
def test_exceptions_as_logs_when_opted_in(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, signal: str
) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN", signal)
    with instrumented() as seen:
        client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
        fake.plan("unauthorized")
        with pytest.raises(openai.AuthenticationError):
            summarize_ticket(client)
    logs = seen.logs_exporter.get_finished_logs()
    assert len(logs) == 1
    record = logs[0].log_record
    assert record.attributes["exception.type"] == "openai.AuthenticationError"
    assert API_KEY not in record.attributes["exception.message"]
    assert record.span_id == seen.span().context.span_id
    has_event = any(e.name == "exception" for e in seen.span().events)
    assert has_event is (signal == "logs/dup")


def test_client_timeout_is_a_timeout_failure_without_status(fake: FakeOpenAI, telemetry: Telemetry) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0, timeout=0.2)
    fake.plan("slow")
    with pytest.raises(openai.APITimeoutError):
        summarize_ticket(client)
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == "APITimeoutError"
    assert a[names.AITRACK_ERROR_CATEGORY] == "timeout"
    assert names.HTTP_RESPONSE_STATUS_CODE not in a
    assert "Timeout" in a[names.AITRACK_ERROR_TRACEBACK]  # the chained transport timeout


def test_connection_refused_is_a_connection_failure_with_its_cause(telemetry: Telemetry) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=API_KEY, max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        summarize_ticket(client)
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == "APIConnectionError"
    assert a[names.AITRACK_ERROR_CATEGORY] == "connection"
    assert (
        "The above exception was the direct cause of the following exception"
        in a[names.AITRACK_ERROR_TRACEBACK]
    )
    assert "ConnectError" in a[names.AITRACK_ERROR_TRACEBACK]


def test_sdk_retries_are_one_span_with_the_resend_count(fake: FakeOpenAI, telemetry: Telemetry) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=2)
    fake.plan("overloaded", "overloaded", "ok")
    summarize_ticket(client)
    span = telemetry.span()
    assert attrs(span)[names.HTTP_REQUEST_RESEND_COUNT] == 2
    assert span.status.status_code is StatusCode.UNSET
    assert len(fake.requests) == 3
    assert telemetry.value(names.METRIC_CALLS, gen_ai__prompt__name="summarize_ticket") == 1


def test_exhausted_retries_are_one_failed_span(fake: FakeOpenAI, telemetry: Telemetry) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=2)
    fake.plan("overloaded", "overloaded", "overloaded")
    with pytest.raises(openai.InternalServerError):
        summarize_ticket(client)
    a = attrs(telemetry.span())
    assert a[names.HTTP_REQUEST_RESEND_COUNT] == 2
    assert a[names.ERROR_TYPE] == "InternalServerError"
    assert otel_aitrack.stats()["summarize_ticket"].total_failed_calls == 1


def test_no_resend_count_without_retries(client: openai.OpenAI, telemetry: Telemetry) -> None:
    summarize_ticket(client)
    assert names.HTTP_REQUEST_RESEND_COUNT not in attrs(telemetry.span())
