"""Never worse than no instrumentation: same results, same exceptions, internal errors swallowed."""

from __future__ import annotations

import openai
import pytest
from openai._base_client import SyncAPIClient

import otel_aitrack
from otel_aitrack import names
from otel_aitrack.providers.openai import OpenAIProvider
from tests.conftest import Telemetry
from tests.fakes.openai_server import FakeOpenAI

MESSAGES = [{"role": "user", "content": "hi"}]


def test_the_exception_is_the_very_instance_the_sdk_raised(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[BaseException] = []
    original = SyncAPIClient._make_status_error_from_response

    def remember(self, response):
        error = original(self, response)
        made.append(error)
        return error

    monkeypatch.setattr(SyncAPIClient, "_make_status_error_from_response", remember)
    fake.plan("not_found")
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raised.value is made[0]
    assert raised.value.__traceback__ is not None


def test_the_result_is_the_very_object_the_sdk_returned(
    client: openai.OpenAI, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    returned: list[object] = []
    original = SyncAPIClient.request

    def remember(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        returned.append(result)
        return result

    monkeypatch.setattr(SyncAPIClient, "request", remember)
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion is returned[0]


def test_an_internal_error_is_swallowed_counted_and_the_call_succeeds(
    client: openai.OpenAI, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_AITRACK_STRICT", "0")

    def broken(*args: object, **kwargs: object) -> dict[str, object]:
        raise RuntimeError("instrumentation bug")

    monkeypatch.setattr(OpenAIProvider, "response_details", broken)
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.choices[0].message.content
    assert telemetry.value(names.METRIC_INSTRUMENTATION_ERRORS, error__type="RuntimeError") == 1


def test_an_internal_error_at_call_start_still_lets_the_call_run(
    client: openai.OpenAI, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_AITRACK_STRICT", "0")

    def broken(*args: object, **kwargs: object) -> dict[str, object]:
        raise KeyError("instrumentation bug")

    monkeypatch.setattr(OpenAIProvider, "request_attributes", broken)
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.choices
    span = telemetry.span()  # still recorded, with what is known without reading the request
    assert span.name == "chat"
    assert span.attributes[names.GEN_AI_PROVIDER_NAME] == "openai"
    assert otel_aitrack.stats()["untracked"].total_calls == 1
    assert telemetry.value(names.METRIC_INSTRUMENTATION_ERRORS, error__type="KeyError") == 1


def test_internal_errors_re_raise_in_the_projects_own_test_run(
    client: openai.OpenAI, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> dict[str, object]:
        raise RuntimeError("instrumentation bug")

    monkeypatch.setattr(OpenAIProvider, "response_details", broken)
    with pytest.raises(RuntimeError, match="instrumentation bug"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def test_keyboard_interrupt_ends_the_span_without_counting_a_failure(
    client: openai.OpenAI, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(SyncAPIClient, "request", interrupted)
    with otel_aitrack.track("interrupted"), pytest.raises(KeyboardInterrupt):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    span = telemetry.span()
    assert dict(span.attributes)[names.AITRACK_CALL_CANCELLED] is True
    assert names.ERROR_TYPE not in span.attributes
    assert "interrupted" not in otel_aitrack.stats()
    assert telemetry.points(names.METRIC_CALLS) == []


async def test_task_cancellation_ends_the_span_without_counting_a_failure(
    async_client: openai.AsyncOpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    import asyncio

    fake.plan("slow")
    task = asyncio.create_task(async_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert dict(telemetry.span().attributes)[names.AITRACK_CALL_CANCELLED] is True
    assert otel_aitrack.stats() == {}
