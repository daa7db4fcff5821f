"""A fake OpenAI API on 127.0.0.1 that the real `openai` SDK (2.x and 3.x) talks to over real HTTP.

The built-in provider of `otel-aitrack demo`, and the server the test suite drives the SDK against.
Standard library only. Each request gets a *scenario*: the head of the queue set by `plan()`, else the
request's `x-fake-scenario` header when it names one (what concurrent callers use, e.g. through the
SDK's `extra_headers=`), else the request's `model` when it names a scenario (so
`model="server_error"` always fails), else `"ok"`.

Scenarios:
    ok                  a success (a stream when the body has "stream": true)
    slow                waits 2 s, then ok (for client timeouts and cancellation)
    bad_request, content_filter, unauthorized (echoes the caller's full API key), forbidden,
    not_found, conflict, unprocessable, rate_limit, insufficient_quota, server_error,
    overloaded (503 with `retry-after-ms: 5`), key_in_query
                        OpenAI's JSON error answer, also when a stream was asked for
    echo_error          a 400 whose message echoes what the caller sent: the body's `user` field, and
                        each request header named in the `x-fake-echo-headers` header (`name: value`)
    echo_answer         a success whose answer is the text of the request's last message
    stream_error        chat/completions: 2 chunks, then `data: {"error": ...}`;
                        Responses: a few events, then an `error` event
    stream_failed       Responses: a few events, then `response.failed`; chat/completions: as stream_error
    stream_truncated    2 chunks and a clean end without finish_reason (Responses: no response.completed)
    stream_cut          2 chunks, then the connection drops mid chunked body
    stream_long         200 chunks 5 ms apart, then a normal end
Stream scenarios answer a request without "stream": true with ok.

Endpoints (POST): /v1/chat/completions, /v1/responses, /v1/embeddings, /v1/completions. Successes,
errors, headers and server-sent events have the shapes the real API sends.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import secrets
import socket
import string
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import urlsplit

__all__ = [
    "ECHO_HEADERS_HEADER",
    "ERRORS",
    "SCENARIOS",
    "SCENARIO_HEADER",
    "SLOW_SECONDS",
    "STREAM_SCENARIOS",
    "ErrorSpec",
    "FakeOpenAI",
    "LoopbackFake",
    "LoopbackHandler",
    "RecordedRequest",
]

SLOW_SECONDS = 2.0
SCENARIO_HEADER = "x-fake-scenario"
LONG_STREAM_CHUNKS = 200
LONG_STREAM_PAUSE = 0.005
ORGANIZATION = "org-fake"
TEXT = "This is a test response."
USAGE_IN, USAGE_OUT = 11, 7
# Of them: input read from OpenAI's prompt cache, and output spent on reasoning (a reasoning model's).
USAGE_CACHED, USAGE_REASONING = 4, 2
EMBEDDING = [0.0123, -0.0456, 0.0789, -0.0112, 0.0345, -0.0678, 0.0901, -0.0234]
SERVER_ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"

SNAPSHOTS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-3.5-turbo-instruct": "gpt-3.5-turbo-instruct:20230824-v2",
}
ROUTES = {
    "/v1/chat/completions": "chat",
    "/v1/responses": "responses",
    "/v1/embeddings": "embeddings",
    "/v1/completions": "completions",
}
STREAM_SCENARIOS = frozenset(
    {"stream_error", "stream_failed", "stream_truncated", "stream_cut", "stream_long"}
)


@dataclass(frozen=True)
class ErrorSpec:
    """One of OpenAI's error answers; `message` may use {model} and {key}."""

    status: int
    message: str
    type: str
    code: str | None
    param: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


