"""Bedrock streams through real boto3: converse_stream and invoke_model_with_response_stream (botocore
EventStreams of `application/vnd.amazon.eventstream` frames) and invoke_model's body (a StreamingBody the
user reads once). Completed, failed by an exception event, truncated, cut, corrupted, aborted, abandoned:
one span each, and the user reads exactly what the SDK gives without otel-aitrack."""

from __future__ import annotations

import gc
import json
from types import SimpleNamespace
from typing import Any

import botocore.endpoint
import pytest
from botocore.eventstream import ChecksumMismatch, EventStream
from botocore.exceptions import ClientError, EventStreamError, ResponseStreamingError
from botocore.response import StreamingBody
from urllib3.exceptions import ProtocolError

import otel_aitrack
from otel_aitrack import names
from otel_aitrack.providers import bedrock
from tests.conftest import CONVERSE_INPUT_TOKENS, Telemetry, make_bedrock_client
from tests.fakes.bedrock_server import (
    CACHE_READ_TOKENS,
    CLAUDE,
    CLAUDE_BODY_MODEL,
    INPUT_TOKENS,
    NOVA,
    OUTPUT_TOKENS,
    STREAM_ERRORS,
    TEXT,
    TITAN,
    FakeBedrock,
)
from tests.support import attrs

MESSAGES = [{"role": "user", "content": [{"text": "Write a haiku"}]}]
BODY = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": MESSAGES})
CONVERSE_EVENTS = ["messageStart", *["contentBlockDelta"] * 3, "contentBlockStop", "messageStop", "metadata"]

# exception event → error.type, category
STREAM_ERROR_CASES = {
    "stream_throttling": ("ThrottlingException", "rate_limit"),
    "stream_model_stream_error": ("ModelStreamErrorException", "server"),
    "stream_internal": ("InternalServerException", "server"),
    "stream_validation": ("ValidationException", "bad_request"),
    "stream_service_unavailable": ("ServiceUnavailableException", "server"),
    "stream_model_timeout": ("ModelTimeoutException", "timeout"),
}
CONVERSE_STREAM_ERRORS = sorted(set(STREAM_ERROR_CASES) - {"stream_model_timeout"})


def haiku_stream(client: Any) -> dict[str, Any]:
    return client.converse_stream(modelId=CLAUDE, messages=MESSAGES)  # type: ignore[no-any-return]


def invoke_stream(client: Any, model: str = CLAUDE) -> dict[str, Any]:
    return client.invoke_model_with_response_stream(modelId=model, body=BODY)  # type: ignore[no-any-return]


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [next(iter(event)) for event in events]


# --- converse_stream ----------------------------------------------------------------------------


def test_a_completed_converse_stream_is_one_span_that_ends_at_the_end(
    bedrock_client: Any, telemetry: Telemetry
) -> None:
    with otel_aitrack.track("haiku"):
        response = haiku_stream(bedrock_client)
    stream = response["stream"]
    assert type(stream) is EventStream, "the SDK's own stream object"
    assert telemetry.spans() == [], "the call lasts as long as its stream"
    events = list(stream)
    assert kinds(events) == CONVERSE_EVENTS
    assert (
        "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e) == TEXT
    )
    span = telemetry.span()
    a = attrs(span)
    assert span.name == f"chat {CLAUDE}"
    assert a[names.GEN_AI_PROMPT_NAME] == "haiku", "attributed where the stream was made"
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] == CONVERSE_INPUT_TOKENS, "metadata's usage"
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == OUTPUT_TOKENS
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == 200
    assert a[names.AITRACK_REQUEST_ID] == response["ResponseMetadata"]["RequestId"]
    assert names.ERROR_TYPE not in a


@pytest.mark.parametrize("scenario", CONVERSE_STREAM_ERRORS)
def test_an_exception_event_in_a_converse_stream_is_a_failure_with_outcome_error(
    bedrock_client: Any, bedrock_fake: FakeBedrock, telemetry: Telemetry, scenario: str
) -> None:
    bedrock_fake.plan(scenario)
    response = haiku_stream(bedrock_client)
    received = []
    with otel_aitrack.track("haiku"), pytest.raises(EventStreamError) as raised:
        for event in response["stream"]:
            received.append(event)
    code, _ = STREAM_ERRORS[scenario]
    assert raised.value.response["Error"]["Code"] == code
    assert kinds(received) == ["messageStart", "contentBlockDelta"]
    error_type, category = STREAM_ERROR_CASES[scenario]
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "error"
    assert a[names.ERROR_TYPE] == error_type, "the modelled exception the event stands for"
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == code
    assert a[names.AITRACK_ERROR_CATEGORY] == category
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == 200, "the stream had opened"
    assert a[names.AITRACK_REQUEST_ID] == response["ResponseMetadata"]["RequestId"]
    traceback = a[names.AITRACK_ERROR_TRACEBACK]
    assert "in test_an_exception_event_in_a_converse_stream_is_a_failure_with_outcome_error" in traceback
    assert traceback.rstrip().splitlines()[-1].startswith("botocore.exceptions.EventStreamError: An error")
    assert otel_aitrack.stats()["untracked"].last_error_code == error_type


