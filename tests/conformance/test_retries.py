"""The SDK's own retries: one call, one span, with http.request.resend_count; sync, async and streamed."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.trace import StatusCode

import otel_aitrack
from otel_aitrack import names
from tests.conformance.conftest import requires
from tests.conformance.kit import ProviderCase, failure
from tests.conftest import Telemetry
from tests.support import attrs

# botocore's back-off sleeps are skipped; the other SDKs are told to wait milliseconds (their fakes'
# `retry-after-ms`, their cases' retry options).
pytestmark = [requires("retries"), pytest.mark.usefixtures("botocore_waits")]


def test_retries_that_succeed_are_one_span_with_the_resend_count(
    case: ProviderCase, provider_fake: Any, make_client: Any, telemetry: Telemetry
) -> None:
    client = make_client(attempts=3)
    provider_fake.plan(*case.retried, "ok")
    with otel_aitrack.track("summarize_ticket"):
        case.call(client)
    assert len(provider_fake.requests) == 3
    span = telemetry.span()
    assert span.status.status_code is StatusCode.UNSET
    assert attrs(span)[names.HTTP_REQUEST_RESEND_COUNT] == 2
    assert names.ERROR_TYPE not in attrs(span)
    assert telemetry.value(names.METRIC_CALLS, gen_ai__prompt__name="summarize_ticket") == 1
    assert otel_aitrack.stats()["summarize_ticket"].total_failed_calls == 0


def test_exhausted_retries_are_one_failed_span_with_the_resend_count(
    case: ProviderCase, provider_fake: Any, make_client: Any, telemetry: Telemetry
) -> None:
    client = make_client(attempts=3)
    error = case.error(case.retried[0])
    provider_fake.plan(error.scenario, error.scenario, error.scenario)
    with otel_aitrack.track("summarize_ticket"), pytest.raises(case.error_base):
        case.call(client)
    assert len(provider_fake.requests) == 3
    a = attrs(telemetry.span())
    assert a[names.HTTP_REQUEST_RESEND_COUNT] == 2
    assert failure(a) == error.recorded
    assert otel_aitrack.stats()["summarize_ticket"].total_failed_calls == 1


def test_an_error_the_sdk_does_not_retry_is_sent_once_without_resend_count(
    case: ProviderCase, provider_fake: Any, make_client: Any, telemetry: Telemetry
) -> None:
    client = make_client(attempts=3)
    error = case.error(case.not_retried)
    provider_fake.plan(error.scenario, "ok")
    with pytest.raises(case.error_base):
        case.call(client)
    assert len(provider_fake.requests) == 1
    a = attrs(telemetry.span())
    assert a[names.AITRACK_ERROR_CATEGORY] == error.category
    assert names.HTTP_REQUEST_RESEND_COUNT not in a


def test_a_stream_retried_by_the_sdk_is_one_completed_span(
    case: ProviderCase, provider_fake: Any, make_client: Any, telemetry: Telemetry
) -> None:
    client = make_client(attempts=2)
    provider_fake.plan(case.retried[0], "ok")
    case.stream(client)
    assert len(provider_fake.requests) == 2
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert a[names.HTTP_REQUEST_RESEND_COUNT] == 1


async def test_async_retries_are_one_span_with_the_resend_count(
    case: ProviderCase, provider_fake: Any, telemetry: Telemetry
) -> None:
    assert case.async_client is not None and case.acall is not None
    client = case.async_client(provider_fake.base_url, attempts=2)
    provider_fake.plan(case.retried[0], "ok")
    await case.acall(client)
    assert len(provider_fake.requests) == 2
    a = attrs(telemetry.span())
    assert a[names.HTTP_REQUEST_RESEND_COUNT] == 1
    assert names.ERROR_TYPE not in a