ERRORS: dict[str, ErrorSpec] = {
    "bad_request": ErrorSpec(
        400,
        "Invalid value for 'temperature': expected a number between 0 and 2, but got 3.5 instead.",
        "invalid_request_error",
        "invalid_value",
        "temperature",
    ),
    "content_filter": ErrorSpec(
        400,
        "The response was filtered due to the prompt triggering OpenAI's content management policy. "
        "Please modify your prompt and retry.",
        "invalid_request_error",
        "content_filter",
        "prompt",
    ),
    "unauthorized": ErrorSpec(
        401,
        "Incorrect API key provided: {key}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    "forbidden": ErrorSpec(
        403,
        "Country, region, or territory not supported",
        "request_forbidden",
        "unsupported_country_region_territory",
    ),
    "not_found": ErrorSpec(
        404,
        "The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    "conflict": ErrorSpec(
        409,
        "Another request with the same idempotency key is still being processed. "
        "Please retry once it has finished.",
        "invalid_request_error",
        None,
    ),
    "unprocessable": ErrorSpec(
        422,
        "The request was well-formed but could not be processed: 'messages' must contain at least "
        "one message with role 'user'.",
        "invalid_request_error",
        None,
        "messages",
    ),
    "rate_limit": ErrorSpec(
        429,
        "Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
        "Limit 3, Used 3, Requested 1. Please try again in 20s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
        "requests",
        "rate_limit_exceeded",
        headers=(
            ("retry-after", "20"),
            ("x-ratelimit-limit-requests", "3"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "20s"),
        ),
    ),
    "insufficient_quota": ErrorSpec(
        429,
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota",
        "insufficient_quota",
        headers=(("retry-after", "20"),),
    ),
    "server_error": ErrorSpec(500, SERVER_ERROR_MESSAGE, "server_error", None),
    "overloaded": ErrorSpec(
        503,
        "The engine is currently overloaded, please try again later.",
        "server_error",
        None,
        headers=(("retry-after-ms", "5"),),
    ),
    "key_in_query": ErrorSpec(
        400,
        "Failed to download https://api.example/v1?api_key=sk-abc123def456ghi789 "
        "(sent with Authorization: Bearer abc.def.ghi): 401 Unauthorized.",
        "invalid_request_error",
        "invalid_url",
        "url",
    ),
}
ECHO_HEADERS_HEADER = "x-fake-echo-headers"
ECHO_ERROR = ErrorSpec(400, "Rejected: {echo}", "invalid_request_error", None)
SCENARIOS = frozenset({"ok", "slow", "echo_error", "echo_answer", *ERRORS, *STREAM_SCENARIOS})


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    path: str
    headers: dict[str, str]
    body: Any
    method: str = "POST"
    scenario: str = ""

    @property
    def json(self) -> Any:
        """The parsed JSON body (alias of `body`)."""
        return self.body


# --- payloads ------------------------------------------------------------------------------------


@dataclass
class Call:
    """What every payload of one answer shares."""

    body: dict[str, Any]
    kind: str
    created: int = field(default_factory=lambda: int(time.time()))
    echo: bool = False  # answer with the text of the last message

    @property
    def model(self) -> str:
        model = self.body.get("model")
        return model if isinstance(model, str) and model else "gpt-4o-mini"

    @property
    def resolved_model(self) -> str:
        if self.kind == "embeddings":
            return self.model
        if self.model in SNAPSHOTS:
            return SNAPSHOTS[self.model]
        return self.model if _is_snapshot(self.model) else f"{self.model}-2024-07-18"

    @property
    def wants_usage(self) -> bool:
        options = self.body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True


def _is_snapshot(model: str) -> bool:
    tail = model[-10:]
    return len(tail) == 10 and tail[4] == tail[7] == "-" and tail.replace("-", "").isdigit()


def _alnum(length: int) -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=length))


def _answer_text(call: Call) -> str:
    """Plain text, or JSON matching the requested schema (chat `response_format`, Responses `text`)."""
    if call.echo:
        return _last_message_text(call.body)
    fmt = call.body.get("response_format")
    text = call.body.get("text")
    if call.kind == "responses" and isinstance(text, dict):
        fmt = text.get("format")
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_schema", "json_object"):
        return TEXT
    spec = fmt.get("json_schema", fmt)
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return json.dumps(_sample(schema, schema) if schema else {"answer": "42"})


def _last_message_text(body: dict[str, Any]) -> str:
    """The text of the request's last message (chat `messages`, Responses `input`, legacy `prompt`)."""
    messages = body.get("messages") or body.get("input") or body.get("prompt") or ""
    last = messages[-1] if isinstance(messages, list) and messages else messages
    content = last.get("content", "") if isinstance(last, dict) else last
    if isinstance(content, list):  # content parts
        content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def _sample(schema: Any, root: Any) -> Any:
    """A minimal value that validates against a (strict, pydantic-made) JSON schema."""
    if not isinstance(schema, dict):
        return "42"
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _sample(root.get("$defs", {}).get(name), root)
    if "anyOf" in schema:
        return _sample(schema["anyOf"][0], root)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {key: _sample(sub, root) for key, sub in schema.get("properties", {}).items()}
    samples: dict[Any, Any] = {"array": [], "integer": 42, "number": 42.0, "boolean": True, "null": None}
    return samples.get(kind, "42")