def test_a_stream_refused_before_it_opened_is_an_ordinary_failed_call(
    bedrock_client: Any, bedrock_fake: FakeBedrock, telemetry: Telemetry
) -> None:
    bedrock_fake.plan("throttling")
    with pytest.raises(ClientError):
        haiku_stream(bedrock_client)
    a = attrs(telemetry.span())
    assert (a[names.ERROR_TYPE], a[names.HTTP_RESPONSE_STATUS_CODE]) == ("ThrottlingException", 429)
    assert names.AITRACK_STREAM_OUTCOME not in a


def test_a_converse_stream_without_messagestop_and_metadata_is_truncated(
    bedrock_client: Any, bedrock_fake: FakeBedrock, telemetry: Telemetry
) -> None:
    bedrock_fake.plan("stream_truncated")
    events = list(haiku_stream(bedrock_client)["stream"])
    assert kinds(events) == CONVERSE_EVENTS[:-2], "the user still gets every event sent"
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "truncated"
    assert a[names.ERROR_TYPE] == names.STREAM_TRUNCATED_ERROR_TYPE
    assert a[names.AITRACK_ERROR_CATEGORY] == "stream_truncated"
    assert otel_aitrack.stats()["untracked"].total_failed_calls == 1


def test_a_stream_cut_mid_frame_is_a_truncated_failure(
    bedrock_client: Any, bedrock_fake: FakeBedrock, telemetry: Telemetry
) -> None:
    bedrock_fake.plan("stream_cut")
    with pytest.raises(ProtocolError):
        list(haiku_stream(bedrock_client)["stream"])
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "truncated"
    assert a[names.ERROR_TYPE] == "ProtocolError"
    assert a[names.AITRACK_ERROR_CATEGORY] == "stream_truncated"


def test_a_frame_with_a_wrong_crc_is_a_failure(
    bedrock_client: Any, bedrock_fake: FakeBedrock, telemetry: Telemetry
) -> None:
    bedrock_fake.plan("stream_bad_crc")
    with pytest.raises(ChecksumMismatch):
        list(haiku_stream(bedrock_client)["stream"])
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == "ChecksumMismatch"
    assert a[names.AITRACK_STREAM_OUTCOME] == "error"
    assert a[names.AITRACK_ERROR_CATEGORY] == "connection"


def test_break_and_close_is_an_abort_not_a_failure(
    bedrock_client: Any, bedrock_fake: FakeBedrock, telemetry: Telemetry
) -> None:
    bedrock_fake.plan("stream_long")
    stream = haiku_stream(bedrock_client)["stream"]
    for _ in stream:
        break
    assert telemetry.spans() == [], "a break alone leaves the stream open, as without instrumentation"
    stream.close()
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "aborted"
    assert names.ERROR_TYPE not in a
    assert otel_aitrack.stats()["untracked"].total_failed_calls == 0


def test_an_abandoned_stream_ends_its_span_when_collected(
    bedrock_client: Any, bedrock_fake: FakeBedrock, telemetry: Telemetry
) -> None:
    bedrock_fake.plan("stream_long")
    response = haiku_stream(bedrock_client)
    next(iter(response["stream"]))
    del response
    gc.collect()
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "aborted"


def test_a_stream_read_in_two_loops_is_one_completed_call(bedrock_client: Any, telemetry: Telemetry) -> None:
    stream = haiku_stream(bedrock_client)["stream"]
    first = []
    for event in stream:
        first.append(event)
        if len(first) == 2:
            break
    rest = list(stream)
    assert kinds(first + rest) == CONVERSE_EVENTS, "the EventStream carries on where it stopped"
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "completed"


def test_close_after_completion_ends_the_span_once(bedrock_client: Any, telemetry: Telemetry) -> None:
    response = haiku_stream(bedrock_client)
    list(response["stream"])
    response["stream"].close()
    del response
    gc.collect()
    assert len(telemetry.spans()) == 1
    assert otel_aitrack.stats()["untracked"].total_calls == 1


