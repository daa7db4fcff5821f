"""Real boto3 Bedrock Runtime calls (converse, invoke_model): what a success records, every failure with
what failed, why and where it was called, botocore's retries as one span, and no AWS credential exported."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import botocore.endpoint
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from opentelemetry.trace import SpanKind, StatusCode

import otel_aitrack
from otel_aitrack import names
from tests.conftest import (
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN,
    CONVERSE_INPUT_TOKENS,
    Telemetry,
    instrumented,
    make_bedrock_client,
)
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
from tests.support import attrs, event

MESSAGES = [{"role": "user", "content": [{"text": "Summarize ticket #42"}]}]
ANTHROPIC_BODY = json.dumps(
    {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 256, "messages": MESSAGES}
).encode()

# scenario, botocore's exception class name, error.type, HTTP status, category
ERROR_CASES = [
    ("throttling", "ThrottlingException", "ThrottlingException", 429, "rate_limit"),
    ("service_quota", "ServiceQuotaExceededException", "ServiceQuotaExceededException", 400, "quota"),
    ("access_denied", "AccessDeniedException", "AccessDeniedException", 403, "auth"),
    # Not in Bedrock's model: botocore raises its generic ClientError; the code names the error.
    ("unrecognized_client", "ClientError", "UnrecognizedClientException", 403, "auth"),
    ("resource_not_found", "ResourceNotFoundException", "ResourceNotFoundException", 404, "not_found"),
    ("validation", "ValidationException", "ValidationException", 400, "bad_request"),
    ("model_timeout", "ModelTimeoutException", "ModelTimeoutException", 408, "timeout"),
    ("internal", "InternalServerException", "InternalServerException", 500, "server"),
    ("service_unavailable", "ServiceUnavailableException", "ServiceUnavailableException", 503, "server"),
    ("model_not_ready", "ModelNotReadyException", "ModelNotReadyException", 429, "server"),
    ("model_error", "ModelErrorException", "ModelErrorException", 424, "server"),
]


def summarize_ticket(client: Any, model: str = CLAUDE) -> dict[str, Any]:
    """The user's call site: it must show up in the exported traceback."""
    with otel_aitrack.track("summarize_ticket", task="summarize a ticket", user="agent-7"):
        return client.converse(modelId=model, messages=MESSAGES)  # type: ignore[no-any-return]


KEPT: list[Any] = []  # responses kept alive: a call must end on the body's read, not on its collection


def invoke_and_read(client: Any, model: str = CLAUDE) -> dict[str, Any]:
    """invoke_model as the AWS examples use it: the body read at once."""
    with otel_aitrack.track("summarize_ticket"):
        response = client.invoke_model(modelId=model, body=ANTHROPIC_BODY)
        KEPT[:] = [response]
        return json.loads(response["body"].read())  # type: ignore[no-any-return]


CALLS: dict[str, Callable[[Any], Any]] = {"converse": summarize_ticket, "invoke_model": invoke_and_read}