def _usage_chat() -> dict[str, Any]:
    return {
        "prompt_tokens": USAGE_IN,
        "completion_tokens": USAGE_OUT,
        "total_tokens": USAGE_IN + USAGE_OUT,
        "prompt_tokens_details": {"cached_tokens": USAGE_CACHED, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": USAGE_REASONING,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion(call: Call, call_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": _answer_text(call),
        "refusal": None,
        "annotations": [],
    }
    return {
        "id": call_id,
        "object": "chat.completion",
        "created": call.created,
        "model": call.resolved_model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": _usage_chat(),
        "service_tier": "default",
        "system_fingerprint": "fp_560af6e559",
    }


def chat_chunk(call: Call, call_id: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": call_id,
        "object": "chat.completion.chunk",
        "created": call.created,
        "model": call.resolved_model,
        "service_tier": "default",
        "system_fingerprint": "fp_560af6e559",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if call.wants_usage:
        chunk["usage"] = None
    return chunk


def text_completion(call: Call, call_id: str, text: str, finish: str | None) -> dict[str, Any]:
    return {
        "id": call_id,
        "object": "text_completion",
        "created": call.created,
        "model": call.resolved_model,
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
        "system_fingerprint": None,
    }


def usage_of(kind: str) -> dict[str, Any]:
    usage = _usage_chat()
    return usage if kind == "chat" else {key: value for key, value in usage.items() if "details" not in key}


def usage_chunk(call: Call, chunk: dict[str, Any]) -> dict[str, Any]:
    """The extra last chunk of `stream_options.include_usage`: no choices, the usage."""
    return {**chunk, "choices": [], "usage": usage_of(call.kind)}


def embeddings(call: Call) -> dict[str, Any]:
    inputs = call.body.get("input")
    count = len(inputs) if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else 1
    as_base64 = call.body.get("encoding_format") == "base64"
    vector: Any = base64.b64encode(struct.pack("<8f", *EMBEDDING)).decode() if as_base64 else EMBEDDING
    data = [{"object": "embedding", "index": i, "embedding": vector} for i in range(count)]
    usage = {"prompt_tokens": 5, "total_tokens": 5}
    return {"object": "list", "data": data, "model": call.resolved_model, "usage": usage}


def output_message(item_id: str, text: str | None, status: str = "completed") -> dict[str, Any]:
    content = [] if text is None else [output_text(text)]
    return {"id": item_id, "type": "message", "status": status, "content": content, "role": "assistant"}


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def response_object(call: Call, response_id: str, status: str, output: list[Any]) -> dict[str, Any]:
    done = status == "completed"
    text = call.body.get("text")
    text_format: dict[str, Any] = text if isinstance(text, dict) else {}
    usage = {
        "input_tokens": USAGE_IN,
        "input_tokens_details": {"cached_tokens": USAGE_CACHED, "cache_write_tokens": 0},
        "output_tokens": USAGE_OUT,
        "output_tokens_details": {"reasoning_tokens": USAGE_REASONING},
        "total_tokens": USAGE_IN + USAGE_OUT,
    }
    return {
        "id": response_id,
        "object": "response",
        "created_at": call.created,
        "status": status,
        "background": False,
        "completed_at": int(time.time()) if done else None,
        "error": None,
        "incomplete_details": None,
        "instructions": call.body.get("instructions"),
        "max_output_tokens": call.body.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": call.resolved_model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": call.body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium", **text_format},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage if done else None,
        "user": None,
        "metadata": call.body.get("metadata") or {},
    }


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(25)


def _pieces(text: str, count: int) -> list[str]:
    size = -(-len(text) // count)
    return [text[i : i + size] for i in range(0, len(text), size)]


# --- Responses API event streams -----------------------------------------------------------------


class ResponseEvents:
    """Builds one Responses API stream's events, numbering them as the real API does."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.response_id = _new_id("resp_")
        self.item_id = _new_id("msg_")
        self.sequence = 0
        self.text = ""

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return payload

    def response(self, status: str, output: list[Any]) -> dict[str, Any]:
        return response_object(self.call, self.response_id, status, output)

    def opening(self) -> Iterator[dict[str, Any]]:
        yield self.event("response.created", response=self.response("in_progress", []))
        yield self.event("response.in_progress", response=self.response("in_progress", []))
        item = output_message(self.item_id, None, "in_progress")
        yield self.event("response.output_item.added", output_index=0, item=item)
        yield self.event("response.content_part.added", part=output_text(""), **self._where())

    def delta(self, piece: str) -> dict[str, Any]:
        self.text += piece
        return self.event("response.output_text.delta", delta=piece, logprobs=[], **self._where())

    def closing(self) -> Iterator[dict[str, Any]]:
        yield self.event("response.output_text.done", text=self.text, logprobs=[], **self._where())
        yield self.event("response.content_part.done", part=output_text(self.text), **self._where())
        item = output_message(self.item_id, self.text)
        yield self.event("response.output_item.done", output_index=0, item=item)
        yield self.event("response.completed", response=self.response("completed", [item]))

    def error(self) -> dict[str, Any]:
        return self.event("error", code="server_error", message=SERVER_ERROR_MESSAGE, param=None)

    def failed(self) -> dict[str, Any]:
        response = self.response("failed", [])
        response["error"] = {"code": "server_error", "message": SERVER_ERROR_MESSAGE}
        return self.event("response.failed", response=response)

    def _where(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "output_index": 0, "content_index": 0}


# --- HTTP ----------------------------------------------------------------------------------------


class StreamCut(Exception):
    """Raised by a stream script to drop the connection mid-body."""


class LoopbackHandler(BaseHTTPRequestHandler):
    """What every fake provider's handler shares: HTTP/1.1 keep-alive, silence, chunked writes, cuts."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: never write a line per request to stderr."""

    def _write_chunk(self, encoded: bytes) -> None:
        """One chunk of a chunked body (`Transfer-Encoding: chunked`)."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(encoded), encoded))

    def _cut(self) -> None:
        """Drop the connection without the chunked body's terminating chunk."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class Handler(LoopbackHandler):
    """Answers one connection's requests (HTTP/1.1 keep-alive) for the FakeOpenAI it serves."""

    def version_string(self) -> str:
        return "cloudflare"

    def do_POST(self) -> None:
        self._started = time.monotonic()
        self._request_id = "req_" + secrets.token_hex(16)
        try:
            self._serve()
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away (closed stream, timeout): fine
        except Exception as error:  # a bug in this fake: make it visible to the test as a 500
            self.close_connection = True
            self._send_json(500, error_body(f"fake server bug: {error!r}", "server_error"))

    def do_GET(self) -> None:
        self.do_POST()

    def _serve(self) -> None:
        body = self._read_body()
        route = ROUTES.get(urlsplit(self.path).path) if self.command == "POST" else None
        fake = self.server.fake
        headers = {key.lower(): value for key, value in self.headers.items()}
        asked = headers.get(SCENARIO_HEADER)
        scenario = fake.next_scenario(body, asked) if route and isinstance(body, dict) else ""
        fake.record(RecordedRequest(self.path, headers, body, self.command, scenario))
        if route is None:
            self._send_invalid(404, f"Invalid URL ({self.command} {urlsplit(self.path).path})")
        elif not isinstance(body, dict):
            self._send_invalid(400, "We could not parse the JSON body of your request.")
        else:
            self._answer(scenario, Call(body, route))

    def _read_body(self) -> Any:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _answer(self, scenario: str, call: Call) -> None:
        if scenario in ERRORS or scenario == "echo_error":
            self._send_error(ERRORS.get(scenario, ECHO_ERROR), call)
            return
        call.echo = scenario == "echo_answer"
        if scenario == "slow":
            self._pause(SLOW_SECONDS)
        if call.body.get("stream") is True and call.kind != "embeddings":
            self._stream(scenario, call)
        else:
            self._send_json(200, self._success(call))

    def _success(self, call: Call) -> dict[str, Any]:
        if call.kind == "chat":
            return chat_completion(call, "chatcmpl-" + _alnum(29))
        if call.kind == "completions":
            completion = text_completion(call, "cmpl-" + _alnum(29), TEXT, "stop")
            return {**completion, "usage": usage_of(call.kind)}
        if call.kind == "embeddings":
            return embeddings(call)
        item = output_message(_new_id("msg_"), _answer_text(call))
        return response_object(call, _new_id("resp_"), "completed", [item])

    # responses with a body

    def _headers(self, extra: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
        elapsed = max(1, round((time.monotonic() - self._started) * 1000))
        headers = {
            "x-request-id": self._request_id,
            "openai-organization": ORGANIZATION,
            "openai-project": "proj_fake",
            "openai-version": "2020-10-01",
            "openai-processing-ms": str(elapsed),
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-limit-tokens": "200000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-remaining-tokens": "199982",
            "x-ratelimit-reset-requests": "8.64s",
            "x-ratelimit-reset-tokens": "5ms",
        }
        return {**headers, **dict(extra)}

    def _send_json(self, status: int, payload: Any, extra: tuple[tuple[str, str], ...] = ()) -> None:
        data = json.dumps(payload, indent=2).encode()
        self.send_response(status)
        for key, value in self._headers(extra).items():
            self.send_header(key, value)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, spec: ErrorSpec, call: Call) -> None:
        key = (self.headers.get("authorization") or "").removeprefix("Bearer ").strip()
        message = spec.message.format(model=call.model, key=key, echo=self._echo(call))
        self._send_json(spec.status, error_body(message, spec.type, spec.code, spec.param), spec.headers)

    def _echo(self, call: Call) -> str:
        """What `echo_error` repeats: the body's `user`, then the headers the caller named."""
        user = call.body.get("user")
        parts = [user] if isinstance(user, str) else []
        names = (self.headers.get(ECHO_HEADERS_HEADER) or "").split(",")
        parts += [f"{name.strip()}: {self.headers.get(name.strip())}" for name in names if name.strip()]
        return " ".join(parts)

    def _send_invalid(self, status: int, message: str) -> None:
        self._send_json(status, error_body(message, "invalid_request_error"))

    # server-sent events, chunked

    def _stream(self, scenario: str, call: Call) -> None:
        self.send_response(200)
        for key, value in self._headers().items():
            self.send_header(key, value)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        script = self._response_events if call.kind == "responses" else self._data_events
        try:
            for name, payload in script(scenario, call):
                self._send_event(name, payload)
        except StreamCut:
            self._cut()
            return
        self.wfile.write(b"0\r\n\r\n")

    def _send_event(self, name: str | None, payload: Any) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        text = (f"event: {name}\n" if name else "") + f"data: {data}\n\n"
        self._write_chunk(text.encode())

    def _pause(self, seconds: float) -> None:
        """Sleep, but wake up at once when the fake stops."""
        self.server.stopping.wait(seconds)

    def _data_events(self, scenario: str, call: Call) -> Iterator[tuple[str | None, Any]]:
        """Chat and legacy completions: `data: {chunk}` lines, then `data: [DONE]`."""
        chunks = ChunkMaker(call)
        if scenario == "stream_long":
            for index in range(LONG_STREAM_CHUNKS):
                yield None, chunks.content(f"word{index} ")
                self._pause(LONG_STREAM_PAUSE)
        elif scenario in STREAM_SCENARIOS:
            for piece in _pieces(_answer_text(call), 3)[:2]:
                yield None, chunks.content(piece)
        else:
            for piece in _pieces(_answer_text(call), 3):
                yield None, chunks.content(piece)
        yield from self._data_ending(scenario, chunks)

    def _data_ending(self, scenario: str, chunks: ChunkMaker) -> Iterator[tuple[str | None, Any]]:
        if scenario == "stream_cut":
            raise StreamCut
        if scenario in ("stream_error", "stream_failed"):
            error = {"message": SERVER_ERROR_MESSAGE, "type": "server_error", "param": None}
            yield None, {"error": {**error, "code": "server_error"}}
            return
        if scenario != "stream_truncated":
            yield None, chunks.finish()
            if chunks.call.wants_usage:
                yield None, usage_chunk(chunks.call, chunks.finish())
        yield None, "[DONE]"

    def _response_events(self, scenario: str, call: Call) -> Iterator[tuple[str | None, Any]]:
        """Responses API: `event: <type>` + `data: {event}` with sequence numbers, no [DONE]."""
        events = ResponseEvents(call)
        yield from _named(events.opening())
        pieces = _pieces(_answer_text(call), 2)
        if scenario == "stream_long":
            pieces = [f"word{index} " for index in range(LONG_STREAM_CHUNKS)]
        for index, piece in enumerate(pieces):
            yield from _named([events.delta(piece)])
            if scenario == "stream_long":
                self._pause(LONG_STREAM_PAUSE)
            if index == 0 and scenario == "stream_cut":
                raise StreamCut
            if index == 0 and scenario in ("stream_error", "stream_failed"):
                yield from _named([events.error() if scenario == "stream_error" else events.failed()])
                return
        if scenario != "stream_truncated":
            yield from _named(events.closing())


def _named(events: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> Iterator[tuple[str, Any]]:
    for payload in events:
        yield payload["type"], payload


class ChunkMaker:
    """Chunks of one chat or legacy completions stream."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.chat = call.kind == "chat"
        self.id = ("chatcmpl-" if self.chat else "cmpl-") + _alnum(29)
        self.first = True

    def content(self, piece: str) -> dict[str, Any]:
        if not self.chat:
            return text_completion(self.call, self.id, piece, None)
        delta: dict[str, Any] = {"content": piece}
        if self.first:
            delta = {"role": "assistant", "content": piece, "refusal": None}
        self.first = False
        return chat_chunk(self.call, self.id, delta, None)

    def finish(self) -> dict[str, Any]:
        if not self.chat:
            return text_completion(self.call, self.id, "", "stop")
        return chat_chunk(self.call, self.id, {}, "stop")


class Server(ThreadingHTTPServer):
    """Thread per connection; remembers open connections so that `stop()` can close them.

    Shared by the test suite's other fake providers, each with its own handler class.
    """

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, fake: Any, handler: type[BaseHTTPRequestHandler] = Handler) -> None:
        self.fake = fake
        self.stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Silent: a client hanging up mid-answer is normal here."""

    def close_connections(self) -> None:
        """Hang up on every client still connected, then wake the handlers that sleep."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.stopping.set()


# --- the fake ------------------------------------------------------------------------------------


_Fake = TypeVar("_Fake", bound="LoopbackFake")


class LoopbackFake:
    """A fake provider on 127.0.0.1: its server's lifecycle, the scenario plan and the recorded requests.

    A subclass names its handler class, its known scenarios, its thread and the path of its base URL.
    """

    handler: type[BaseHTTPRequestHandler] = Handler
    scenarios: frozenset[str] = frozenset()
    thread_name = "fake-provider"
    base_path = ""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._plan: deque[str] = deque()
        self._lock = threading.Lock()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    def start(self: _Fake) -> _Fake:
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        self._server = Server(self, self.handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=self.thread_name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        thread.join(timeout=5)

    def __enter__(self: _Fake) -> _Fake:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def plan(self, *scenarios: str) -> None:
        """The next requests get these scenarios, in order; then back to the default."""
        unknown = [name for name in scenarios if name not in self.scenarios]
        if unknown:
            raise ValueError(f"unknown scenario(s) {unknown}; known: {sorted(self.scenarios)}")
        with self._lock:
            self._plan.extend(scenarios)

    def reset(self) -> None:
        """Forget the plan and the recorded requests."""
        with self._lock:
            self._plan.clear()
            self.requests.clear()

    def planned(self) -> str | None:
        """The plan's next scenario, taken off the plan; None when nothing is planned."""
        with self._lock:
            return self._plan.popleft() if self._plan else None

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


class FakeOpenAI(LoopbackFake):
    """A loopback OpenAI API: `with FakeOpenAI() as fake: OpenAI(base_url=fake.base_url, ...)`."""

    scenarios = SCENARIOS
    thread_name = "fake-openai"
    base_path = "/v1"

    def next_scenario(self, body: dict[str, Any], asked: str | None = None) -> str:
        """The scenario of one request: the plan's head, else `asked` (the header), else the model."""
        planned = self.planned()
        if planned is not None:
            return planned
        if asked is not None and asked in SCENARIOS:
            return asked
        model = body.get("model")
        return model if isinstance(model, str) and model in SCENARIOS else "ok"