def test_a_stream_retried_by_botocore_is_one_span(
    bedrock_fake: FakeBedrock, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=lambda seconds: None))
    client = make_bedrock_client(bedrock_fake.base_url, retries={"mode": "standard", "total_max_attempts": 2})
    bedrock_fake.reset()
    bedrock_fake.plan("service_unavailable", "ok")
    list(haiku_stream(client)["stream"])
    assert len(bedrock_fake.requests) == 2
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert a[names.HTTP_REQUEST_RESEND_COUNT] == 1


# --- invoke_model_with_response_stream ----------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "response_id", "response_model", "reason", "input_tokens"),
    [
        (CLAUDE, True, CLAUDE_BODY_MODEL, "end_turn", INPUT_TOKENS + CACHE_READ_TOKENS),
        (TITAN, False, None, "FINISH", INPUT_TOKENS),
        (NOVA, False, None, "end_turn", INPUT_TOKENS),
    ],
)
def test_an_invoke_stream_reads_the_model_familys_chunks(
    bedrock_client: Any,
    telemetry: Telemetry,
    model: str,
    response_id: bool,
    response_model: str | None,
    reason: str,
    input_tokens: int,
) -> None:
    response = invoke_stream(bedrock_client, model)
    assert type(response["body"]) is EventStream
    chunks = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]
    a = attrs(telemetry.span())
    assert a[names.AITRACK_STREAM_OUTCOME] == "completed", "the chunk with Bedrock's invocation metrics"
    first_id = chunks[0].get("message", {}).get("id")
    assert a.get(names.GEN_AI_RESPONSE_ID) == (first_id if response_id else None)
    assert a.get(names.GEN_AI_RESPONSE_MODEL) == response_model
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == (reason,)
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] == input_tokens, "Bedrock's invocation metrics"
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == OUTPUT_TOKENS
    assert a[names.AITRACK_REQUEST_ID] == response["ResponseMetadata"]["RequestId"]


@pytest.mark.parametrize("scenario", sorted(STREAM_ERROR_CASES))
def test_an_exception_event_in_an_invoke_stream_is_a_failure_with_outcome_error(
    bedrock_client: Any, bedrock_fake: FakeBedrock, telemetry: Telemetry, scenario: str
) -> None:
    bedrock_fake.plan(scenario)
    with pytest.raises(EventStreamError):
        list(invoke_stream(bedrock_client)["body"])
    error_type, category = STREAM_ERROR_CASES[scenario]
    a = attrs(telemetry.span())
    assert (a[names.AITRACK_STREAM_OUTCOME], a[names.ERROR_TYPE]) == ("error", error_type)
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == STREAM_ERRORS[scenario][0]
    assert a[names.AITRACK_ERROR_CATEGORY] == category
    assert a[names.GEN_AI_RESPONSE_ID].startswith("msg_bdrk_"), "what the stream told before it failed"


@pytest.mark.parametrize("model", [CLAUDE, TITAN])
def test_an_invoke_stream_without_its_last_chunk_is_truncated(
    bedrock_client: Any, bedrock_fake: FakeBedrock, telemetry: Telemetry, model: str
) -> None:
    bedrock_fake.plan("stream_truncated")
    list(invoke_stream(bedrock_client, model)["body"])
    a = attrs(telemetry.span())
    assert (a[names.AITRACK_STREAM_OUTCOME], a[names.AITRACK_ERROR_CATEGORY]) == (
        "truncated",
        "stream_truncated",
    )


def test_an_invoke_stream_closed_early_is_aborted(
    bedrock_client: Any, bedrock_fake: FakeBedrock, telemetry: Telemetry
) -> None:
    bedrock_fake.plan("stream_long")
    body = invoke_stream(bedrock_client)["body"]
    next(iter(body))
    body.close()
    assert attrs(telemetry.span())[names.AITRACK_STREAM_OUTCOME] == "aborted"


# --- invoke_model's body ------------------------------------------------------------------------


def invoke(client: Any, model: str = CLAUDE) -> dict[str, Any]:
    return client.invoke_model(modelId=model, body=BODY)  # type: ignore[no-any-return]


