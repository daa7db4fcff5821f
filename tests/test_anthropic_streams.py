"""Anthropic's `messages.stream(...)` helper, sync, async and beta: one span that starts when the `with` is
entered; completed, refused at enter, failed by an `error` event, truncated, left early, never entered.

`messages.create(stream=True)`, like every provider's streams, is in tests/conformance/test_streams.py.
"""

from __future__ import annotations

import gc
import warnings

import anthropic
import pytest

import otel_aitrack
from otel_aitrack import names
from tests.conftest import Telemetry
from tests.fakes.anthropic_server import USAGE_OUT, FakeAnthropic
from tests.support import attrs

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "Write a haiku"}]


def write_haiku(client: anthropic.Anthropic) -> str:
    """The user's call site of the helper: the request is sent when the `with` is entered."""
    with client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as stream:
        return stream.get_final_text()


def test_stream_helper_is_one_span_that_starts_when_the_with_is_entered(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    manager = anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES)
    assert anthropic_fake.requests == [], "the helper sends nothing before `with`"
    with otel_aitrack.track("haiku"), manager as stream:
        text = stream.get_final_text()
    assert text == "This is a test response."
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert a[names.GEN_AI_PROMPT_NAME] == "haiku"
    assert a[names.GEN_AI_REQUEST_MODEL] == MODEL
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == USAGE_OUT
    assert a[names.AITRACK_REQUEST_ID] == stream.request_id


# A helper refused when its `with` is entered is an ordinary failed call; one whose stream then carries an
# `error` event, a failure with outcome `error`. Both tell the caller's line.
HELPER_FAILURES = [
    ("overloaded", ("OverloadedError", 529), None, "with client.messages.stream("),
    ("stream_error", ("APIStatusError", 200), "error", "return stream.get_final_text()"),
]


@pytest.mark.parametrize(
    ("scenario", "recorded", "outcome", "line"), HELPER_FAILURES, ids=["refused at enter", "error event"]
)
def test_a_stream_helper_that_fails_is_one_failed_span_with_the_callers_traceback(
    anthropic_client: anthropic.Anthropic,
    anthropic_fake: FakeAnthropic,
    telemetry: Telemetry,
    scenario: str,
    recorded: tuple[str, int],
    outcome: str | None,
    line: str,
) -> None:
    anthropic_fake.plan(scenario)
    with pytest.raises(anthropic.APIStatusError):
        write_haiku(anthropic_client)
    a = attrs(telemetry.span())
    assert (a[names.ERROR_TYPE], a[names.HTTP_RESPONSE_STATUS_CODE]) == recorded
    assert (a[names.AITRACK_ERROR_PROVIDER_CODE], a[names.AITRACK_ERROR_CATEGORY]) == (
        "overloaded_error",
        "server",
    )
    assert f"in write_haiku\n    {line}" in a[names.AITRACK_ERROR_TRACEBACK]
    assert a.get(names.AITRACK_STREAM_OUTCOME) == outcome, "none: refused before any stream existed"


@pytest.mark.parametrize(
    ("scenario", "outcome"), [("stream_truncated", "truncated"), ("stream_long", "aborted")]
)
def test_a_stream_helper_read_to_its_truncated_end_or_left_early(
    anthropic_client: anthropic.Anthropic,
    anthropic_fake: FakeAnthropic,
    telemetry: Telemetry,
    scenario: str,
    outcome: str,
) -> None:
    anthropic_fake.plan(scenario)
    with anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream) if outcome == "truncated" else next(iter(stream.text_stream))
    assert text
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == outcome


def test_stream_helper_never_entered_sends_nothing_and_records_nothing(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    manager = anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES)
    del manager
    gc.collect()
    assert anthropic_fake.requests == []
    assert telemetry.spans() == []
    assert otel_aitrack.stats() == {}


def test_beta_stream_helper_and_beta_create_stream(
    anthropic_client: anthropic.Anthropic, telemetry: Telemetry
) -> None:
    with anthropic_client.beta.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as stream:
        stream.until_done()
    list(anthropic_client.beta.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES, stream=True))
    outcomes = [attrs(span)[names.AITRACK_STREAM_OUTCOME] for span in telemetry.spans()]
    assert outcomes == ["completed", "completed"]


# --- async twins --------------------------------------------------------------------------------


async def test_async_stream_helper(
    async_anthropic_client: anthropic.AsyncAnthropic, telemetry: Telemetry
) -> None:
    async with async_anthropic_client.messages.stream(
        model=MODEL, max_tokens=256, messages=MESSAGES
    ) as stream:
        message = await stream.get_final_message()
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert a[names.GEN_AI_RESPONSE_ID] == message.id


async def test_async_stream_helper_refused_at_enter(
    async_anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("not_found")
    with otel_aitrack.track("haiku"), pytest.raises(anthropic.NotFoundError):
        async with async_anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES):
            pass
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == "NotFoundError"
    assert a[names.GEN_AI_PROMPT_NAME] == "haiku"
    assert "in test_async_stream_helper_refused_at_enter" in a[names.AITRACK_ERROR_TRACEBACK]


async def test_async_beta_stream_helper_error_event(
    async_anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_fake.plan("stream_error")
    with pytest.raises(anthropic.APIStatusError):
        async with async_anthropic_client.beta.messages.stream(
            model=MODEL, max_tokens=256, messages=MESSAGES
        ) as stream:
            await stream.until_done()
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "error"
    assert a[names.AITRACK_ERROR_CATEGORY] == "server"


async def test_async_stream_helper_never_entered_records_nothing_and_leaves_no_coroutine_of_ours(
    async_anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manager = async_anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES)
        del manager
        gc.collect()
    never_awaited = [str(w.message) for w in caught if "never awaited" in str(w.message)]
    assert all("otel_aitrack" not in text and "wrapper" not in text for text in never_awaited), never_awaited
    assert anthropic_fake.requests == []
    assert telemetry.spans() == []
