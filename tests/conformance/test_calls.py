"""A call of every provider, sync and async: what a success records, and every failure with what failed,
why (error.type, status, provider code, category), its request id, and where it was called."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

import otel_aitrack
from otel_aitrack import names
from tests.conformance.kit import Echo, ErrorCase, ProviderCase, failure
from tests.conftest import Telemetry, instrumented
from tests.support import attrs, event, exception_name, refused_port


def summarize_ticket(case: ProviderCase, client: Any) -> Any:
    """The user's call site: it must show up in the exported traceback."""
    with otel_aitrack.track("summarize_ticket", task="summarize a ticket", user="agent-7"):
        return case.call(client)


def failed_call(case: ProviderCase, provider_fake: Any, client: Any, scenario: str) -> BaseException:
    """The user's call, told by the fake to fail as `scenario` says: the exception the user gets."""
    provider_fake.plan(scenario)
    with pytest.raises(case.error_base) as raised:
        summarize_ticket(case, client)
    return raised.value


def test_a_success_records_the_genai_attributes(
    case: ProviderCase, client: Any, telemetry: Telemetry
) -> None:
    result = summarize_ticket(case, client)
    span = telemetry.span()
    a = attrs(span)
    assert span.name == f"{case.operation} {case.model}"
    assert span.kind is SpanKind.CLIENT
    assert span.instrumentation_scope.name == "otel_aitrack"
    assert span.status.status_code is StatusCode.UNSET
    assert a[names.GEN_AI_OPERATION_NAME] == case.operation
    assert a[names.GEN_AI_PROVIDER_NAME] == case.provider_name
    assert a[names.GEN_AI_REQUEST_MODEL] == case.model
    assert a.get(names.GEN_AI_RESPONSE_MODEL) == case.response_model
    assert a.get(names.GEN_AI_RESPONSE_ID) == case.response_id(result)
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == case.finish_reasons
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] == case.tokens["input"]
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == case.tokens["output"]
    assert a[names.SERVER_ADDRESS] == "127.0.0.1"
    assert isinstance(a[names.SERVER_PORT], int)
    assert a.get(names.HTTP_RESPONSE_STATUS_CODE) == case.call_status
    assert (a[names.GEN_AI_PROMPT_NAME], a[names.AITRACK_TASK], a[names.USER_ID]) == (
        "summarize_ticket",
        "summarize a ticket",
        "agent-7",
    )
    case.assert_request_id(a.get(names.AITRACK_REQUEST_ID), case.request_id(result))
    for absent in (names.ERROR_TYPE, names.HTTP_REQUEST_RESEND_COUNT, names.AITRACK_STREAM_OUTCOME):
        assert absent not in a
    assert not span.events


def test_each_error_records_its_type_status_provider_code_category_and_request_id(
    case: ProviderCase, provider_fake: Any, client: Any, telemetry: Telemetry, error: ErrorCase
) -> None:
    raised = failed_call(case, provider_fake, client, error.scenario)
    assert type(raised).__name__ == error.error_class
    assert (case.status_of(raised), case.provider_code_of(raised)) == (error.status, error.provider_code)
    span = telemetry.span()
    a = attrs(span)
    assert failure(a) == error.recorded
    case.assert_request_id(a.get(names.AITRACK_REQUEST_ID), case.request_id(raised), failed=True)
    assert names.HTTP_REQUEST_RESEND_COUNT not in a
    assert span.status.status_code is StatusCode.ERROR
    # The message alone, no error.type: the SDK's own text.
    assert span.status.description == a[names.AITRACK_ERROR_MESSAGE]
    assert a[names.AITRACK_ERROR_MESSAGE].startswith(case.message_prefix(error.status, error.provider_code))
    if not any(echo.scenario == error.scenario for echo in case.echoes):  # (then redacted)
        assert a[names.AITRACK_ERROR_MESSAGE][:200] == str(raised)[:200]  # (long ones bounded)
    assert event(span, names.EXCEPTION_EVENT)[names.EXCEPTION_TYPE] == exception_name(raised)
    stats = otel_aitrack.stats()["summarize_ticket"]
    assert (stats.total_failed_calls, stats.last_error_code) == (1, error.expected_type)


