"""boto3 Bedrock Runtime: lifecycle, other AWS services left alone, identity of results and exceptions,
stats() and consecutive failures beside another provider, captured content, the routing and error
categorisation extractors, and the fake's event-stream encoder against botocore's own decoder."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import botocore.client
import botocore.exceptions
import openai
import pytest
from botocore.eventstream import EventStreamBuffer, EventStreamMessage
from google import genai
from google.genai import types

import otel_aitrack
from otel_aitrack import names
from otel_aitrack.providers import bedrock
from otel_aitrack.providers.bedrock import (
    BedrockProvider,
    endpoint_of,
    error_category,
    invoke_operation,
    route,
)
from tests.conftest import API_KEY, CONVERSE_INPUT_TOKENS, Telemetry, make_bedrock_client
from tests.fakes import google_server
from tests.fakes.bedrock_server import (
    CLAUDE,
    OUTPUT_TOKENS,
    TEXT,
    FakeBedrock,
    encode_message,
    event_message,
    exception_message,
)
from tests.fakes.google_server import FakeGoogle
from tests.fakes.openai_server import FakeOpenAI
from tests.support import attrs

MESSAGES = [{"role": "user", "content": [{"text": "Summarize ticket #42"}]}]


def converse(client: Any, model: str = CLAUDE) -> dict[str, Any]:
    return client.converse(modelId=model, messages=MESSAGES)  # type: ignore[no-any-return]


def ask_bedrock(client: Any, model: str = CLAUDE) -> None:
    try:
        converse(client, model)
    except botocore.exceptions.ClientError:
        pass


def ask_openai(client: openai.OpenAI, model: str = "gpt-4o-mini") -> None:
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    except openai.APIError:
        pass


# --- lifecycle and other services ---------------------------------------------------------------


def test_uninstrument_restores_botocore_exactly_and_instrument_twice_is_one_span(
    bedrock_fake: FakeBedrock,
) -> None:
    original = botocore.client.BaseClient.__dict__["_make_api_call"]
    seen = Telemetry()
    instrumentor = otel_aitrack.AITrackInstrumentor()
    client = make_bedrock_client(bedrock_fake.base_url)
    try:
        instrumentor.instrument(tracer_provider=seen.tracer_provider, meter_provider=seen.meter_provider)
        assert botocore.client.BaseClient.__dict__["_make_api_call"] is not original
        converse(client)
        assert len(seen.spans()) == 1

        instrumentor.uninstrument()
        assert botocore.client.BaseClient.__dict__["_make_api_call"] is original
        converse(client)
        assert len(seen.spans()) == 1, "no span after uninstrument()"

        instrumentor.instrument(tracer_provider=seen.tracer_provider, meter_provider=seen.meter_provider)
        instrumentor.instrument(tracer_provider=seen.tracer_provider, meter_provider=seen.meter_provider)
        converse(client)
        assert len(seen.spans()) == 2
    finally:
        instrumentor.uninstrument()
        otel_aitrack.reset_stats()
    assert botocore.client.BaseClient.__dict__["_make_api_call"] is original


def test_another_aws_service_on_the_same_host_passes_through_without_a_span(
    bedrock_fake: FakeBedrock, bedrock_client: Any, telemetry: Telemetry
) -> None:
    sts = make_bedrock_client(bedrock_fake.base_url, service="sts")
    identity = sts.get_caller_identity()
    assert identity["Account"] == "123456789012"
    assert [request.operation for request in bedrock_fake.requests] == ["GetCallerIdentity"]
    assert telemetry.spans() == []
    assert otel_aitrack.stats() == {}
    converse(bedrock_client)
    assert len(telemetry.spans()) == 1


def test_another_aws_services_failure_is_not_recorded(telemetry: Telemetry) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    s3 = make_bedrock_client(f"http://127.0.0.1:{port}", service="s3")
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        s3.list_buckets()
    assert telemetry.spans() == []
    assert otel_aitrack.stats() == {}
    assert telemetry.points(names.METRIC_CALLS) == []


def test_another_bedrock_runtime_operation_passes_through(
    bedrock_fake: FakeBedrock, bedrock_client: Any, telemetry: Telemetry
) -> None:
    if not hasattr(bedrock_client, "count_tokens"):
        pytest.skip("this botocore has no CountTokens")
    with pytest.raises(botocore.exceptions.ClientError):  # the fake does not serve CountTokens
        bedrock_client.count_tokens(modelId=CLAUDE, input={"converse": {"messages": MESSAGES}})
    assert telemetry.spans() == []


def test_the_route_looks_at_nothing_but_the_operation_for_other_calls() -> None:
    class Untouchable:
        @property
        def meta(self) -> Any:
            raise AssertionError("read for another operation")

    assert route(Untouchable(), ("GetObject", {"Bucket": "b"}), {}) is None
    s3 = type("S3", (), {"meta": type("Meta", (), {"service_model": type("M", (), {"service_name": "s3"})})})
    assert route(s3(), ("Converse", {"modelId": CLAUDE}), {}) is None, "an operation of that name elsewhere"
    runtime = type("Meta", (), {"service_model": type("M", (), {"service_name": "bedrock-runtime"})})
    client = type("BedrockRuntime", (), {"meta": runtime})()
    endpoint, params = route(client, ("InvokeModel", {"modelId": "cohere.embed-english-v3"}), {}) or (
        None,
        {},
    )
    assert endpoint == endpoint_of("InvokeModel", "cohere.embed-english-v3")
    assert (endpoint.operation, params["modelId"]) == ("embeddings", "cohere.embed-english-v3")


def test_the_invoke_operation_follows_the_models_api() -> None:
    assert invoke_operation("us.anthropic.claude-3-5-haiku-20241022-v1:0") == "chat"
    assert invoke_operation("amazon.titan-text-premier-v1:0") == "text_completion"
    assert invoke_operation("amazon.titan-embed-text-v2:0") == "embeddings"
    assert (
        invoke_operation("arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.amazon.nova-pro-v1:0")
        == "chat"
    )


# --- identity, and the guard --------------------------------------------------------------------


def test_the_result_is_the_very_dict_botocore_returned(
    bedrock_client: Any, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    returned: list[Any] = []
    original = botocore.client.BaseClient._make_request

    def remember(self: Any, *args: Any, **kwargs: Any) -> Any:
        http, parsed = original(self, *args, **kwargs)
        returned.append(parsed)
        return http, parsed

    monkeypatch.setattr(botocore.client.BaseClient, "_make_request", remember)
    response = converse(bedrock_client)
    streamed = bedrock_client.converse_stream(modelId=CLAUDE, messages=MESSAGES)
    assert returned[0] is response and returned[1] is streamed
    assert list(streamed) == ["ResponseMetadata", "stream"]
    assert len(list(streamed["stream"])) == 7
    assert len(telemetry.spans()) == 2


def test_the_exception_is_the_very_instance_botocore_raised(
    bedrock_client: Any, bedrock_fake: FakeBedrock, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[BaseException] = []
    original = botocore.exceptions.ClientError.__init__

    def remember(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(botocore.exceptions.ClientError, "__init__", remember)
    bedrock_fake.plan("throttling")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        converse(bedrock_client)
    assert made == [raised.value]
    assert type(raised.value) is bedrock_client.exceptions.ThrottlingException


def test_an_internal_error_is_swallowed_counted_and_the_call_succeeds(
    bedrock_client: Any, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_AITRACK_STRICT", "0")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("instrumentation bug")

    monkeypatch.setattr(BedrockProvider, "response_details", broken)
    monkeypatch.setattr(BedrockProvider, "stream_state", broken)
    assert converse(bedrock_client)["output"]["message"]["content"][0]["text"] == TEXT
    body = bedrock_client.invoke_model(modelId=CLAUDE, body=b"{}")["body"].read()
    assert json.loads(body)["content"][0]["text"] == TEXT
    # converse: its details; invoke_model: following its body, then its details (the call still ends).
    assert telemetry.value(names.METRIC_INSTRUMENTATION_ERRORS, error__type="RuntimeError") == 3
    assert len(telemetry.spans()) == 2


def test_a_route_that_fails_leaves_the_call_to_run_untouched(
    bedrock_client: Any, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_AITRACK_STRICT", "0")
    monkeypatch.setattr(bedrock, "_service_name", lambda client: 1 / 0)
    assert converse(bedrock_client)["stopReason"] == "end_turn"
    assert telemetry.spans() == []
    assert telemetry.value(names.METRIC_INSTRUMENTATION_ERRORS, error__type="ZeroDivisionError") == 1


# --- figures beside other providers -------------------------------------------------------------


def test_consecutive_failures_run_across_bedrock_and_openai(
    bedrock_client: Any,
    bedrock_fake: FakeBedrock,
    client: openai.OpenAI,
    fake: FakeOpenAI,
    telemetry: Telemetry,
) -> None:
    fake.plan("ok", "server_error")
    bedrock_fake.plan("throttling", "model_error", "ok")
    with otel_aitrack.track("summarize_ticket"):
        ask_openai(client)  # ok
        ask_bedrock(bedrock_client)  # 429
        ask_openai(client)  # 500
        ask_bedrock(bedrock_client)  # 424
        stats = otel_aitrack.stats()["summarize_ticket"]
        assert (stats.consecutive_failures, stats.last_error_code) == (3, "ModelErrorException")
        ask_bedrock(bedrock_client)  # ok
    stats = otel_aitrack.stats()["summarize_ticket"]
    assert (stats.total_calls, stats.total_failed_calls, stats.consecutive_failures) == (5, 3, 0)
    calls = names.METRIC_CALLS
    assert (
        telemetry.value(calls, gen_ai__provider__name="aws.bedrock", error__type="ThrottlingException") == 1
    )
    assert (
        telemetry.value(calls, gen_ai__provider__name="aws.bedrock", error__type="ModelErrorException") == 1
    )
    ok = [p for p in telemetry.points(calls) if "error.type" not in p.attributes]
    assert {p.attributes["gen_ai.provider.name"]: p.value for p in ok} == {"openai": 1, "aws.bedrock": 1}


def test_bedrock_duration_and_token_usage_follow_the_semantic_conventions(
    bedrock_client: Any, telemetry: Telemetry
) -> None:
    with otel_aitrack.track("summarize"):
        converse(bedrock_client)
    point = next(iter(telemetry.points(names.METRIC_OPERATION_DURATION)))
    assert point.attributes["gen_ai.provider.name"] == "aws.bedrock"
    assert point.attributes["gen_ai.operation.name"] == "chat"
    assert point.attributes["gen_ai.request.model"] == CLAUDE
    assert point.attributes["server.address"] == "127.0.0.1"
    usage = {p.attributes["gen_ai.token.type"]: p.sum for p in telemetry.points(names.METRIC_TOKEN_USAGE)}
    assert usage == {"input": CONVERSE_INPUT_TOKENS, "output": OUTPUT_TOKENS}


def test_threads_calling_bedrock_give_exact_totals(bedrock_fake: FakeBedrock, telemetry: Telemetry) -> None:
    client = make_bedrock_client(bedrock_fake.base_url)  # boto3 clients are thread-safe

    def worker(index: int) -> None:
        with otel_aitrack.track("threaded"):
            for _ in range(25):
                ask_bedrock(client, "internal" if index % 2 else CLAUDE)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = otel_aitrack.stats()["threaded"]
    assert (stats.total_calls, stats.total_failed_calls) == (100, 50)
    assert len(telemetry.spans()) == 100


def test_a_bedrock_call_made_by_a_tool_during_a_google_call_is_a_call_of_its_own(
    bedrock_client: Any, telemetry: Telemetry
) -> None:
    """Google's automatic function calling runs the tool inside the Google call; the tool's Bedrock call
    (which reaches `_make_api_call` from botocore's code) is its own call, a child span."""

    def summarize_ticket(ticket_id: int) -> str:
        """Summarizes a support ticket."""
        return str(converse(bedrock_client)["output"]["message"]["content"][0]["text"])

    summarize_ticket.__annotations__ = {"ticket_id": int, "return": str}  # google-genai 1.x reads types
    with FakeGoogle() as google_fake:
        google_fake.plan("function_call", "ok")
        google_client = genai.Client(
            api_key=google_server.API_KEY, http_options={"base_url": google_fake.base_url}
        )
        with otel_aitrack.track("triage"):
            google_client.models.generate_content(
                model="gemini-2.5-flash",
                contents="Triage ticket 42",
                config=types.GenerateContentConfig(tools=[summarize_ticket]),
            )
    spans = {span.attributes[names.GEN_AI_PROVIDER_NAME]: span for span in telemetry.spans()}
    assert set(spans) == {"gcp.gemini", "aws.bedrock"}
    assert spans["aws.bedrock"].parent.span_id == spans["gcp.gemini"].context.span_id
    assert otel_aitrack.stats()["triage"].total_calls == 2


# --- captured content ---------------------------------------------------------------------------


def test_content_capture_records_converse_system_input_and_output(
    bedrock_client: Any, telemetry: Telemetry
) -> None:
    messages = [
        {"role": "user", "content": [{"text": "What is the weather?"}]},
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "t1", "name": "weather", "input": {"city": "Paris"}}}],
        },
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "rainy"}]}}]},
    ]
    with otel_aitrack.track("weather", capture_content=True):
        bedrock_client.converse(
            modelId=CLAUDE, messages=messages, system=[{"text": f"Be terse. Key {API_KEY}"}]
        )
    a = attrs(telemetry.span())
    assert json.loads(a[names.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is the weather?"}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "t1", "name": "weather", "arguments": {"city": "Paris"}}],
        },
        {
            "role": "user",
            "parts": [{"type": "tool_call_response", "id": "t1", "response": [{"text": "rainy"}]}],
        },
    ]
    assert json.loads(a[names.GEN_AI_SYSTEM_INSTRUCTIONS]) == [
        {"type": "text", "content": "Be terse. Key [REDACTED]"}
    ]
    assert json.loads(a[names.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": TEXT}], "finish_reason": "end_turn"}
    ]


def test_content_capture_of_a_converse_stream(bedrock_client: Any, telemetry: Telemetry) -> None:
    with otel_aitrack.track("haiku", capture_content=True):
        response = bedrock_client.converse_stream(modelId=CLAUDE, messages=MESSAGES)
    list(response["stream"])
    a = attrs(telemetry.span())
    assert json.loads(a[names.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": TEXT}], "finish_reason": "end_turn"}
    ]


def test_no_content_without_capture(bedrock_client: Any, telemetry: Telemetry) -> None:
    bedrock_client.converse(modelId=CLAUDE, messages=MESSAGES, system=[{"text": "Be terse."}])
    a = attrs(telemetry.span())
    assert not {
        names.GEN_AI_INPUT_MESSAGES,
        names.GEN_AI_SYSTEM_INSTRUCTIONS,
        names.GEN_AI_OUTPUT_MESSAGES,
    } & set(a)


# --- the one categorisation, for what the fake cannot make --------------------------------------


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (botocore.exceptions.ConnectTimeoutError(endpoint_url="https://bedrock-runtime"), "timeout"),
        (botocore.exceptions.ReadTimeoutError(endpoint_url="https://bedrock-runtime"), "timeout"),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="https://bedrock-runtime"), "connection"),
        (botocore.exceptions.ConnectionClosedError(endpoint_url="https://bedrock-runtime"), "connection"),
        (botocore.exceptions.ProxyConnectionError(proxy_url="http://proxy"), "connection"),
        (botocore.exceptions.NoCredentialsError(), "auth"),
        (botocore.exceptions.ParamValidationError(report="Missing required parameter"), "bad_request"),
        (botocore.exceptions.ClientError({"Error": {"Code": "ExpiredTokenException"}}, "Converse"), "auth"),
        (
            botocore.exceptions.ClientError(
                {"Error": {"Code": "SomethingNew"}, "ResponseMetadata": {"HTTPStatusCode": 502}}, "Converse"
            ),
            "server",
        ),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value,
)
def test_botocores_errors_are_categorized_in_one_place(error: BaseException, category: str) -> None:
    details = BedrockProvider().error_details(error)
    assert details.category == category
    assert error_category(error, details.status_code, details.provider_code) == category


