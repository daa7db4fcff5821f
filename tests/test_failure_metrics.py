"""Per-prompt-type figures: calls, failures, failure rate, consecutive failures, last failure."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timezone

import openai
import pytest

import otel_aitrack
from otel_aitrack import names
from tests.conftest import API_KEY, Telemetry, instrumented
from tests.fakes.openai_server import FakeOpenAI
from tests.support import ask_openai, calls_of

MESSAGES = [{"role": "user", "content": "hi"}]


def test_two_of_five_failing_is_a_40_percent_failure_rate(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    calls_of("classify_email", client, fake, "ok", "not_found", "ok", "rate_limit", "ok")
    stats = otel_aitrack.stats()["classify_email"]
    assert stats.total_calls == 5
    assert stats.total_failed_calls == 2
    assert stats.failure_rate == 40.0
    assert stats.consecutive_failures == 0
    assert stats.last_error_code == "RateLimitError"
    assert stats.last_error_message.startswith("Error code: 429")
    assert stats.last_error_traceback.startswith("Traceback (most recent call last):")
    assert stats.as_dict()["failure_rate"] == 40.0


def test_calls_counter_carries_error_type_on_failures_only(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    calls_of("classify_email", client, fake, "ok", "not_found", "not_found")
    base = {"gen_ai__prompt__name": "classify_email", "gen_ai__provider__name": "openai"}
    points = telemetry.points(names.METRIC_CALLS)
    assert {frozenset(dict(p.attributes)) for p in points} == {
        frozenset(
            {"gen_ai.prompt.name", "gen_ai.provider.name", "gen_ai.operation.name", "gen_ai.request.model"}
        ),
        frozenset(
            {
                "gen_ai.prompt.name",
                "gen_ai.provider.name",
                "gen_ai.operation.name",
                "gen_ai.request.model",
                "error.type",
                "aitrack.error.category",
                "aitrack.error.fingerprint",
            }
        ),
    }
    assert (
        telemetry.value(
            names.METRIC_CALLS, error__type="NotFoundError", aitrack__error__category="not_found", **base
        )
        == 2
    )
    assert sum(p.value for p in points) == 3
    assert telemetry.metric_unit(names.METRIC_CALLS) == "{call}"


def test_consecutive_failures_count_up_and_reset_on_success(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    calls_of("extract_invoice", client, fake, "server_error", "server_error", "server_error")
    assert otel_aitrack.stats()["extract_invoice"].consecutive_failures == 3
    assert telemetry.value(names.METRIC_CONSECUTIVE_FAILURES, gen_ai__prompt__name="extract_invoice") == 3
    calls_of("extract_invoice", client, fake, "ok")
    assert otel_aitrack.stats()["extract_invoice"].consecutive_failures == 0
    assert telemetry.value(names.METRIC_CONSECUTIVE_FAILURES, gen_ai__prompt__name="extract_invoice") == 0


def test_last_failure_time_is_a_utc_datetime_and_a_unix_seconds_gauge(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    before = time.time()
    calls_of("extract_invoice", client, fake, "server_error")
    after = time.time()
    failed_at = otel_aitrack.stats()["extract_invoice"].last_failed_at
    assert failed_at.tzinfo is timezone.utc
    assert before <= failed_at.timestamp() <= after
    gauge = telemetry.value(
        names.METRIC_LAST_FAILURE_TIMESTAMP,
        gen_ai__prompt__name="extract_invoice",
        error__type="InternalServerError",
    )
    assert gauge == pytest.approx(failed_at.timestamp())
    assert telemetry.metric_unit(names.METRIC_LAST_FAILURE_TIMESTAMP) == "s"
    assert isinstance(datetime.now(timezone.utc) - failed_at, type(failed_at - failed_at))


def test_no_last_failure_gauge_for_a_prompt_type_that_never_failed(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    calls_of("healthy", client, fake, "ok")
    assert telemetry.points(names.METRIC_LAST_FAILURE_TIMESTAMP) == []
    assert otel_aitrack.stats()["healthy"].last_failed_at is None


def test_calls_outside_track_count_under_the_default_prompt_type(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    ask_openai(client)
    assert names.DEFAULT_PROMPT_TYPE == "untracked"
    assert otel_aitrack.stats()["untracked"].total_calls == 1
    assert telemetry.value(names.METRIC_CALLS, gen_ai__prompt__name="untracked") == 1


def test_duration_and_token_usage_follow_the_semantic_conventions(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    calls_of("summarize", client, fake, "ok", "not_found")
    assert telemetry.metric_unit(names.METRIC_OPERATION_DURATION) == "s"
    assert telemetry.value(names.METRIC_OPERATION_DURATION, error__type="NotFoundError") == 1
    ok = [p for p in telemetry.points(names.METRIC_OPERATION_DURATION) if "error.type" not in p.attributes]
    assert len(ok) == 1 and ok[0].attributes["gen_ai.prompt.name"] == "summarize"
    assert ok[0].explicit_bounds[:3] == (0.01, 0.02, 0.04)
    assert telemetry.value(names.METRIC_TOKEN_USAGE, gen_ai__token__type="input") == 1
    usage = [
        p for p in telemetry.points(names.METRIC_TOKEN_USAGE) if p.attributes["gen_ai.token.type"] == "output"
    ]
    assert usage[0].sum == 7


def test_histograms_carry_exemplars_that_open_the_calls_trace(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    calls_of("summarize", client, fake, "not_found")
    span = telemetry.span()
    (point,) = telemetry.points(names.METRIC_OPERATION_DURATION)
    assert [e.trace_id for e in point.exemplars] == [span.context.trace_id]
    assert [e.span_id for e in point.exemplars] == [span.context.span_id]


def test_prompt_types_beyond_the_limit_fold_into_the_overflow_bucket(fake: FakeOpenAI) -> None:
    with instrumented(max_prompt_types=2) as seen:
        client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
        for prompt_type in ("a", "b", "c", "d"):
            with otel_aitrack.track(prompt_type):
                ask_openai(client)
        assert set(otel_aitrack.stats()) == {"a", "b", "_overflow"}
        assert otel_aitrack.stats()["_overflow"].total_calls == 2
        assert seen.value(names.METRIC_CALLS, gen_ai__prompt__name="_overflow") == 2
        spans = {dict(s.attributes)["gen_ai.prompt.name"] for s in seen.spans()}
        assert spans == {"a", "b", "c", "d"}, "spans keep the real name; only metrics and stats fold"


# The concurrency tests open hundreds of connections at once. On a loaded machine the SDK's default
# 5-second connect timeout is not enough to set them all up (the async client resolves each host in a
# small thread pool first): those calls then really fail, with APITimeoutError, and the exact totals
# are off for a reason that has nothing to do with counting. The clients here wait as long as it takes,
# and the tests check that no call failed other than as planned.
PATIENT = 600.0  # seconds, connect included


def test_eight_threads_of_500_calls_give_exact_totals(fake: FakeOpenAI, telemetry: Telemetry) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0, timeout=PATIENT)
    unplanned: list[BaseException] = []

    def worker(prompt_type: str, model: str) -> None:
        with otel_aitrack.track(prompt_type):
            for _ in range(500):
                try:
                    client.chat.completions.create(model=model, messages=MESSAGES)
                except openai.InternalServerError:
                    pass
                except openai.APIError as error:
                    unplanned.append(error)

    threads = [
        threading.Thread(target=worker, args=("threaded", "server_error" if i % 2 else "gpt-4o-mini"))
        for i in range(8)
    ]
    threads.append(threading.Thread(target=worker, args=("always_failing", "server_error")))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert unplanned == []
    threaded, always_failing = (otel_aitrack.stats()[name] for name in ("threaded", "always_failing"))
    assert (threaded.total_calls, threaded.total_failed_calls, threaded.failure_rate) == (4000, 2000, 50.0)
    assert always_failing.consecutive_failures == 500
    assert (
        telemetry.value(
            names.METRIC_CALLS, gen_ai__prompt__name="threaded", error__type="InternalServerError"
        )
        == 2000
    )
    assert len(telemetry.spans()) == 4500


async def test_500_concurrent_tasks_give_exact_totals(fake: FakeOpenAI, telemetry: Telemetry) -> None:
    client = openai.AsyncOpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0, timeout=PATIENT)
    unplanned: list[BaseException] = []

    async def one(i: int) -> None:
        prompt_type = "async_failing" if i % 5 == 0 else "async_mixed"
        model = "server_error" if i % 5 in (0, 1) else "gpt-4o-mini"
        with otel_aitrack.track(prompt_type):
            try:
                await client.chat.completions.create(model=model, messages=MESSAGES)
            except openai.InternalServerError:
                pass
            except openai.APIError as error:
                unplanned.append(error)

    await asyncio.gather(*(one(i) for i in range(500)))
    await client.close()
    assert unplanned == []
    failing, mixed = (otel_aitrack.stats()[name] for name in ("async_failing", "async_mixed"))
    assert (failing.total_calls, failing.consecutive_failures) == (100, 100)
    assert (mixed.total_calls, mixed.total_failed_calls, mixed.failure_rate) == (400, 100, 25.0)
    assert len(telemetry.spans()) == 500