@pytest.fixture
def no_retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry loop runs as is; only its back-off sleep is skipped (and recorded)."""
    waits: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=waits.append))
    return waits


def test_converse_success_records_the_genai_attributes(bedrock_client: Any, telemetry: Telemetry) -> None:
    response = summarize_ticket(bedrock_client)
    span = telemetry.span()
    a = attrs(span)
    assert span.name == f"chat {CLAUDE}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert a[names.GEN_AI_OPERATION_NAME] == "chat"
    assert a[names.GEN_AI_PROVIDER_NAME] == "aws.bedrock"
    assert a[names.GEN_AI_REQUEST_MODEL] == CLAUDE
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == (response["stopReason"],) == ("end_turn",)
    # Input as the semantic conventions count it: Bedrock's `inputTokens` and the cache reads counted apart.
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] == CONVERSE_INPUT_TOKENS
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == response["usage"]["outputTokens"] == OUTPUT_TOKENS
    assert a[names.HTTP_RESPONSE_STATUS_CODE] == 200
    assert a[names.AITRACK_REQUEST_ID] == response["ResponseMetadata"]["RequestId"]
    assert a[names.AITRACK_REQUEST_ID] == response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert a[names.SERVER_ADDRESS] == "127.0.0.1"
    assert isinstance(a[names.SERVER_PORT], int)
    assert (a[names.GEN_AI_PROMPT_NAME], a[names.AITRACK_TASK], a[names.USER_ID]) == (
        "summarize_ticket",
        "summarize a ticket",
        "agent-7",
    )
    assert names.ERROR_TYPE not in a
    assert names.HTTP_REQUEST_RESEND_COUNT not in a
    assert names.AITRACK_STREAM_OUTCOME not in a
    assert not span.events


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


@pytest.mark.parametrize("operation", sorted(CALLS))
@pytest.mark.parametrize(("scenario", "error_class", "error_type", "status", "category"), ERROR_CASES)
def test_each_bedrock_error_records_its_type_status_code_request_id_and_category(
    bedrock_client: Any,
    bedrock_fake: FakeBedrock,
    telemetry: Telemetry,
    operation: str,
    scenario: str,
    error_class: str,
    error_type: str,
    status: int,
    category: str,
) -> None:
    bedrock_fake.plan(scenario)
    with pytest.raises(ClientError) as raised:
        CALLS[operation](bedrock_client)
    error = raised.value
    assert type(error).__name__ == error_class
    span = telemetry.span()
    a = attrs(span)
    assert a[names.ERROR_TYPE] == error_type
    assert a[names.AITRACK_ERROR_PROVIDER_CODE] == error.response["Error"]["Code"] == error_type
    assert (
        a[names.HTTP_RESPONSE_STATUS_CODE] == status == error.response["ResponseMetadata"]["HTTPStatusCode"]
    )
    assert a[names.AITRACK_ERROR_CATEGORY] == category
    assert a[names.AITRACK_REQUEST_ID] == error.response["ResponseMetadata"]["RequestId"]
    assert names.HTTP_REQUEST_RESEND_COUNT not in a
    assert span.status.status_code is StatusCode.ERROR
    assert a[names.AITRACK_ERROR_MESSAGE] == str(error)
    assert event(span, "exception")["exception.type"] == f"{type(error).__module__}.{error_class}"
    stats = otel_aitrack.stats()["summarize_ticket"]
    assert (stats.total_failed_calls, stats.last_error_code) == (1, error_type)


def test_failure_traceback_runs_from_the_caller_through_botocore_to_the_raise(
    bedrock_client: Any, bedrock_fake: FakeBedrock, telemetry: Telemetry
) -> None:
    bedrock_fake.plan("resource_not_found")
    with pytest.raises(ClientError):
        summarize_ticket(bedrock_client)
    text = attrs(telemetry.span())[names.AITRACK_ERROR_TRACEBACK]
    assert text.startswith("Traceback (most recent call last):\n")
    assert "in test_failure_traceback_runs_from_the_caller_through_botocore_to_the_raise" in text
    assert "in summarize_ticket\n    return client.converse(modelId=model, messages=MESSAGES)" in text
    assert "botocore/client.py" in text
    assert "otel_aitrack" not in text
    assert text.index("in summarize_ticket") < text.index("botocore/client.py")
    last = text.rstrip().splitlines()[-1]
    assert last.startswith("botocore.errorfactory.ResourceNotFoundException: An error occurred")


def test_connection_refused_is_a_connection_failure(telemetry: Telemetry) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_bedrock_client(f"http://127.0.0.1:{port}")
    with pytest.raises(EndpointConnectionError):
        summarize_ticket(client)
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == "EndpointConnectionError"
    assert a[names.AITRACK_ERROR_CATEGORY] == "connection"
    assert a[names.SERVER_PORT] == port
    assert names.HTTP_RESPONSE_STATUS_CODE not in a
    assert names.AITRACK_ERROR_PROVIDER_CODE not in a


def test_a_read_timeout_is_a_timeout_failure(bedrock_fake: FakeBedrock, telemetry: Telemetry) -> None:
    client = make_bedrock_client(bedrock_fake.base_url, read_timeout=0.2)
    bedrock_fake.plan("slow")
    with pytest.raises(ReadTimeoutError):
        summarize_ticket(client)
    a = attrs(telemetry.span())
    assert a[names.ERROR_TYPE] == "ReadTimeoutError"
    assert a[names.AITRACK_ERROR_CATEGORY] == "timeout"
    assert names.HTTP_RESPONSE_STATUS_CODE not in a


# --- botocore's retries -------------------------------------------------------------------------

RETRY_MODES = {
    "standard": {"mode": "standard", "total_max_attempts": 3},
    "legacy": {"mode": "legacy", "max_attempts": 2},  # legacy counts retries, not attempts
}


@pytest.mark.parametrize("mode", sorted(RETRY_MODES))
@pytest.mark.parametrize("operation", sorted(CALLS))
def test_retries_are_one_span_with_botocores_resend_count(
    bedrock_fake: FakeBedrock, telemetry: Telemetry, no_retry_waits: list[float], mode: str, operation: str
) -> None:
    client = make_bedrock_client(bedrock_fake.base_url, retries=RETRY_MODES[mode])
    bedrock_fake.reset()
    bedrock_fake.plan("throttling", "service_unavailable", "ok")
    CALLS[operation](client)
    assert len(bedrock_fake.requests) == 3
    assert len(no_retry_waits) == 2, "botocore backed off twice"
    span = telemetry.span()
    assert span.status.status_code is StatusCode.UNSET
    assert attrs(span)[names.HTTP_REQUEST_RESEND_COUNT] == 2
    assert telemetry.value(names.METRIC_CALLS, gen_ai__prompt__name="summarize_ticket") == 1
    assert otel_aitrack.stats()["summarize_ticket"].total_failed_calls == 0


@pytest.mark.parametrize("mode", sorted(RETRY_MODES))
def test_exhausted_retries_are_one_failure_with_the_resend_count(
    bedrock_fake: FakeBedrock, telemetry: Telemetry, no_retry_waits: list[float], mode: str
) -> None:
    client = make_bedrock_client(bedrock_fake.base_url, retries=RETRY_MODES[mode])
    bedrock_fake.reset()
    bedrock_fake.plan("throttling", "throttling", "throttling")
    with pytest.raises(ClientError) as raised:
        summarize_ticket(client)
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    a = attrs(telemetry.span())
    assert a[names.HTTP_REQUEST_RESEND_COUNT] == 2
    assert (a[names.ERROR_TYPE], a[names.AITRACK_ERROR_CATEGORY]) == ("ThrottlingException", "rate_limit")
    assert len(bedrock_fake.requests) == 3
    assert otel_aitrack.stats()["summarize_ticket"].total_failed_calls == 1


def test_an_error_botocore_does_not_retry_is_sent_once(
    bedrock_fake: FakeBedrock, telemetry: Telemetry, no_retry_waits: list[float]
) -> None:
    client = make_bedrock_client(bedrock_fake.base_url, retries=RETRY_MODES["standard"])
    bedrock_fake.reset()
    bedrock_fake.plan("validation", "ok")
    with pytest.raises(ClientError):
        summarize_ticket(client)
    assert len(bedrock_fake.requests) == 1
    a = attrs(telemetry.span())
    assert a[names.AITRACK_ERROR_CATEGORY] == "bad_request"
    assert names.HTTP_REQUEST_RESEND_COUNT not in a


# --- AWS credentials ----------------------------------------------------------------------------


@pytest.fixture
def exported_with_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    monkeypatch.setenv("OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN", "logs/dup")  # the span event and a log record
    with instrumented() as seen:
        yield seen


def _everything_exported(seen: Telemetry) -> str:
    spans = [
        [span.name, str(span.status.description), dict(span.attributes or {})]
        + [[e.name, dict(e.attributes or {})] for e in span.events]
        for span in seen.spans()
    ]
    logs = [
        [str(log.log_record.body), dict(log.log_record.attributes or {})]
        for log in seen.logs_exporter.get_finished_logs()
    ]
    points = [
        dict(point.attributes)
        for name in (names.METRIC_CALLS, names.METRIC_OPERATION_DURATION)
        for point in seen.points(name)
    ]
    stats = [vars(prompt) for prompt in otel_aitrack.stats().values()]
    return json.dumps([spans, logs, points, stats], default=str)


@pytest.mark.parametrize(
    ("scenario", "echoed"),
    [
        ("incomplete_signature", AWS_ACCESS_KEY_ID),  # the Authorization header: `Credential=<key id>/…`
        ("invalid_signature", AWS_SESSION_TOKEN),  # the canonical request: `x-amz-security-token:<token>`
    ],
)
def test_aws_credentials_echoed_by_an_error_are_exported_nowhere(
    bedrock_fake: FakeBedrock, exported_with_logs: Telemetry, scenario: str, echoed: str
) -> None:
    client = make_bedrock_client(bedrock_fake.base_url)
    bedrock_fake.reset()
    bedrock_fake.plan(scenario)
    with pytest.raises(ClientError) as raised:
        summarize_ticket(client)
    assert echoed in str(raised.value), "AWS echoes it: the user's exception keeps it"
    assert bedrock_fake.requests[-1].headers["x-amz-security-token"] == AWS_SESSION_TOKEN
    exported = _everything_exported(exported_with_logs)
    assert exported_with_logs.logs_exporter.get_finished_logs(), "the exception went out as a log record too"
    assert "[REDACTED]" in exported
    for secret in (
        AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY,
        AWS_SESSION_TOKEN,
        "TESTKEY1",
        "TESTSECRET",
        "TESTSESSION",
    ):
        assert secret not in exported
    assert attrs(exported_with_logs.span())[names.AITRACK_ERROR_CATEGORY] == "auth"
