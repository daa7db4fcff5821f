"""What is Bedrock's own in its streams through real boto3: a frame with a wrong CRC, the model families'
chunks of invoke_model_with_response_stream, and invoke_model's body (a StreamingBody the user reads once,
in every way botocore offers). The outcomes every provider's streams share, ConverseStream's and the
Anthropic bodies' InvokeModel stream's included, are in tests/conformance/test_streams.py."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest
from botocore.eventstream import ChecksumMismatch, EventStream
from botocore.exceptions import ResponseStreamingError
from botocore.response import StreamingBody

import otel_aitrack
from otel_aitrack import names
from otel_aitrack.providers import bedrock
from tests.conftest import Telemetry
from tests.fakes.bedrock_server import (
    CACHE_READ_TOKENS,
    CLAUDE,
    CLAUDE_BODY_MODEL,
    INPUT_TOKENS,
    NOVA,
    OUTPUT_TOKENS,
    TEXT,
    TITAN,
    FakeBedrock,
)
from tests.support import attrs

MESSAGES = [{"role": "user", "content": [{"text": "Write a haiku"}]}]
BODY = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": MESSAGES})


def haiku_stream(client: Any) -> dict[str, Any]:
    return client.converse_stream(modelId=CLAUDE, messages=MESSAGES)  # type: ignore[no-any-return]


def invoke_stream(client: Any, model: str = CLAUDE) -> dict[str, Any]:
    return client.invoke_model_with_response_stream(modelId=model, body=BODY)  # type: ignore[no-any-return]


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


@pytest.mark.parametrize("model", [TITAN, NOVA])  # (Anthropic bodies: tests/conformance)
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
