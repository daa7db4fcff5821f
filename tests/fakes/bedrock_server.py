"""A fake Amazon Bedrock Runtime on 127.0.0.1 that the real boto3 / botocore client talks to over real HTTP.

Standard library only; the same `plan()` / scenario API as the other fakes. Each request gets a
*scenario*: the head of the queue set by `plan()`, else the request's model id when it names a scenario
(so `modelId="throttling"` always fails), else `"ok"`.

Scenarios:
    ok                  a success: Converse's JSON, or the model family's own body for InvokeModel
                        (Anthropic Messages, Amazon Titan Text and Embeddings, Amazon Nova, by model id);
                        streams as `application/vnd.amazon.eventstream` frames (prelude, headers, payload,
                        CRCs)
    slow                waits 2 s, then ok (for client read timeouts)
    throttling (429), service_quota (400 ServiceQuotaExceededException), access_denied (403),
    unrecognized_client (403, the AWS front door's answer to an unknown access key), incomplete_signature
    (403, echoes the request's Authorization header, as AWS does), invalid_signature (403, echoes the
    canonical request, the session token header included, as AWS does), resource_not_found (404), validation
    (400), model_timeout (408), internal (500), service_unavailable (503), model_not_ready (429),
    model_error (424, with `originalStatusCode`)
                        Bedrock's error answer: `x-amzn-ErrorType: <Code>:<namespace>`, body
                        `{"message": ...}`, also when a stream was asked for
    stream_throttling, stream_model_stream_error, stream_internal, stream_validation,
    stream_service_unavailable, stream_model_timeout (InvokeModelWithResponseStream only)
                        a few events, then an exception event (`:message-type: exception`) of that kind
    stream_truncated    every event but the end (Converse: no messageStop / metadata; InvokeModel: no last
                        chunk), then a clean end of the body
    stream_cut          a few events, then the connection drops in the middle of a frame
    stream_bad_crc      a few events, then a frame whose message CRC is wrong
    stream_long         200 text deltas 5 ms apart, then a normal end
    body_cut            InvokeModel: the first half of its body's Content-Length, then the connection drops
Stream scenarios answer a non-stream operation with ok.

Endpoints (POST): `/model/{modelId}/converse`, `/converse-stream`, `/invoke`,
`/invoke-with-response-stream`; and STS `GetCallerIdentity` (POST / with `Action=GetCallerIdentity`),
another AWS service on the same host for the tests that prove other services are left alone. Headers
(`x-amzn-RequestId`, `x-amzn-ErrorType`, `X-Amzn-Bedrock-*-Token-Count`, `X-Amzn-Bedrock-Content-Type`)
and bodies have the shapes the real service sends, the `"p"` padding of stream events included.
"""

from __future__ import annotations

import base64
import json
import random
import string
import struct
import uuid
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from otel_aitrack.cli.fake_provider import LoopbackFake, LoopbackHandler, RecordedRequest, StreamCut, pieces

SLOW_SECONDS = 2.0
LONG_STREAM_DELTAS = 200
LONG_STREAM_PAUSE = 0.005
TEXT = "This is a test response."
INPUT_TOKENS, CACHE_READ_TOKENS, OUTPUT_TOKENS = 12, 3, 7
LATENCY_MS = 321
ACCOUNT = "123456789012"
CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
# The `model` an Anthropic body names: the model's own id, without Bedrock's prefix and version suffix.
CLAUDE_BODY_MODEL = "claude-3-5-haiku-20241022"
TITAN = "amazon.titan-text-express-v1"
TITAN_EMBED = "amazon.titan-embed-text-v2:0"
NOVA = "amazon.nova-lite-v1:0"
EMBEDDING = [0.0123, -0.0456, 0.0789, -0.0112]
OPERATIONS = {
    "converse": "Converse",
    "converse-stream": "ConverseStream",
    "invoke": "InvokeModel",
    "invoke-with-response-stream": "InvokeModelWithResponseStream",
}
_BEDROCK = "http://internal.amazon.com/coral/com.amazon.bedrock/"
_CORAL = "http://internal.amazon.com/coral/com.amazon.coral.service/"


@dataclass(frozen=True)
class ErrorSpec:
    """One of Bedrock's error answers; `message` may use the fields `error_body` fills in."""

    status: int
    code: str
    message: str
    namespace: str = _BEDROCK
    extra: tuple[tuple[str, Any], ...] = ()


