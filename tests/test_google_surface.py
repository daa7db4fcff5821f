"""google-genai: Gemini and Vertex AI clients, aliases, blocked prompts, automatic function calling, chats,
captured content, Google API keys redacted, the stream state. What every provider shares is in
tests/conformance/."""

from __future__ import annotations

import inspect
import json

import pytest
from google import genai
from google.genai import models, types
from opentelemetry.trace import StatusCode

import otel_aitrack
from otel_aitrack import names
from otel_aitrack.providers.google import CALL_ENDPOINTS, STREAM_ENDPOINTS, GoogleProvider, provider_name
from otel_aitrack.redaction import REDACTED, Redactor
from tests.conformance.cases import GOOGLE_RETRIES, google_client
from tests.conftest import Telemetry
from tests.fakes.google_server import (
    API_KEY,
    CACHED_TOKENS,
    CANDIDATES_TOKENS,
    PROMPT_TOKENS,
    TEXT,
    THOUGHTS_TOKENS,
    FakeGoogle,
    blocked,
    response,
)
from tests.support import attrs

MODEL = "gemini-2.5-flash"
CONTENTS = "What is six times seven?"


@pytest.fixture
def client(google_client: genai.Client) -> genai.Client:
    return google_client


# --- Gemini, Vertex AI, chats, aliases, blocked prompts, automatic function calling -------------


def test_a_vertex_ai_client_is_the_vertex_ai_provider(google_fake: FakeGoogle, telemetry: Telemetry) -> None:
    client = genai.Client(vertexai=True, api_key=API_KEY, http_options={"base_url": google_fake.base_url})
    google_fake.reset()
    client.models.generate_content(model=MODEL, contents=CONTENTS)
    assert google_fake.requests[0].path.endswith("/publishers/google/models/gemini-2.5-flash:generateContent")
    a = attrs(telemetry.span())
    assert a[names.GEN_AI_PROVIDER_NAME] == "gcp.vertex_ai"
    assert telemetry.value(names.METRIC_CALLS, gen_ai__provider__name="gcp.vertex_ai") == 1


def test_the_provider_name_follows_the_clients_vertexai_flag() -> None:
    class Client:
        def __init__(self, vertexai: object) -> None:
            self.vertexai = vertexai

    assert provider_name(Client(True)) == "gcp.vertex_ai"
    assert provider_name(Client(False)) == "gcp.gemini"
    assert provider_name(Client(None)) == "gcp.gemini", "the SDK calls the Gemini API unless told"
    assert provider_name(object()) == "gcp.gen_ai", "a client that does not say: any Google endpoint"
    assert provider_name(None) == "gcp.gen_ai"


def test_an_alias_records_the_model_version_that_answered(client: genai.Client, telemetry: Telemetry) -> None:
    client.models.generate_content(model="gemini-flash-latest", contents=CONTENTS)
    a = attrs(telemetry.span())
    assert a[names.GEN_AI_REQUEST_MODEL] == "gemini-flash-latest"
    assert a[names.GEN_AI_RESPONSE_MODEL] == "gemini-2.5-flash-preview-09-2025"
    (point,) = telemetry.points(names.METRIC_OPERATION_DURATION)
    assert point.attributes["gen_ai.request.model"] == "gemini-flash-latest"
    assert point.attributes["gen_ai.response.model"] == "gemini-2.5-flash-preview-09-2025"