def test_a_failures_traceback_runs_from_the_caller_through_the_sdk_to_the_raise(
    case: ProviderCase, provider_fake: Any, client: Any, telemetry: Telemetry
) -> None:
    raised = failed_call(case, provider_fake, client, case.not_found)
    text = attrs(telemetry.span())[names.AITRACK_ERROR_TRACEBACK]
    assert text.startswith("Traceback (most recent call last):\n")
    assert "in test_a_failures_traceback_runs_from_the_caller_through_the_sdk_to_the_raise\n" in text
    assert "in summarize_ticket\n    return case.call(client)" in text
    assert f"in {case.call.__name__}\n    return " in text
    for sdk_file in case.sdk_files:
        assert sdk_file in text
    assert "otel_aitrack" not in text
    assert text.index("in summarize_ticket") < text.index(case.sdk_files[0])
    assert text.rstrip().splitlines()[-1] == f"{exception_name(raised)}: {raised}"


def test_the_exception_is_a_span_event_with_the_spans_message_and_traceback_and_no_log(
    case: ProviderCase, provider_fake: Any, client: Any, telemetry: Telemetry
) -> None:
    raised = failed_call(case, provider_fake, client, case.not_found)
    span = telemetry.span()
    exception = event(span, names.EXCEPTION_EVENT)
    assert exception[names.EXCEPTION_TYPE] == exception_name(raised)
    assert exception[names.EXCEPTION_MESSAGE] == attrs(span)[names.AITRACK_ERROR_MESSAGE]
    assert exception[names.EXCEPTION_STACKTRACE] == attrs(span)[names.AITRACK_ERROR_TRACEBACK]
    assert not telemetry.logs_exporter.get_finished_logs()


@pytest.fixture
def exported_with_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    monkeypatch.setenv("OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN", "logs/dup")  # the span event and a log record
    with instrumented() as seen:
        yield seen


def everything_exported(seen: Telemetry) -> str:
    """Spans, their events, log records, metric points and stats(), as one text."""
    spans = [
        [span.name, str(span.status.description), attrs(span)]
        + [[e.name, dict(e.attributes or {})] for e in span.events]
        for span in seen.spans()
    ]
    logs = [
        [str(log.log_record.body), dict(log.log_record.attributes or {})]
        for log in seen.logs_exporter.get_finished_logs()
    ]
    metrics = (names.METRIC_CALLS, names.METRIC_OPERATION_DURATION, names.METRIC_LAST_FAILURE_TIMESTAMP)
    points = [dict(point.attributes) for name in metrics for point in seen.points(name)]
    stats = [vars(prompt) for prompt in otel_aitrack.stats().values()]
    return json.dumps([spans, logs, points, stats], default=str)


def test_a_credential_echoed_by_an_error_is_exported_nowhere(
    case: ProviderCase, provider_fake: Any, exported_with_logs: Telemetry, echo: Echo
) -> None:
    provider_fake.plan(echo.scenario)
    with pytest.raises(case.error_base) as raised:
        summarize_ticket(case, case.client(provider_fake.base_url))
    if echo.echoed is not None:
        assert echo.echoed in str(raised.value), "the service echoes it: the user's exception keeps it"
    span = exported_with_logs.span()
    assert attrs(span)[names.AITRACK_ERROR_CATEGORY] == "auth"
    assert echo.shown in attrs(span)[names.AITRACK_ERROR_MESSAGE]
    (record,) = exported_with_logs.logs_exporter.get_finished_logs()
    assert record.log_record.attributes[names.EXCEPTION_TYPE] == exception_name(raised.value)
    exported = everything_exported(exported_with_logs)
    for secret in case.secrets:
        assert secret not in exported


def test_a_client_timeout_is_a_timeout_failure_without_status(
    case: ProviderCase, provider_fake: Any, make_client: Any, telemetry: Telemetry
) -> None:
    provider_fake.plan(case.slow)
    with pytest.raises(Exception) as raised:
        summarize_ticket(case, make_client(timeout=0.2))
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == type(raised.value).__name__ == case.timeout_error
    assert a[names.AITRACK_ERROR_CATEGORY] == "timeout"
    assert names.HTTP_RESPONSE_STATUS_CODE not in a
    assert names.AITRACK_ERROR_PROVIDER_CODE not in a
    assert "in summarize_ticket" in a[names.AITRACK_ERROR_TRACEBACK]
    assert "Timeout" in a[names.AITRACK_ERROR_TRACEBACK].rstrip().splitlines()[-1]