ERRORS: dict[str, ErrorSpec] = {
    "throttling": ErrorSpec(
        429, "ThrottlingException", "Too many requests, please wait before trying again."
    ),
    "service_quota": ErrorSpec(
        400,
        "ServiceQuotaExceededException",
        "Your request exceeds the service quota for your account. You can view your quotas at "
        "https://docs.aws.amazon.com/servicequotas/latest/userguide/gs-request-quota.html",
    ),
    "access_denied": ErrorSpec(
        403, "AccessDeniedException", "You don't have access to the model with the specified model ID."
    ),
    "unrecognized_client": ErrorSpec(
        403, "UnrecognizedClientException", "The security token included in the request is invalid.", _CORAL
    ),
    "incomplete_signature": ErrorSpec(
        403,
        "IncompleteSignatureException",
        "'{short}' not a valid key=value pair (missing equal-sign) in Authorization header: "
        "'{authorization}'.",
        _CORAL,
    ),
    "invalid_signature": ErrorSpec(
        403,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check your AWS "
        "Secret Access Key and signing method. Consult the service documentation for details.\n\nThe "
        "Canonical String for this request should have been\n'POST\n{path}\n\n{canonical_headers}'",
        _CORAL,
    ),
    "resource_not_found": ErrorSpec(
        404, "ResourceNotFoundException", "Could not resolve the foundation model from the model identifier."
    ),
    "validation": ErrorSpec(
        400,
        "ValidationException",
        "Malformed input request: #: extraneous key [temperatur] is not permitted, please reformat your "
        "input and try again.",
    ),
    "model_timeout": ErrorSpec(
        408, "ModelTimeoutException", "Model has timed out in processing the request. Try your request again."
    ),
    "internal": ErrorSpec(
        500,
        "InternalServerException",
        "The system encountered an unexpected error during processing. Try your request again.",
    ),
    "service_unavailable": ErrorSpec(
        503, "ServiceUnavailableException", "Bedrock is unable to process your request."
    ),
    "model_not_ready": ErrorSpec(
        429,
        "ModelNotReadyException",
        "Model is not ready to serve inference requests. The model may still be loading; try again later.",
    ),
    "model_error": ErrorSpec(
        424,
        "ModelErrorException",
        "Received error from the model: the model returned an error while processing the request.",
        extra=(
            ("originalStatusCode", 500),
            ("resourceName", "arn:aws:bedrock:us-east-1::foundation-model/{model}"),
        ),
    ),
}
# The exception events a stream can carry (`:exception-type`), and their messages.
STREAM_ERRORS: dict[str, tuple[str, str]] = {
    "stream_throttling": ("throttlingException", "Too many tokens, please wait before trying again."),
    "stream_model_stream_error": (
        "modelStreamErrorException",
        "The model stream ended with an error: the model returned an unexpected response.",
    ),
    "stream_internal": ("internalServerException", "The system encountered an unexpected error."),
    "stream_validation": ("validationException", "Output blocked: the response exceeded the allowed length."),
    "stream_service_unavailable": (
        "serviceUnavailableException",
        "Bedrock is unable to process your request.",
    ),
    # InvokeModelWithResponseStream's stream only (ConverseStream's has no such event).
    "stream_model_timeout": ("modelTimeoutException", "Model has timed out in processing the request."),
}
STREAM_SCENARIOS = frozenset(
    {*STREAM_ERRORS, "stream_truncated", "stream_cut", "stream_bad_crc", "stream_long"}
)
SCENARIOS = frozenset({"ok", "slow", "body_cut", *ERRORS, *STREAM_SCENARIOS})


# --- the event stream encoding (application/vnd.amazon.eventstream) ------------------------------

_STRING_HEADER = 7


def encode_headers(headers: Mapping[str, str]) -> bytes:
    """Event headers, all of type string: name length (1 byte), name, type 7, value length (2), value."""
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += struct.pack("!B", len(raw_name)) + raw_name
        encoded += struct.pack("!BH", _STRING_HEADER, len(raw_value)) + raw_value
    return encoded


def encode_message(headers: Mapping[str, str], payload: bytes, *, corrupt_crc: bool = False) -> bytes:
    """One frame: prelude (total length, headers length), prelude CRC32, headers, payload, message CRC32.

    The message CRC covers every byte before it, the prelude and its CRC included.
    """
    encoded_headers = encode_headers(headers)
    prelude = struct.pack("!II", 12 + len(encoded_headers) + len(payload) + 4, len(encoded_headers))
    message = prelude + struct.pack("!I", zlib.crc32(prelude)) + encoded_headers + payload
    crc = zlib.crc32(message) ^ (0xFFFFFFFF if corrupt_crc else 0)
    return message + struct.pack("!I", crc)