def test_the_body_is_the_sdks_own_and_the_call_ends_when_it_is_read_through(
    bedrock_client: Any, telemetry: Telemetry
) -> None:
    response = invoke(bedrock_client)
    body = response["body"]
    assert type(body) is StreamingBody
    assert telemetry.spans() == [], "nothing is read for us: the call ends when the user has read the body"
    data = b"".join(body)  # 1 KiB chunks, through the body's own iterator
    assert len(data) == int(response["ResponseMetadata"]["HTTPHeaders"]["content-length"])
    assert json.loads(data)["content"][0]["text"] == TEXT
    a = attrs(telemetry.span())
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert a[names.GEN_AI_RESPONSE_ID] == json.loads(data)["id"]
    assert body.read() == b"", "read once, as without instrumentation"
    assert len(telemetry.spans()) == 1


@pytest.mark.parametrize(
    "read",
    [
        lambda body: body.read(),
        lambda body: body.read(10) + body.read(),
        lambda body: b"".join(body.iter_chunks(7)),
        lambda body: b"".join(body.iter_lines()),
        lambda body: json.dumps(json.load(body)).encode(),
    ],
    ids=["read", "read-amt", "iter_chunks", "iter_lines", "json.load"],
)
def test_every_way_of_reading_the_body_ends_the_call_with_its_details(
    bedrock_client: Any, telemetry: Telemetry, read: Any
) -> None:
    response = invoke(bedrock_client)  # kept: the call must end on the read itself, not on collection
    data = read(response["body"])
    assert TEXT.encode() in data
    a = attrs(telemetry.span())
    assert a[names.GEN_AI_RESPONSE_MODEL] == CLAUDE_BODY_MODEL
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == OUTPUT_TOKENS


@pytest.mark.skipif(not hasattr(StreamingBody, "readinto"), reason="this botocore's body has no readinto")
def test_readinto_is_observed_too(bedrock_client: Any, telemetry: Telemetry) -> None:
    response = invoke(bedrock_client, TITAN)
    length = int(response["ResponseMetadata"]["HTTPHeaders"]["content-length"])
    buffer = bytearray(length)
    assert response["body"].readinto(buffer) == length
    assert json.loads(buffer)["results"][0]["outputText"] == TEXT
    assert attrs(telemetry.span())[names.GEN_AI_RESPONSE_FINISH_REASONS] == ("FINISH",)


def test_the_converse_stream_state_ends_with_messagestop_and_metadata_both() -> None:
    state = bedrock.ConverseStreamState({}, capture=False)
    for event in ({"messageStart": {"role": "assistant"}}, {"messageStop": {"stopReason": "max_tokens"}}):
        state.observe(event)
    assert not state.terminal, "the usage is still to come"
    state.observe({"metadata": {"usage": {"inputTokens": 3, "outputTokens": 4}}})
    assert state.terminal
    details = state.details()
    assert details.attributes[names.GEN_AI_RESPONSE_FINISH_REASONS] == ["max_tokens"]
    assert details.tokens == {"input": 3, "output": 4}


def test_a_body_closed_unread_or_collected_ends_the_call_with_the_headers_counts(
    bedrock_client: Any, telemetry: Telemetry
) -> None:
    invoke(bedrock_client)["body"].close()
    del_me = invoke(bedrock_client)
    del del_me
    gc.collect()
    spans = telemetry.spans()
    assert len(spans) == 2
    for span in spans:
        a = attrs(span)
        assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == OUTPUT_TOKENS, "X-Amzn-Bedrock-Output-Token-Count"
        assert names.GEN_AI_RESPONSE_FINISH_REASONS not in a, "the body was never read"
        assert names.ERROR_TYPE not in a
    assert otel_aitrack.stats()["untracked"].total_calls == 2


def test_a_body_over_the_keep_limit_is_not_kept(
    bedrock_client: Any, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bedrock, "BODY_KEEP_LIMIT", 16)
    data = invoke(bedrock_client)["body"].read()
    assert json.loads(data)["type"] == "message"
    a = attrs(telemetry.span())
    assert names.GEN_AI_RESPONSE_FINISH_REASONS not in a
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] == INPUT_TOKENS + CACHE_READ_TOKENS, "the headers' counts"


def test_a_body_cut_mid_way_is_the_calls_failure(
    bedrock_client: Any, bedrock_fake: FakeBedrock, telemetry: Telemetry
) -> None:
    bedrock_fake.plan("body_cut")
    response = invoke(bedrock_client)
    with pytest.raises(ResponseStreamingError):
        response["body"].read()
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == "ResponseStreamingError"
    assert a[names.AITRACK_ERROR_CATEGORY] == "connection"
    assert "in test_a_body_cut_mid_way_is_the_calls_failure" in a[names.AITRACK_ERROR_TRACEBACK]
    assert names.AITRACK_STREAM_OUTCOME not in a
    assert otel_aitrack.stats()["untracked"].total_failed_calls == 1
