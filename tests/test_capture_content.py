"""Prompt and response content: off by default; on per track() or by env; redacted and bounded."""

from __future__ import annotations

import json

import openai
import pytest

import otel_aitrack
from otel_aitrack import names
from tests.conftest import API_KEY, Telemetry, instrumented
from tests.fakes.openai_server import FakeOpenAI
from tests.support import attrs

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "My key is sk-proj-abcdefghijklmnop1234, summarize ticket 42"},
]


def test_content_is_not_captured_by_default(client: openai.OpenAI, telemetry: Telemetry) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    a = attrs(telemetry.span())
    assert names.GEN_AI_INPUT_MESSAGES not in a
    assert names.GEN_AI_OUTPUT_MESSAGES not in a


def test_track_capture_content_records_messages_redacted(client: openai.OpenAI, telemetry: Telemetry) -> None:
    with otel_aitrack.track("summarize", capture_content=True):
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    a = attrs(telemetry.span())
    inputs = json.loads(a[names.GEN_AI_INPUT_MESSAGES])
    assert inputs == [
        {"role": "user", "parts": [{"type": "text", "content": "My key is [REDACTED], summarize ticket 42"}]}
    ]
    assert json.loads(a[names.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "You are terse."}]
    outputs = json.loads(a[names.GEN_AI_OUTPUT_MESSAGES])
    assert outputs[0]["parts"][0]["content"] == completion.choices[0].message.content
    assert outputs[0]["finish_reason"] == "stop"


def test_env_var_turns_capture_on_and_content_is_bounded(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    with instrumented(content_max_length=200) as seen:
        client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x" * 5000}]
        )
    text = attrs(seen.span())[names.GEN_AI_INPUT_MESSAGES]
    assert len(text) <= 200
    assert "characters omitted by otel-aitrack" in text


def test_streamed_output_is_captured(client: openai.OpenAI, telemetry: Telemetry) -> None:
    with otel_aitrack.track("haiku", capture_content=True):
        chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    outputs = json.loads(attrs(telemetry.span())[names.GEN_AI_OUTPUT_MESSAGES])
    assert outputs[0]["parts"][0]["content"] == text


def test_responses_input_and_instructions_are_captured(client: openai.OpenAI, telemetry: Telemetry) -> None:
    with otel_aitrack.track("answer", capture_content=True):
        response = client.responses.create(model="gpt-4o-mini", input="hello there", instructions="Be brief.")
    a = attrs(telemetry.span())
    assert json.loads(a[names.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "hello there"
    assert json.loads(a[names.GEN_AI_SYSTEM_INSTRUCTIONS])[0]["content"] == "Be brief."
    assert json.loads(a[names.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == response.output_text
