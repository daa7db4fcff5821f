"""google-genai, sync and async: Gemini and Vertex AI clients, chats, captured content, lifecycle, safety."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Iterator

import pytest
from google import genai
from google.genai import _api_client, errors, models, types

import otel_aitrack
from otel_aitrack import names
from otel_aitrack.providers.google import CALL_ENDPOINTS, STREAM_ENDPOINTS, GoogleProvider, provider_name
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


@pytest.fixture(scope="module")
def google_fake() -> Iterator[FakeGoogle]:
    with FakeGoogle() as server:
        yield server


@pytest.fixture
def client(google_fake: FakeGoogle, telemetry: Telemetry) -> genai.Client:
    google_fake.reset()
    return genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=google_fake.base_url))


# --- async --------------------------------------------------------------------------------------


async def test_async_generate_content(client: genai.Client, telemetry: Telemetry) -> None:
    with otel_aitrack.track("math"):
        response = await client.aio.models.generate_content(model=MODEL, contents=CONTENTS)
    span = telemetry.span()
    a = attrs(span)
    assert span.name == "generate_content gemini-2.5-flash"
    assert a[names.GEN_AI_PROMPT_NAME] == "math"
    assert a.get(names.GEN_AI_RESPONSE_ID) == response.response_id
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == ("STOP",)


async def test_async_failure(client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry) -> None:
    google_fake.plan("quota_exhausted")
    with pytest.raises(errors.ClientError):
        await client.aio.models.generate_content(model=MODEL, contents=CONTENTS)
    a = attrs(telemetry.span())
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == "RESOURCE_EXHAUSTED"
    assert a[names.AITRACK_ERROR_CATEGORY] == "quota", "a daily quota: waiting a minute will not help"
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == 429
    assert "in test_async_failure" in a[names.AITRACK_ERROR_TRACEBACK]


async def test_async_timeout(google_fake: FakeGoogle, telemetry: Telemetry) -> None:
    client = genai.Client(api_key=API_KEY, http_options={"base_url": google_fake.base_url, "timeout": 200})
    google_fake.plan("slow")
    with pytest.raises(Exception) as raised:
        await client.aio.models.generate_content(model=MODEL, contents=CONTENTS)
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == type(raised.value).__name__
    assert a[names.AITRACK_ERROR_CATEGORY] == "timeout"


async def test_task_cancellation_ends_the_span_without_counting_a_failure(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry
) -> None:
    google_fake.plan("slow")
    with otel_aitrack.track("cancelled"):
        task = asyncio.create_task(client.aio.models.generate_content(model=MODEL, contents=CONTENTS))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    a = attrs(telemetry.span())
    assert a[names.AITRACK_CALL_CANCELLED] is True
    assert names.ERROR_TYPE not in a
    assert otel_aitrack.stats() == {}
    assert telemetry.points(names.METRIC_CALLS) == []


# --- Gemini, Vertex AI, chats -------------------------------------------------------------------


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


def test_no_content_without_capture(client: genai.Client, telemetry: Telemetry) -> None:
    client.models.generate_content(model=MODEL, contents=CONTENTS, config={"system_instruction": "be terse"})
    a = attrs(telemetry.span())
    assert not {
        names.GEN_AI_INPUT_MESSAGES,
        names.GEN_AI_SYSTEM_INSTRUCTIONS,
        names.GEN_AI_OUTPUT_MESSAGES,
    } & set(a)


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


# --- lifecycle and safety -----------------------------------------------------------------------


def _sdk_methods() -> tuple[object, ...]:
    client = getattr(_api_client, "BaseApiClient", None)  # `ApiClient` in early 1.x
    return (
        models.Models.generate_content,
        models.AsyncModels.generate_content,
        getattr(client, "_request_once", None),  # absent before the SDK retried (HttpRetryOptions)
        getattr(client, "_async_request_once", None),
    )


def test_uninstrument_restores_the_sdk_exactly_and_instrument_twice_is_one_span(
    google_fake: FakeGoogle,
) -> None:
    originals = _sdk_methods()
    seen = Telemetry()
    instrumentor = otel_aitrack.AITrackInstrumentor()
    client = genai.Client(api_key=API_KEY, http_options={"base_url": google_fake.base_url})
    try:
        instrumentor.instrument(tracer_provider=seen.tracer_provider, meter_provider=seen.meter_provider)
        wrapped = [now is not before for now, before in zip(_sdk_methods(), originals, strict=True) if before]
        assert len(wrapped) >= 2 and all(wrapped)
        client.models.generate_content(model=MODEL, contents=CONTENTS)
        assert len(seen.spans()) == 1

        instrumentor.uninstrument()
        assert _sdk_methods() == originals
        client.models.generate_content(model=MODEL, contents=CONTENTS)
        assert len(seen.spans()) == 1

        instrumentor.instrument(tracer_provider=seen.tracer_provider, meter_provider=seen.meter_provider)
        instrumentor.instrument(tracer_provider=seen.tracer_provider, meter_provider=seen.meter_provider)
        client.models.generate_content(model=MODEL, contents=CONTENTS)
        assert len(seen.spans()) == 2
    finally:
        instrumentor.uninstrument()
        otel_aitrack.reset_stats()
    assert _sdk_methods() == originals


def test_the_exception_is_the_very_instance_the_sdk_raised(
    client: genai.Client, google_fake: FakeGoogle, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[BaseException] = []
    original = errors.APIError.__init__

    def remember(self: errors.APIError, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        made.append(self)

    monkeypatch.setattr(errors.APIError, "__init__", remember)
    google_fake.plan("unavailable")
    with pytest.raises(errors.ServerError) as raised:
        client.models.generate_content(model=MODEL, contents=CONTENTS)
    assert made == [raised.value]
    assert raised.value.__traceback__ is not None


def test_the_result_is_the_very_object_the_sdk_returned(
    client: genai.Client, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    returned: list[object] = []
    original = models.Models._generate_content

    def remember(self: models.Models, **kwargs: object) -> object:
        response = original(self, **kwargs)  # type: ignore[arg-type]
        returned.append(response)
        return response

    monkeypatch.setattr(models.Models, "_generate_content", remember)
    response = client.models.generate_content(model=MODEL, contents=CONTENTS)
    assert returned == [response] and returned[0] is response
    assert len(telemetry.spans()) == 1


def test_an_internal_error_is_swallowed_counted_and_the_call_succeeds(
    client: genai.Client, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_AITRACK_STRICT", "0")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("instrumentation bug")

    monkeypatch.setattr(GoogleProvider, "response_details", broken)
    response = client.models.generate_content(model=MODEL, contents=CONTENTS)
    assert response.text == TEXT
    assert telemetry.value(names.METRIC_INSTRUMENTATION_ERRORS, error__type="RuntimeError") == 1