def test_a_refused_connection_is_a_connection_failure_with_its_cause(
    case: ProviderCase, telemetry: Telemetry
) -> None:
    port = refused_port()
    client = case.client(f"http://127.0.0.1:{port}{case.fake.base_path}")
    with pytest.raises(Exception) as raised:
        summarize_ticket(case, client)
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == type(raised.value).__name__ == case.connection_error
    assert a[names.AITRACK_ERROR_CATEGORY] == "connection"
    assert a[names.SERVER_PORT] == port
    assert names.HTTP_RESPONSE_STATUS_CODE not in a
    assert names.AITRACK_ERROR_PROVIDER_CODE not in a
    assert case.connection_cause in a[names.AITRACK_ERROR_TRACEBACK]
    assert case.connection_link in a[names.AITRACK_ERROR_TRACEBACK]
    assert "in summarize_ticket" in a[names.AITRACK_ERROR_TRACEBACK]


# --- async ---------------------------------------------------------------------------------------


async def test_an_async_success_records_the_genai_attributes(
    case: ProviderCase, async_client: Any, telemetry: Telemetry
) -> None:
    assert case.acall is not None
    with otel_aitrack.track("math"):
        result = await case.acall(async_client)
    span = telemetry.span()
    a = attrs(span)
    assert span.name == f"{case.operation} {case.model}"
    assert a[names.GEN_AI_PROMPT_NAME] == "math"
    assert a.get(names.GEN_AI_RESPONSE_ID) == case.response_id(result)
    case.assert_request_id(a.get(names.AITRACK_REQUEST_ID), case.request_id(result))
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == case.finish_reasons
    assert a.get(names.HTTP_RESPONSE_STATUS_CODE) == case.call_status
    assert names.ERROR_TYPE not in a


async def test_an_async_failure_records_its_category_code_status_and_the_callers_traceback(
    case: ProviderCase, provider_fake: Any, async_client: Any, telemetry: Telemetry
) -> None:
    assert case.acall is not None
    error = case.error_for("quota")
    provider_fake.plan(error.scenario)
    with pytest.raises(case.error_base):
        await case.acall(async_client)
    a = attrs(telemetry.span())
    assert failure(a) == error.recorded
    assert error.category == "quota"
    assert (
        "in test_an_async_failure_records_its_category_code_status_and_the_callers_traceback"
        in (a[names.AITRACK_ERROR_TRACEBACK])
    )


async def test_an_async_client_timeout_is_a_timeout_failure(
    case: ProviderCase, provider_fake: Any, telemetry: Telemetry
) -> None:
    assert case.async_client is not None and case.acall is not None
    provider_fake.plan(case.slow)
    with pytest.raises(Exception) as raised:
        await case.acall(case.async_client(provider_fake.base_url, timeout=0.2))
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == type(raised.value).__name__
    assert a[names.AITRACK_ERROR_CATEGORY] == "timeout"
    assert names.HTTP_RESPONSE_STATUS_CODE not in a


async def test_an_async_refused_connection_is_a_connection_failure(
    case: ProviderCase, telemetry: Telemetry
) -> None:
    assert case.async_client is not None and case.acall is not None
    client = case.async_client(f"http://127.0.0.1:{refused_port()}{case.fake.base_path}")
    with pytest.raises(Exception) as raised:
        await case.acall(client)
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == type(raised.value).__name__
    assert a[names.AITRACK_ERROR_CATEGORY] == "connection"
    assert "in test_an_async_refused_connection_is_a_connection_failure" in a[names.AITRACK_ERROR_TRACEBACK]


async def test_task_cancellation_ends_the_span_without_counting_a_failure(
    case: ProviderCase, provider_fake: Any, async_client: Any, telemetry: Telemetry
) -> None:
    assert case.acall is not None
    provider_fake.plan(case.slow)
    with otel_aitrack.track("cancelled"):
        task = asyncio.create_task(case.acall(async_client))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    a = attrs(telemetry.span())
    assert a[names.AITRACK_CALL_CANCELLED] is True
    assert names.ERROR_TYPE not in a
    assert otel_aitrack.stats() == {}
    assert telemetry.points(names.METRIC_CALLS) == []