# --- the fake's event-stream encoding, decoded by botocore --------------------------------------


def test_the_fakes_frames_decode_with_botocores_own_decoder() -> None:
    frames = [
        event_message("messageStart", {"role": "assistant"}),
        event_message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hé"}}),
        exception_message("throttlingException", "Too many tokens"),
    ]
    buffer = EventStreamBuffer()
    for frame in frames:  # fed in uneven pieces, as a network delivers them
        for start in range(0, len(frame), 5):
            buffer.add_data(frame[start : start + 5])
    decoded: list[EventStreamMessage] = list(buffer)
    assert [m.headers.get(":event-type") or m.headers[":exception-type"] for m in decoded] == [
        "messageStart",
        "contentBlockDelta",
        "throttlingException",
    ]
    assert decoded[1].headers[":message-type"] == "event"
    assert json.loads(decoded[1].payload)["delta"] == {"text": "Hé"}
    assert decoded[2].to_response_dict()["status_code"] == 400
    assert all(m.prelude.total_length == len(f) for m, f in zip(decoded, frames, strict=True))


def test_a_frame_with_a_wrong_crc_is_refused_by_botocore() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(encode_message({":event-type": "chunk"}, b"{}", corrupt_crc=True))
    with pytest.raises(Exception, match="Checksum mismatch"):
        list(buffer)
