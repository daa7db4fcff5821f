"""One prompt type, three providers: the failure figures count Google, OpenAI and Anthropic calls as one
feature, and Google's duration and token usage follow the semantic conventions."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import timezone

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors, types

import otel_aitrack
from otel_aitrack import names
from tests.conftest import API_KEY, Telemetry
from tests.fakes import google_server
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.google_server import CANDIDATES_TOKENS, PROMPT_TOKENS, THOUGHTS_TOKENS, FakeGoogle
from tests.fakes.openai_server import FakeOpenAI

MESSAGES = [{"role": "user", "content": "Summarize ticket #42"}]


@pytest.fixture(scope="module")
def google_fake() -> Iterator[FakeGoogle]:
    with FakeGoogle() as server:
        yield server


@pytest.fixture
def google_client(google_fake: FakeGoogle, telemetry: Telemetry) -> genai.Client:
    google_fake.reset()
    return genai.Client(
        api_key=google_server.API_KEY, http_options=types.HttpOptions(base_url=google_fake.base_url)
    )


def ask_google(client: genai.Client, model: str = "gemini-2.5-flash") -> None:
    try:
        client.models.generate_content(model=model, contents="Summarize ticket #42")
    except errors.APIError:
        pass


def ask_openai(client: openai.OpenAI, model: str = "gpt-4o-mini") -> None:
    try:
        client.chat.completions.create(model=model, messages=MESSAGES)
    except openai.APIError:
        pass


def ask_anthropic(client: anthropic.Anthropic) -> None:
    try:
        client.messages.create(model="claude-haiku-4-5", max_tokens=256, messages=MESSAGES)
    except anthropic.APIError:
        pass


def test_consecutive_failures_run_across_providers_and_reset_on_any_ones_success(
    client: openai.OpenAI,
    anthropic_client: anthropic.Anthropic,
    google_client: genai.Client,
    fake: FakeOpenAI,
    anthropic_fake: FakeAnthropic,
    google_fake: FakeGoogle,
    telemetry: Telemetry,
) -> None:
    fake.plan("ok", "server_error")
    anthropic_fake.plan("overloaded")
    google_fake.plan("rate_limit", "unavailable", "ok")
    with otel_aitrack.track("summarize_ticket"):
        ask_openai(client)  # ok
        ask_google(google_client)  # 429
        ask_openai(client)  # 500
        ask_anthropic(anthropic_client)  # 529
        ask_google(google_client)  # 503
        stats = otel_aitrack.stats()["summarize_ticket"]
        assert stats.consecutive_failures == 4
        assert stats.last_error_code == "ServerError"
        assert stats.last_error_message.startswith("503 UNAVAILABLE.")
        assert (
            telemetry.value(names.METRIC_CONSECUTIVE_FAILURES, gen_ai__prompt__name="summarize_ticket") == 4
        )
        ask_google(google_client)  # ok
    stats = otel_aitrack.stats()["summarize_ticket"]
    assert (stats.total_calls, stats.total_failed_calls, stats.consecutive_failures) == (6, 4, 0)
    assert stats.failure_rate == 66.67
    assert stats.last_error_code == "ServerError", "the last failure is kept after the success"
    assert stats.last_failed_at is not None and stats.last_failed_at.tzinfo is timezone.utc
    assert telemetry.value(names.METRIC_CONSECUTIVE_FAILURES, gen_ai__prompt__name="summarize_ticket") == 0
    gauge = telemetry.value(
        names.METRIC_LAST_FAILURE_TIMESTAMP,
        gen_ai__prompt__name="summarize_ticket",
        error__type="ServerError",
    )
    assert gauge == pytest.approx(stats.last_failed_at.timestamp(), abs=1e-5)


def test_the_calls_counter_splits_one_prompt_type_by_provider_and_error_type(
    client: openai.OpenAI,
    google_client: genai.Client,
    fake: FakeOpenAI,
    google_fake: FakeGoogle,
    telemetry: Telemetry,
) -> None:
    fake.plan("ok", "not_found")
    google_fake.plan("ok", "not_found", "internal", "not_found")
    with otel_aitrack.track("classify_email"):
        for _ in range(2):
            ask_openai(client)
        for _ in range(4):
            ask_google(google_client)
    calls = names.METRIC_CALLS
    base = {"gen_ai__prompt__name": "classify_email", "gen_ai__operation__name": "generate_content"}
    assert telemetry.value(calls, gen_ai__provider__name="gcp.gemini", error__type="ClientError", **base) == 2
    assert telemetry.value(calls, gen_ai__provider__name="gcp.gemini", error__type="ServerError", **base) == 1
    assert telemetry.value(calls, gen_ai__provider__name="openai", error__type="NotFoundError") == 1
    ok = [p for p in telemetry.points(calls) if "error.type" not in p.attributes]
    assert {p.attributes["gen_ai.provider.name"]: p.value for p in ok} == {"openai": 1, "gcp.gemini": 1}
    total = sum(p.value for p in telemetry.points(calls))
    assert total == 6 == otel_aitrack.stats()["classify_email"].total_calls


def test_google_duration_and_token_usage_follow_the_semantic_conventions(
    google_client: genai.Client, telemetry: Telemetry
) -> None:
    with otel_aitrack.track("summarize"):
        ask_google(google_client, "gemini-flash-latest")
    duration = telemetry.value(names.METRIC_OPERATION_DURATION, gen_ai__provider__name="gcp.gemini")
    assert duration == 1
    point = next(iter(telemetry.points(names.METRIC_OPERATION_DURATION)))
    assert point.attributes["gen_ai.request.model"] == "gemini-flash-latest"
    assert point.attributes["gen_ai.response.model"] == "gemini-2.5-flash-preview-09-2025"
    assert point.attributes["gen_ai.operation.name"] == "generate_content"
    assert point.attributes["server.address"] == "127.0.0.1"
    usage = {p.attributes["gen_ai.token.type"]: p.sum for p in telemetry.points(names.METRIC_TOKEN_USAGE)}
    assert usage == {"input": PROMPT_TOKENS, "output": CANDIDATES_TOKENS + THOUGHTS_TOKENS}


def test_a_failed_google_call_records_no_token_usage(
    google_client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("invalid_argument")
    ask_google(google_client)
    assert telemetry.points(names.METRIC_TOKEN_USAGE) == []
    assert telemetry.value(names.METRIC_OPERATION_DURATION, error__type="ClientError") == 1


def test_threads_calling_google_and_openai_give_exact_totals(
    fake: FakeOpenAI, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    openai_client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    google_client = genai.Client(
        api_key=google_server.API_KEY, http_options={"base_url": google_fake.base_url}
    )

    def worker(index: int) -> None:
        with otel_aitrack.track("threaded"):
            for _ in range(50):
                if index % 2:
                    ask_google(google_client, "unavailable" if index % 4 == 1 else "gemini-2.5-flash")
                else:
                    ask_openai(openai_client, "server_error" if index % 4 == 0 else "gpt-4o-mini")

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = otel_aitrack.stats()["threaded"]
    assert (stats.total_calls, stats.total_failed_calls, stats.failure_rate) == (400, 200, 50.0)
    failed = names.METRIC_CALLS
    assert telemetry.value(failed, gen_ai__provider__name="gcp.gemini", error__type="ServerError") == 100
    assert telemetry.value(failed, gen_ai__provider__name="openai", error__type="InternalServerError") == 100
    assert len(telemetry.spans()) == 400


async def test_concurrent_tasks_calling_google_give_exact_totals(
    google_client: genai.Client, telemetry: Telemetry
) -> None:
    async def one(index: int) -> None:
        model = "internal" if index % 4 == 0 else "gemini-2.5-flash"
        with otel_aitrack.track("async_google"):
            try:
                await google_client.aio.models.generate_content(model=model, contents="hi")
            except errors.ServerError:
                pass
        with otel_aitrack.track("async_google_failing"):
            try:
                await google_client.aio.models.generate_content(model="not_found", contents="hi")
            except errors.ClientError:
                pass

    await asyncio.gather(*(one(index) for index in range(100)))
    stats = otel_aitrack.stats()
    assert (stats["async_google"].total_calls, stats["async_google"].total_failed_calls) == (100, 25)
    assert stats["async_google_failing"].consecutive_failures == 100
    assert len(telemetry.spans()) == 200


def test_a_model_call_made_by_a_tool_during_a_call_is_a_call_of_its_own(
    google_fake: FakeGoogle, google_client: genai.Client, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    """Automatic function calling runs the tool inside the Google call; the tool's OpenAI call (one that
    fails, then one that succeeds) is recorded as its own calls, children of the Google call's span."""
    openai_client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)

    def summarize_ticket(ticket_id: int) -> str:
        """Summarizes a support ticket."""
        try:
            ask_openai(openai_client, model="not_found")
        except openai.NotFoundError:
            pass
        ask_openai(openai_client)
        return "The printer is on fire."

    summarize_ticket.__annotations__ = {"ticket_id": int, "return": str}  # google-genai 1.x reads types
    google_fake.reset()
    google_fake.plan("function_call", "ok")
    with otel_aitrack.track("triage"):
        google_client.models.generate_content(
            model="gemini-2.5-flash",
            contents="Triage ticket 42",
            config=types.GenerateContentConfig(tools=[summarize_ticket]),
        )
    spans = {span.attributes[names.GEN_AI_PROVIDER_NAME]: span for span in telemetry.spans()}
    google_span = spans.pop("gcp.gemini")
    openai_spans = [span for span in telemetry.spans() if span is not google_span]
    assert len(openai_spans) == 2
    assert all(span.parent.span_id == google_span.context.span_id for span in openai_spans)
    triage = otel_aitrack.stats()["triage"]
    assert (triage.total_calls, triage.total_failed_calls, triage.consecutive_failures) == (3, 1, 0)
    assert triage.last_error_code == "NotFoundError"


def test_an_sdk_method_calling_another_instrumented_method_is_one_call(
    fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    """The SDK delegating to itself (its code calling an instrumented method during a call) is one call."""
    from openai.resources.chat.completions import Completions

    client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    sdk_module: dict[str, object] = {"__name__": "openai.resources.chat._delegation"}  # code of the SDK's
    exec("def create_via_parse(completions, **kwargs):\n    return completions.parse(**kwargs)\n", sdk_module)
    create_via_parse = sdk_module["create_via_parse"]
    wrapper = Completions.create._self_wrapper  # our wrapper of `create`, around the delegating body
    with otel_aitrack.track("summarize"):
        wrapper(
            lambda *args, **kwargs: create_via_parse(client.chat.completions, **kwargs),  # type: ignore[operator]
            client.chat.completions,
            (),
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert len(fake.requests) == 1
    assert len(telemetry.spans()) == 1
    assert otel_aitrack.stats()["summarize"].total_calls == 1
