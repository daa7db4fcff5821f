"""boto3 Bedrock Runtime: other AWS services and operations left alone, the route, converse_stream's response
dict, captured content, the error categorisation for what the fake cannot make, and the fake's
event-stream encoder against botocore's own decoder. What every provider shares is in tests/conformance/."""

from __future__ import annotations

import json
import socket
from typing import Any

import botocore.client
import botocore.exceptions
import pytest
from botocore.eventstream import EventStreamBuffer, EventStreamMessage

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
from tests.conftest import API_KEY, Telemetry, make_bedrock_client
from tests.fakes.bedrock_server import (
    CLAUDE,
    TEXT,
    FakeBedrock,
    encode_message,
    event_message,
    exception_message,
)
from tests.support import attrs

MESSAGES = [{"role": "user", "content": [{"text": "Summarize ticket #42"}]}]


def converse(client: Any, model: str = CLAUDE) -> dict[str, Any]:
    return client.converse(modelId=model, messages=MESSAGES)  # type: ignore[no-any-return]


# --- other services -----------------------------------------------------------------------------


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


# --- the stream's response, the route -----------------------------------------------------------------


def test_converse_streams_response_is_the_very_dict_botocore_returned(
    bedrock_client: Any, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    returned: list[Any] = []
    original = botocore.client.BaseClient._make_request

    def remember(self: Any, *args: Any, **kwargs: Any) -> Any:
        http, parsed = original(self, *args, **kwargs)
        returned.append(parsed)
        return http, parsed

    monkeypatch.setattr(botocore.client.BaseClient, "_make_request", remember)
    streamed = bedrock_client.converse_stream(modelId=CLAUDE, messages=MESSAGES)
    assert returned == [streamed] and returned[0] is streamed
    assert list(streamed) == ["ResponseMetadata", "stream"]
    assert len(list(streamed["stream"])) == 7
    assert len(telemetry.spans()) == 1


def test_a_route_that_fails_leaves_the_call_to_run_untouched(
    bedrock_client: Any, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_AITRACK_STRICT", "0")
    monkeypatch.setattr(bedrock, "_service_name", lambda client: 1 / 0)
    assert converse(bedrock_client)["stopReason"] == "end_turn"
    assert telemetry.spans() == []
    assert telemetry.value(names.METRIC_INSTRUMENTATION_ERRORS, error__type="ZeroDivisionError") == 1


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
