"""Never worse than no instrumentation, on openai: an internal error at a call's start, strict mode in this
project's own test run, a KeyboardInterrupt, the SDK calling itself. (The very result and exception, and
internal errors swallowed, for every provider: tests/conformance/test_identity.py.)"""

from __future__ import annotations

import openai
import pytest
from openai._base_client import SyncAPIClient

import otel_aitrack
from otel_aitrack import names
from otel_aitrack.providers.openai import OpenAIProvider
from tests.conftest import API_KEY, Telemetry
from tests.fakes.openai_server import FakeOpenAI

MESSAGES = [{"role": "user", "content": "hi"}]


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
