"""One prompt type, two providers: the failure figures count OpenAI and Anthropic calls as one feature."""

from __future__ import annotations

import asyncio
import threading
from datetime import timezone

import anthropic
import openai
import pytest

import otel_aitrack
from otel_aitrack import names
from tests.conftest import ANTHROPIC_API_KEY, API_KEY, Telemetry
from tests.fakes.anthropic_server import USAGE_CACHE_READ, USAGE_IN, USAGE_OUT, FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI

MESSAGES = [{"role": "user", "content": "Summarize ticket #42"}]


def ask_openai(client: openai.OpenAI, model: str = "gpt-4o-mini") -> None:
    try:
        client.chat.completions.create(model=model, messages=MESSAGES)
    except openai.APIError:
        pass


def ask_anthropic(client: anthropic.Anthropic, model: str = "claude-haiku-4-5") -> None:
    try:
        client.messages.create(model=model, max_tokens=256, messages=MESSAGES)
    except anthropic.APIError:
        pass


def test_consecutive_failures_run_across_providers_and_reset_on_either_ones_success(
    client: openai.OpenAI,
    anthropic_client: anthropic.Anthropic,
    fake: FakeOpenAI,
    anthropic_fake: FakeAnthropic,
    telemetry: Telemetry,
) -> None:
    fake.plan("ok", "server_error")
    anthropic_fake.plan("not_found", "overloaded", "ok")
    with otel_aitrack.track("summarize_ticket"):
        ask_openai(client)  # ok
        ask_anthropic(anthropic_client)  # 404
        ask_openai(client)  # 500
        ask_anthropic(anthropic_client)  # 529
        stats = otel_aitrack.stats()["summarize_ticket"]
        assert stats.consecutive_failures == 3
        assert stats.last_error_code == "OverloadedError"
        assert "overloaded_error" in stats.last_error_message
        assert (
            telemetry.value(names.METRIC_CONSECUTIVE_FAILURES, gen_ai__prompt__name="summarize_ticket") == 3
        )
        ask_anthropic(anthropic_client)  # ok
    stats = otel_aitrack.stats()["summarize_ticket"]
    assert (stats.total_calls, stats.total_failed_calls, stats.consecutive_failures) == (5, 3, 0)
    assert stats.failure_rate == 60.0
    assert stats.last_error_code == "OverloadedError", "the last failure is kept after the success"
    assert stats.last_failed_at is not None and stats.last_failed_at.tzinfo is timezone.utc
    assert telemetry.value(names.METRIC_CONSECUTIVE_FAILURES, gen_ai__prompt__name="summarize_ticket") == 0
    last = {
        point.attributes[names.ERROR_TYPE]: point.value
        for point in telemetry.points(names.METRIC_LAST_FAILURE_TIMESTAMP)
    }
    assert last["OverloadedError"] == pytest.approx(stats.last_failed_at.timestamp(), abs=1e-5)
    assert last["NotFoundError"] < last["InternalServerError"] < last["OverloadedError"]


def test_the_calls_counter_splits_one_prompt_type_by_provider_and_error_type(
    client: openai.OpenAI,
    anthropic_client: anthropic.Anthropic,
    fake: FakeOpenAI,
    anthropic_fake: FakeAnthropic,
    telemetry: Telemetry,
) -> None:
    fake.plan("ok", "not_found")
    anthropic_fake.plan("ok", "not_found", "not_found")
    with otel_aitrack.track("classify_email"):
        for _ in range(2):
            ask_openai(client)
        for _ in range(3):
            ask_anthropic(anthropic_client)
    calls = names.METRIC_CALLS
    base = {"gen_ai__prompt__name": "classify_email"}
    assert (
        telemetry.value(calls, gen_ai__provider__name="anthropic", error__type="NotFoundError", **base) == 2
    )
    assert telemetry.value(calls, gen_ai__provider__name="openai", error__type="NotFoundError", **base) == 1
    ok = [p for p in telemetry.points(calls) if "error.type" not in p.attributes]
    assert {p.attributes["gen_ai.provider.name"]: p.value for p in ok} == {"openai": 1, "anthropic": 1}
    assert (
        sum(p.value for p in telemetry.points(calls))
        == 5
        == otel_aitrack.stats()["classify_email"].total_calls
    )


def test_anthropic_duration_and_token_usage_follow_the_semantic_conventions(
    anthropic_client: anthropic.Anthropic, telemetry: Telemetry
) -> None:
    with otel_aitrack.track("summarize"):
        ask_anthropic(anthropic_client)
    duration = telemetry.value(names.METRIC_OPERATION_DURATION, gen_ai__provider__name="anthropic")
    assert duration == 1
    point = next(iter(telemetry.points(names.METRIC_OPERATION_DURATION)))
    assert point.attributes["gen_ai.response.model"] == "claude-haiku-4-5-20251001"
    assert point.attributes["server.address"] == "127.0.0.1"
    usage = {p.attributes["gen_ai.token.type"]: p.sum for p in telemetry.points(names.METRIC_TOKEN_USAGE)}
    assert usage == {"input": USAGE_IN + USAGE_CACHE_READ, "output": USAGE_OUT}


def test_threads_calling_both_providers_give_exact_totals(
    fake: FakeOpenAI, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    openai_client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    anthropic_client = anthropic.Anthropic(
        base_url=anthropic_fake.base_url, api_key=ANTHROPIC_API_KEY, max_retries=0
    )

    def worker(index: int) -> None:
        with otel_aitrack.track("threaded"):
            for _ in range(100):
                if index % 2:
                    ask_anthropic(anthropic_client, "overloaded" if index % 4 == 1 else "claude-haiku-4-5")
                else:
                    ask_openai(openai_client, "server_error" if index % 4 == 0 else "gpt-4o-mini")

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = otel_aitrack.stats()["threaded"]
    assert (stats.total_calls, stats.total_failed_calls, stats.failure_rate) == (800, 400, 50.0)
    failed = names.METRIC_CALLS
    assert telemetry.value(failed, gen_ai__provider__name="anthropic", error__type="OverloadedError") == 200
    assert telemetry.value(failed, gen_ai__provider__name="openai", error__type="InternalServerError") == 200
    assert len(telemetry.spans()) == 800


async def test_concurrent_tasks_calling_both_providers_give_exact_totals(
    fake: FakeOpenAI, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    openai_client = openai.AsyncOpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    anthropic_client = anthropic.AsyncAnthropic(
        base_url=anthropic_fake.base_url, api_key=ANTHROPIC_API_KEY, max_retries=0
    )

    async def one(index: int) -> None:
        failing = index % 4 == 0
        with otel_aitrack.track("async_mixed"):
            try:
                if index % 2:
                    await anthropic_client.messages.create(
                        model="claude-haiku-4-5", max_tokens=256, messages=MESSAGES
                    )
                else:
                    model = "server_error" if failing else "gpt-4o-mini"
                    await openai_client.chat.completions.create(model=model, messages=MESSAGES)
            except openai.APIError:
                pass
        with otel_aitrack.track("async_anthropic_failing"):
            try:
                await anthropic_client.messages.create(model="api_error", max_tokens=256, messages=MESSAGES)
            except anthropic.InternalServerError:
                pass

    await asyncio.gather(*(one(index) for index in range(100)))
    await openai_client.close()
    await anthropic_client.close()
    stats = otel_aitrack.stats()
    assert (stats["async_mixed"].total_calls, stats["async_mixed"].total_failed_calls) == (100, 25)
    assert stats["async_mixed"].failure_rate == 25.0
    assert stats["async_anthropic_failing"].consecutive_failures == 100
    assert len(telemetry.spans()) == 200