def event_message(event_type: str, payload: dict[str, Any], **options: bool) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, json.dumps({**payload, "p": _padding()}).encode(), **options)


def exception_message(exception_type: str, message: str) -> bytes:
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, json.dumps({"message": message}).encode())


def _padding() -> str:
    """Bedrock pads every event payload with a `p` field of random length, so sizes tell nothing."""
    return "".join(random.choices(string.ascii_letters + string.digits, k=random.randint(1, 40)))


# --- payloads ------------------------------------------------------------------------------------


def converse_usage() -> dict[str, int]:
    total = INPUT_TOKENS + CACHE_READ_TOKENS + OUTPUT_TOKENS
    return {
        "inputTokens": INPUT_TOKENS,
        "outputTokens": OUTPUT_TOKENS,
        "totalTokens": total,
        "cacheReadInputTokens": CACHE_READ_TOKENS,
        "cacheWriteInputTokens": 0,
    }


def converse_response() -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": TEXT}]}},
        "stopReason": "end_turn",
        "usage": converse_usage(),
        "metrics": {"latencyMs": LATENCY_MS},
    }


def invocation_metrics(cached: int = 0) -> dict[str, int]:
    """What Bedrock adds to the last chunk of every InvokeModelWithResponseStream, whatever the model."""
    metrics = {
        "inputTokenCount": INPUT_TOKENS,
        "outputTokenCount": OUTPUT_TOKENS,
        "invocationLatency": LATENCY_MS,
        "firstByteLatency": LATENCY_MS // 3,
    }
    return (
        {**metrics, "cacheReadInputTokenCount": cached, "cacheWriteInputTokenCount": 0} if cached else metrics
    )


def family(model: str) -> str:
    for name in ("embed", "anthropic", "titan", "nova"):
        if name in model:
            return name
    return "anthropic"


def anthropic_usage(output_tokens: int = OUTPUT_TOKENS) -> dict[str, int]:
    return {
        "input_tokens": INPUT_TOKENS,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": CACHE_READ_TOKENS,
        "output_tokens": output_tokens,
    }


def anthropic_message(message_id: str, text: str | None, stop_reason: str | None) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": CLAUDE_BODY_MODEL,
        "content": [] if text is None else [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": anthropic_usage(OUTPUT_TOKENS if stop_reason else 1),
    }


def invoke_body(model: str) -> dict[str, Any]:
    """The whole answer of InvokeModel, in the model family's own shape."""
    kind = family(model)
    if kind == "embed":
        return {"embedding": EMBEDDING, "inputTextTokenCount": INPUT_TOKENS}
    if kind == "titan":
        result = {"tokenCount": OUTPUT_TOKENS, "outputText": TEXT, "completionReason": "FINISH"}
        return {"inputTextTokenCount": INPUT_TOKENS, "results": [result]}
    if kind == "nova":
        usage = {
            "inputTokens": INPUT_TOKENS,
            "outputTokens": OUTPUT_TOKENS,
            "totalTokens": INPUT_TOKENS + OUTPUT_TOKENS,
        }
        message = {"role": "assistant", "content": [{"text": TEXT}]}
        return {"output": {"message": message}, "stopReason": "end_turn", "usage": usage}
    return anthropic_message(new_message_id(), TEXT, "end_turn")


