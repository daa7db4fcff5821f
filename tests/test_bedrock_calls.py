"""Real boto3 Bedrock Runtime calls: invoke_model's bodies in each model family's shape (Anthropic Messages,
Amazon Titan Text and Embeddings, Amazon Nova), and botocore's retry modes. What every provider shares,
converse and invoke_model with Anthropic bodies included, is in tests/conformance/."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

import otel_aitrack
from otel_aitrack import names
from tests.conformance.cases import BEDROCK, BEDROCK_INVOKE
from tests.conformance.kit import ProviderCase
from tests.conftest import Telemetry, make_bedrock_client
from tests.fakes.bedrock_server import (
    CACHE_READ_TOKENS,
    CLAUDE,
    CLAUDE_BODY_MODEL,
    EMBEDDING,
    INPUT_TOKENS,
    NOVA,
    OUTPUT_TOKENS,
    TEXT,
    TITAN,
    TITAN_EMBED,
    FakeBedrock,
)
from tests.support import attrs

MESSAGES = [{"role": "user", "content": [{"text": "Summarize ticket #42"}]}]
ANTHROPIC_BODY = json.dumps(
    {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 256, "messages": MESSAGES}
).encode()

KEPT: list[Any] = []  # responses kept alive: a call must end on the body's read, not on its collection


def invoke_and_read(client: Any, model: str = CLAUDE) -> dict[str, Any]:
    """invoke_model as the AWS examples use it: the body read at once."""
    with otel_aitrack.track("summarize_ticket"):
        response = client.invoke_model(modelId=model, body=ANTHROPIC_BODY)
        KEPT[:] = [response]
        return json.loads(response["body"].read())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("model", "operation", "response_id", "response_model", "reasons", "input_tokens"),
    [
        # Anthropic Messages: its id and model; input with the cache reads (headers and body agree).
        (CLAUDE, "chat", True, CLAUDE_BODY_MODEL, ("end_turn",), INPUT_TOKENS + CACHE_READ_TOKENS),
        (TITAN, "text_completion", False, None, ("FINISH",), INPUT_TOKENS),  # results[].completionReason
        (NOVA, "chat", False, None, ("end_turn",), INPUT_TOKENS),  # the Converse shape: stopReason
    ],
)
def test_invoke_model_reads_the_model_familys_body_as_the_user_reads_it(
    bedrock_client: Any,
    telemetry: Telemetry,
    model: str,
    operation: str,
    response_id: bool,
    response_model: str | None,
    reasons: tuple[str, ...],
    input_tokens: int,
) -> None:
    body = invoke_and_read(bedrock_client, model)
    assert TEXT in json.dumps(body), "the user reads the whole body, untouched"
    span = telemetry.span()
    a = attrs(span)
    assert span.name == f"{operation} {model}"
    assert a[names.GEN_AI_OPERATION_NAME] == operation
    assert a.get(names.GEN_AI_RESPONSE_ID) == (body["id"] if response_id else None)
    assert a.get(names.GEN_AI_RESPONSE_MODEL) == response_model
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == reasons
    assert (a[names.GEN_AI_USAGE_INPUT_TOKENS], a[names.GEN_AI_USAGE_OUTPUT_TOKENS]) == (
        input_tokens,
        OUTPUT_TOKENS,
    )
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == 200
    assert names.AITRACK_STREAM_OUTCOME not in a, "the user asked for no stream"
    assert otel_aitrack.stats()["summarize_ticket"].total_calls == 1


def test_an_embedding_model_is_the_embeddings_operation(bedrock_client: Any, telemetry: Telemetry) -> None:
    body = invoke_and_read(bedrock_client, TITAN_EMBED)
    assert body["embedding"] == EMBEDDING
    a = attrs(telemetry.span())
    assert a[names.GEN_AI_OPERATION_NAME] == "embeddings"
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] == INPUT_TOKENS
    assert names.GEN_AI_USAGE_OUTPUT_TOKENS not in a, "an embedding generates nothing"
    assert names.GEN_AI_RESPONSE_FINISH_REASONS not in a


# --- botocore's retries (the resend count of each call: tests/conformance/test_retries.py) -------

RETRY_MODES = {
    "standard": {"mode": "standard", "total_max_attempts": 3},
    "legacy": {"mode": "legacy", "max_attempts": 2},  # legacy counts retries, not attempts
}


@pytest.mark.parametrize("mode", sorted(RETRY_MODES))
@pytest.mark.parametrize("case", [BEDROCK, BEDROCK_INVOKE], ids=lambda case: case.name)
def test_botocores_retry_modes_back_off_and_count_their_resends(
    bedrock_fake: FakeBedrock,
    telemetry: Telemetry,
    botocore_waits: list[float],
    mode: str,
    case: ProviderCase,
) -> None:
    client = make_bedrock_client(bedrock_fake.base_url, retries=RETRY_MODES[mode])
    bedrock_fake.reset()
    bedrock_fake.plan("throttling", "service_unavailable", "ok", "throttling", "throttling", "throttling")
    case.call(client)  # retried twice, then answered
    with pytest.raises(ClientError) as raised:
        case.call(client)  # retried twice, then given up
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert len(bedrock_fake.requests) == 6
    assert len(botocore_waits) == 4, "botocore backed off twice per call"
    assert [attrs(span)[names.HTTP_REQUEST_RESEND_COUNT] for span in telemetry.spans()] == [2, 2]
    assert [attrs(span).get(names.ERROR_TYPE) for span in telemetry.spans()] == [None, "ThrottlingException"]