def test_a_blocked_prompt_is_returned_and_recorded_with_its_block_reason(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("prompt_blocked")
    with otel_aitrack.track("summarize_ticket"):
        response = client.models.generate_content(model=MODEL, contents=CONTENTS)
    assert response.candidates is None
    assert response.prompt_feedback is not None and response.prompt_feedback.block_reason == "SAFETY"
    span = telemetry.span()
    a = attrs(span)
    assert span.status.status_code is StatusCode.UNSET, "the SDK returned it: not a failed call"
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == ("SAFETY",)
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert names.GEN_AI_USAGE_OUTPUT_TOKENS not in a, "nothing was generated"
    assert otel_aitrack.stats()["summarize_ticket"].total_failed_calls == 0


def test_automatic_function_calling_is_one_span_and_its_second_request_no_resend(
    google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    calls: list[int] = []

    def get_ticket(ticket_id: int) -> str:
        """Reads a support ticket."""
        calls.append(ticket_id)
        return "The printer is on fire."

    # google-genai 1.x reads the annotations as types, and this module's are strings (`__future__`).
    get_ticket.__annotations__ = {"ticket_id": int, "return": str}

    client = google_client(google_fake.base_url, attempts=3 if GOOGLE_RETRIES else 1)
    google_fake.reset()
    google_fake.plan("function_call", "ok")
    with otel_aitrack.track("summarize_ticket"):
        response = client.models.generate_content(
            model=MODEL, contents=CONTENTS, config=types.GenerateContentConfig(tools=[get_ticket])
        )
    assert calls == [42], "the SDK ran the function the model asked for"
    assert len(google_fake.requests) == 2
    a = attrs(telemetry.span())
    assert a.get(names.GEN_AI_RESPONSE_ID) == response.response_id, "the final answer's"
    assert names.HTTP_REQUEST_RESEND_COUNT not in a, "a second request is not a resend of the first"
    assert otel_aitrack.stats()["summarize_ticket"].total_calls == 1


def test_a_chat_turn_is_one_span(client: genai.Client, telemetry: Telemetry) -> None:
    chat = client.chats.create(model=MODEL)
    with otel_aitrack.track("assistant"):
        chat.send_message("Hello")
        chat.send_message("And again")
    spans = telemetry.spans()
    assert [span.name for span in spans] == ["generate_content gemini-2.5-flash"] * 2
    assert otel_aitrack.stats()["assistant"].total_calls == 2


# --- captured content ---------------------------------------------------------------------------


def test_content_capture_records_system_input_and_output_messages(
    client: genai.Client, telemetry: Telemetry
) -> None:
    contents = [
        {"role": "user", "parts": [{"text": CONTENTS}]},
        types.Content(role="model", parts=[types.Part(text="Let me see")]),
        "Well?",
        types.Part(text="Please."),
    ]
    config = types.GenerateContentConfig(system_instruction=f"You are terse. My key is {API_KEY}")
    with otel_aitrack.track("math", capture_content=True):
        client.models.generate_content(model=MODEL, contents=contents, config=config)
    a = attrs(telemetry.span())
    assert json.loads(a[names.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": CONTENTS}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "Let me see"}]},
        {
            "role": "user",
            "parts": [{"type": "text", "content": "Well?"}, {"type": "text", "content": "Please."}],
        },
    ]
    assert json.loads(a[names.GEN_AI_SYSTEM_INSTRUCTIONS]) == [
        {"type": "text", "content": "You are terse. My key is [REDACTED]"}
    ]
    assert json.loads(a[names.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": TEXT}], "finish_reason": "STOP"}
    ]


def test_content_capture_of_a_plain_string_and_a_dict_config(
    client: genai.Client, telemetry: Telemetry
) -> None:
    with otel_aitrack.track("math", capture_content=True):
        client.models.generate_content(
            model=MODEL, contents=CONTENTS, config={"system_instruction": {"parts": [{"text": "Be terse."}]}}
        )
    a = attrs(telemetry.span())
    assert json.loads(a[names.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": CONTENTS}]}
    ]
    assert json.loads(a[names.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be terse."}]


# --- Google API keys, redacted ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"API key {API_KEY} was reported as leaked.",
        f"https://generativelanguage.googleapis.com/v1beta/models?key={API_KEY}",
        f"headers: {{'x-goog-api-key': '{API_KEY}'}}",
    ],
)
def test_a_google_api_key_is_redacted_wherever_it_stands(text: str) -> None:
    out = Redactor().redact(text)
    assert API_KEY not in out
    assert "TESTKEY" not in out
    assert REDACTED in out


def test_a_word_that_merely_contains_the_key_prefix_is_left_alone() -> None:
    text = "xAIzaSyNotAKeyBecauseItStartsInsideAWord1234567 and AIzaShort"
    assert Redactor().redact(text) == text


# --- the stream state, fed the SDK's own chunk objects ------------------------------------------


def _chunks(*payloads: dict[str, object]) -> list[types.GenerateContentResponse]:
    return [types.GenerateContentResponse.model_validate(payload) for payload in payloads]


def test_the_stream_state_ends_at_the_finish_reason_with_the_last_chunks_usage() -> None:
    state = GoogleProvider().stream_state(STREAM_ENDPOINTS[0], None, capture=True)
    for chunk in _chunks(
        response(MODEL, "r-1", "This is ", None, 2), response(MODEL, "r-1", "it.", "STOP", 5)
    ):
        assert not state.terminal
        state.observe(chunk)
    assert state.terminal and state.error is None
    details = state.details()
    assert details.attributes == {
        names.GEN_AI_RESPONSE_ID: "r-1",
        names.AITRACK_REQUEST_ID: "r-1",
        names.GEN_AI_RESPONSE_MODEL: MODEL,
        names.GEN_AI_RESPONSE_FINISH_REASONS: ["STOP"],
    }
    assert details.tokens == {
        "input": PROMPT_TOKENS,
        "output": 5 + THOUGHTS_TOKENS,
        "reasoning": THOUGHTS_TOKENS,
        "cache_read": CACHED_TOKENS,
    }
    assert details.output_messages == [
        {"role": "assistant", "parts": [{"type": "text", "content": "This is it."}], "finish_reason": "STOP"}
    ]


def test_the_stream_state_without_a_finish_reason_is_not_terminal() -> None:
    state = GoogleProvider().stream_state(STREAM_ENDPOINTS[0], None, capture=False)
    for chunk in _chunks(response(MODEL, "r-2", TEXT, None, CANDIDATES_TOKENS)):
        state.observe(chunk)
    assert not state.terminal
    assert state.details().output_messages is None
    assert names.GEN_AI_RESPONSE_FINISH_REASONS not in state.details().attributes


def test_a_blocked_prompts_chunk_ends_the_stream_with_its_block_reason() -> None:
    state = GoogleProvider().stream_state(STREAM_ENDPOINTS[1], None, capture=False)
    state.observe(_chunks(blocked(MODEL, "r-3"))[0])
    assert state.terminal and state.error is None
    assert state.details().attributes[names.GEN_AI_RESPONSE_FINISH_REASONS] == ["SAFETY"]


def test_every_endpoint_names_a_method_of_the_installed_sdk() -> None:
    for endpoint in CALL_ENDPOINTS + STREAM_ENDPOINTS:
        owner, method = endpoint.method.split(".")
        function = getattr(getattr(models, owner), method)
        assert inspect.iscoroutinefunction(function) is endpoint.is_async, endpoint
    assert GoogleProvider().is_stream(models.Models.generate_content_stream(None, model=MODEL, contents=""))