def invoke_chunks(model: str, pieces: list[str]) -> Iterator[dict[str, Any]]:
    """The model's own stream events, one per chunk; the last one carries Bedrock's invocation metrics."""
    kind = family(model)
    if kind == "titan":
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            chunk: dict[str, Any] = {
                "outputText": piece,
                "index": 0,
                "totalOutputTextTokenCount": OUTPUT_TOKENS if last else index + 1,
                "completionReason": "FINISH" if last else None,
                "inputTextTokenCount": INPUT_TOKENS if index == 0 else None,
            }
            yield {**chunk, "amazon-bedrock-invocationMetrics": invocation_metrics()} if last else chunk
        return
    if kind == "nova":  # ConverseStream's events, as the chunks' JSON
        events = list(converse_events(pieces))
        for name, payload in events[:-1]:
            yield {name: payload}
        yield {events[-1][0]: events[-1][1], "amazon-bedrock-invocationMetrics": invocation_metrics()}
        return
    message_id = new_message_id()
    yield {"type": "message_start", "message": anthropic_message(message_id, None, None)}
    yield {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    for piece in pieces:
        yield {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
    yield {"type": "content_block_stop", "index": 0}
    delta = {"stop_reason": "end_turn", "stop_sequence": None}
    yield {"type": "message_delta", "delta": delta, "usage": {"output_tokens": OUTPUT_TOKENS}}
    yield {"type": "message_stop", "amazon-bedrock-invocationMetrics": invocation_metrics(CACHE_READ_TOKENS)}


def converse_events(pieces: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "messageStart", {"role": "assistant"}
    for piece in pieces:
        yield "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}
    yield "contentBlockStop", {"contentBlockIndex": 0}
    yield "messageStop", {"stopReason": "end_turn"}
    yield "metadata", {"usage": converse_usage(), "metrics": {"latencyMs": LATENCY_MS}}


def new_message_id() -> str:
    return "msg_bdrk_01" + "".join(random.choices(string.ascii_letters + string.digits, k=22))


def error_body(spec: ErrorSpec, model: str, request: RecordedRequest | None = None) -> dict[str, Any]:
    """Bedrock's error body. Like AWS, some messages echo the request: its Authorization header (the
    access key id in its `Credential=`), its signed headers (the session token among them)."""
    headers = request.headers if request is not None else {}
    authorization = headers.get("authorization", "")
    signed = authorization.partition("SignedHeaders=")[2].partition(",")[0].split(";")
    canonical = "\n".join(f"{name}:{headers.get(name, '')}" for name in signed if name)
    message = spec.message.format(
        model=model,
        authorization=authorization,
        short=authorization.split(" ", 1)[-1].split(",", 1)[0],
        path=request.path if request is not None else "",
        canonical_headers=canonical,
    )
    extra = {key: value.format(model=model) if isinstance(value, str) else value for key, value in spec.extra}
    return {"message": message, **extra}


# --- HTTP ----------------------------------------------------------------------------------------


class Handler(LoopbackHandler):
    """Answers one connection's requests (HTTP/1.1 keep-alive) for the FakeBedrock it serves."""

    def send_response(self, code: int, message: str | None = None) -> None:
        self.send_response_only(code, message)  # a `Date` as AWS sends one, no `Server`
        self.send_header("Date", self.date_time_string())

    def send_bug(self, error: Exception) -> None:
        error_type = {"x-amzn-ErrorType": f"InternalServerException:{_BEDROCK}"}
        self._send_json(500, {"message": f"fake server bug: {error!r}"}, error_type)

    def serve(self) -> None:
        self._request_id = str(uuid.uuid4())
        raw = self.read_raw()
        parts = self.url.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "model" or parts[2] not in OPERATIONS:
            self._answer_other(raw)
            return
        model, operation = unquote(parts[1]), OPERATIONS[parts[2]]
        body = _json(raw)
        scenario = self.server.fake.next_scenario(model)
        request = self.record(body, scenario, operation=operation, model=model)
        if scenario in ERRORS:
            self._send_error(ERRORS[scenario], model, request)
            return
        if not isinstance(body, dict):
            spec = ErrorSpec(
                400, "ValidationException", "Malformed input request, please reformat your input."
            )
            self._send_error(spec, model, request)
            return
        if scenario == "slow":
            self.pause(SLOW_SECONDS)
        if operation.endswith("Stream"):
            self._stream(scenario, operation, model)
        elif operation == "Converse":
            self._send_json(200, converse_response())
        else:
            self._send_invoke(scenario, model)

    def _answer_other(self, raw: bytes) -> None:
        """STS `GetCallerIdentity` (query protocol, XML); anything else: an unknown operation."""
        form = parse_qs(raw.decode("utf-8", "replace"))
        action = (form.get("Action") or [""])[0]
        self.record(form, operation=action)
        if action != "GetCallerIdentity":
            self._send_error(ErrorSpec(404, "UnknownOperationException", "Unknown operation"), "")
            return
        data = (
            '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            f"<GetCallerIdentityResult><Arn>arn:aws:iam::{ACCOUNT}:user/aitrack-test</Arn>"
            f"<UserId>AIDAQEXAMPLEUSERID01</UserId><Account>{ACCOUNT}</Account></GetCallerIdentityResult>"
            f"<ResponseMetadata><RequestId>{self._request_id}</RequestId></ResponseMetadata>"
            "</GetCallerIdentityResponse>"
        ).encode()
        self._send_bytes(200, data, "text/xml", {})

    # responses with a body

    def _send_bytes(self, status: int, data: bytes, content_type: str, extra: dict[str, str]) -> None:
        headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("x-amzn-RequestId", self._request_id),
            *extra.items(),
            ("Connection", "keep-alive"),
        ]
        self.send_body(status, data, headers)

    def _send_json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json", extra or {})

    def _send_invoke(self, scenario: str, model: str) -> None:
        metrics = {
            "X-Amzn-Bedrock-Invocation-Latency": str(LATENCY_MS),
            "X-Amzn-Bedrock-Output-Token-Count": str(OUTPUT_TOKENS),
            "X-Amzn-Bedrock-Input-Token-Count": str(INPUT_TOKENS),
        }
        if family(model) == "embed":  # an embedding generates no tokens
            del metrics["X-Amzn-Bedrock-Output-Token-Count"]
        if family(model) == "anthropic":  # the prompt cache, counted apart (as in the body's usage)
            metrics["X-Amzn-Bedrock-Cache-Read-Input-Token-Count"] = str(CACHE_READ_TOKENS)
            metrics["X-Amzn-Bedrock-Cache-Write-Input-Token-Count"] = "0"
        if scenario != "body_cut":
            self._send_json(200, invoke_body(model), metrics)
            return
        data = json.dumps(invoke_body(model)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", self._request_id)
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.cut()

    def _send_error(self, spec: ErrorSpec, model: str, request: RecordedRequest | None = None) -> None:
        error_type = {"x-amzn-ErrorType": f"{spec.code}:{spec.namespace}"}
        self._send_json(spec.status, error_body(spec, model, request), error_type)

    # event streams, chunked

    def _stream(self, scenario: str, operation: str, model: str) -> None:
        headers = [
            ("Content-Type", "application/vnd.amazon.eventstream"),
            ("Transfer-Encoding", "chunked"),
            ("x-amzn-RequestId", self._request_id),
        ]
        if operation == "InvokeModelWithResponseStream":
            headers.append(("X-Amzn-Bedrock-Content-Type", "application/json"))
        headers.append(("Connection", "keep-alive"))
        frames = self._converse_frames if operation == "ConverseStream" else self._invoke_frames
        self.send_chunked(200, headers, _chunks(frames(scenario, model)))

    def _converse_frames(self, scenario: str, model: str) -> Iterator[bytes]:
        events = list(converse_events(self._pieces(scenario)))
        # The end is messageStop and metadata.
        yield from self._script(scenario, [event_message(name, payload) for name, payload in events], 2)

    def _invoke_frames(self, scenario: str, model: str) -> Iterator[bytes]:
        chunks = list(invoke_chunks(model, self._pieces(scenario)))
        frames = [event_message("chunk", {"bytes": _b64(chunk)}) for chunk in chunks]
        yield from self._script(scenario, frames, 1)  # the end: the chunk with the invocation metrics

    def _script(self, scenario: str, frames: list[bytes], ending: int) -> Iterator[bytes]:
        """The frames as the scenario wants them: whole, cut, broken, or without the last `ending` ones."""
        if scenario == "stream_long":
            for frame in frames:
                yield frame
                self.pause(LONG_STREAM_PAUSE)
            return
        if scenario not in STREAM_SCENARIOS:
            yield from frames
            return
        yield from frames[:2]
        if scenario in STREAM_ERRORS:
            yield exception_message(*STREAM_ERRORS[scenario])
        elif scenario == "stream_cut":
            raise StreamCut(frames[2][: len(frames[2]) // 2])
        elif scenario == "stream_bad_crc":
            yield frames[2][:-4] + struct.pack("!I", struct.unpack("!I", frames[2][-4:])[0] ^ 0xFFFFFFFF)
        elif scenario == "stream_truncated":
            yield from frames[2 : len(frames) - ending]

    def _pieces(self, scenario: str) -> list[str]:
        if scenario == "stream_long":
            return [f"word{index} " for index in range(LONG_STREAM_DELTAS)]
        return pieces(TEXT, 3)


def _chunks(frames: Iterator[bytes]) -> Iterator[bytes]:
    """One frame per chunk; the second frame split over two chunks, which the client's buffer must join."""
    for index, frame in enumerate(frames):
        yield from (frame[:7], frame[7:]) if index == 1 else (frame,)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _b64(chunk: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(chunk).encode()).decode()


# --- the fake ------------------------------------------------------------------------------------


class FakeBedrock(LoopbackFake):
    """A loopback Bedrock Runtime: `boto3.client("bedrock-runtime", endpoint_url=fake.base_url, ...)`."""

    handler = Handler
    scenarios = SCENARIOS
    thread_name = "fake-bedrock"
