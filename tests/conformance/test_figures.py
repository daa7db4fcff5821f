"""One prompt type, two providers: stats() and the failure metrics count every provider's calls as one
feature (consecutive failures run across them), exactly under threads and tasks; duration and token
usage follow the semantic conventions."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timezone
from typing import Any, NamedTuple

import pytest
from google import genai
from google.genai import types

import otel_aitrack
from otel_aitrack import names
from tests.conformance.cases import GOOGLE, OPENAI
from tests.conformance.conftest import excluding
from tests.conformance.kit import ErrorCase, ProviderCase
from tests.conftest import Telemetry
from tests.fakes import google_server
from tests.fakes.google_server import FakeGoogle
from tests.fakes.openai_server import FakeOpenAI


def ask(case: ProviderCase, client: Any) -> None:
    """One call of the app, which survives a failed call."""
    try:
        case.call(client)
    except case.error_base:
        pass


class Mixed(NamedTuple):
    """Two failures of the case's provider, of different error types, and a call of OpenAI's beside them
    (its fake plans `ok`, then `server_error`)."""

    first: ErrorCase
    last: ErrorCase
    ask_openai: Callable[[], None]


@pytest.fixture
def mixed(case: ProviderCase, fake: FakeOpenAI) -> Mixed:
    fake.plan("ok", "server_error")
    client = OPENAI.client(fake.base_url)
    first, last = (case.error(scenario) for scenario in case.failures)
    return Mixed(first, last, lambda: ask(OPENAI, client))


def test_consecutive_failures_run_across_providers_and_reset_on_any_ones_success(
    case: ProviderCase, provider_fake: Any, client: Any, mixed: Mixed, telemetry: Telemetry
) -> None:
    first, last = mixed.first, mixed.last
    provider_fake.plan(first.scenario, last.scenario, "ok")
    with otel_aitrack.track("summarize_ticket"):
        mixed.ask_openai()  # ok
        ask(case, client)
        mixed.ask_openai()  # 500
        ask(case, client)
        stats = otel_aitrack.stats()["summarize_ticket"]
        assert stats.consecutive_failures == 3
        assert stats.last_error_code == last.expected_type
        assert stats.last_error_message.startswith(case.message_prefix(last.status, last.provider_code))
        gauge = names.METRIC_CONSECUTIVE_FAILURES
        assert telemetry.value(gauge, gen_ai__prompt__name="summarize_ticket") == 3
        ask(case, client)  # ok
    stats = otel_aitrack.stats()["summarize_ticket"]
    assert (stats.total_calls, stats.total_failed_calls, stats.consecutive_failures) == (5, 3, 0)
    assert stats.failure_rate == 60.0
    assert stats.last_error_code == last.expected_type, "the last failure is kept after the success"
    assert stats.last_failed_at is not None and stats.last_failed_at.tzinfo is timezone.utc
    assert telemetry.value(gauge, gen_ai__prompt__name="summarize_ticket") == 0
    last_failed = {
        point.attributes[names.ERROR_TYPE]: point.value
        for point in telemetry.points(names.METRIC_LAST_FAILURE_TIMESTAMP)
    }
    assert last_failed[last.expected_type] == pytest.approx(stats.last_failed_at.timestamp(), abs=1e-5)
    assert (
        last_failed[first.expected_type]
        < last_failed["InternalServerError"]
        < last_failed[last.expected_type]
    )


def test_the_calls_counter_splits_one_prompt_type_by_provider_and_error_type(
    case: ProviderCase, provider_fake: Any, client: Any, mixed: Mixed, telemetry: Telemetry
) -> None:
    first, last = mixed.first, mixed.last
    provider_fake.plan("ok", first.scenario, last.scenario, first.scenario)
    with otel_aitrack.track("classify_email"):
        for _ in range(2):
            mixed.ask_openai()  # ok, 500
        for _ in range(4):
            ask(case, client)
    calls = names.METRIC_CALLS
    mine = {"gen_ai__provider__name": case.provider_name, "gen_ai__operation__name": case.operation}
    assert (
        telemetry.value(calls, error__type=first.expected_type, gen_ai__prompt__name="classify_email", **mine)
        == 2
    )
    assert telemetry.value(calls, error__type=last.expected_type, **mine) == 1
    assert telemetry.value(calls, gen_ai__provider__name="openai", error__type="InternalServerError") == 1
    ok = [p for p in telemetry.points(calls) if "error.type" not in p.attributes]
    assert sorted((p.attributes["gen_ai.provider.name"], p.value) for p in ok) == sorted(
        Counter(["openai", case.provider_name]).items()
    )
    total = sum(p.value for p in telemetry.points(calls))
    assert total == 6 == otel_aitrack.stats()["classify_email"].total_calls


def test_duration_and_token_usage_follow_the_semantic_conventions(
    case: ProviderCase, client: Any, telemetry: Telemetry
) -> None:
    with otel_aitrack.track("summarize"):
        ask(case, client)
    duration = names.METRIC_OPERATION_DURATION
    assert telemetry.value(duration, gen_ai__provider__name=case.provider_name) == 1
    (point,) = telemetry.points(duration)
    assert point.attributes["gen_ai.operation.name"] == case.operation
    assert point.attributes["gen_ai.request.model"] == case.model
    assert point.attributes.get("gen_ai.response.model") == case.response_model
    assert point.attributes["server.address"] == "127.0.0.1"
    usage = {p.attributes["gen_ai.token.type"]: p.sum for p in telemetry.points(names.METRIC_TOKEN_USAGE)}
    assert usage == {"input": case.tokens["input"], "output": case.tokens["output"]}


def test_a_failed_call_records_its_duration_and_no_token_usage(
    case: ProviderCase, provider_fake: Any, client: Any, telemetry: Telemetry
) -> None:
    error = case.error(case.not_found)
    provider_fake.plan(error.scenario)
    ask(case, client)
    assert telemetry.points(names.METRIC_TOKEN_USAGE) == []
    assert telemetry.value(names.METRIC_OPERATION_DURATION, error__type=error.expected_type) == 1


def test_threads_calling_one_provider_give_exact_totals(
    case: ProviderCase, provider_fake: Any, client: Any, telemetry: Telemetry
) -> None:
    error = case.error(case.failures[1])
    provider_fake.plan(*[error.scenario if index % 2 else "ok" for index in range(100)])

    def worker() -> None:
        with otel_aitrack.track("threaded"):
            for _ in range(25):
                ask(case, client)  # the SDKs' clients are thread-safe

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = otel_aitrack.stats()["threaded"]
    assert (stats.total_calls, stats.total_failed_calls, stats.failure_rate) == (100, 50, 50.0)
    assert telemetry.value(names.METRIC_CALLS, error__type=error.expected_type) == 50
    assert len(telemetry.spans()) == 100


async def test_concurrent_tasks_give_exact_totals(
    case: ProviderCase, provider_fake: Any, async_client: Any, telemetry: Telemetry
) -> None:
    assert case.acall is not None
    error = case.error(case.failures[1])

    async def one(failing: bool) -> None:
        with otel_aitrack.track("async_failing" if failing else "async_ok"):
            try:
                await case.acall(async_client)  # type: ignore[misc]
            except case.error_base:
                pass

    provider_fake.plan(*[error.scenario] * 50)
    await asyncio.gather(*(one(True) for _ in range(50)))
    await asyncio.gather(*(one(False) for _ in range(50)))
    stats = otel_aitrack.stats()
    assert (stats["async_failing"].total_calls, stats["async_failing"].consecutive_failures) == (50, 50)
    assert (stats["async_ok"].total_calls, stats["async_ok"].total_failed_calls) == (50, 0)
    assert len(telemetry.spans()) == 100


@excluding("google")
def test_a_call_made_by_a_tool_during_a_google_call_is_a_call_of_its_own(
    case: ProviderCase, provider_fake: Any, client: Any, telemetry: Telemetry
) -> None:
    """Google's automatic function calling runs the tool inside the Google call; the tool's calls (one
    that fails, then one that succeeds) are calls of their own, children of the Google call's span."""

    def summarize_ticket(ticket_id: int) -> str:
        """Summarizes a support ticket."""
        ask(case, client)
        ask(case, client)
        return "The printer is on fire."

    summarize_ticket.__annotations__ = {"ticket_id": int, "return": str}  # google-genai 1.x reads types
    provider_fake.plan(case.not_found, "ok")
    with FakeGoogle() as google_fake:
        google_fake.plan("function_call", "ok")
        google = genai.Client(api_key=google_server.API_KEY, http_options={"base_url": google_fake.base_url})
        with otel_aitrack.track("triage"):
            google.models.generate_content(
                model=GOOGLE.model,
                contents="Triage ticket 42",
                config=types.GenerateContentConfig(tools=[summarize_ticket]),
            )
    (google_span,) = [
        s for s in telemetry.spans() if s.attributes[names.GEN_AI_PROVIDER_NAME] == "gcp.gemini"
    ]
    tool_spans = [s for s in telemetry.spans() if s is not google_span]
    assert [s.attributes[names.GEN_AI_PROVIDER_NAME] for s in tool_spans] == [case.provider_name] * 2
    assert all(s.parent is not None and s.parent.span_id == google_span.context.span_id for s in tool_spans)
    triage = otel_aitrack.stats()["triage"]
    assert (triage.total_calls, triage.total_failed_calls, triage.consecutive_failures) == (3, 1, 0)
    assert triage.last_error_code == case.error(case.not_found).expected_type
