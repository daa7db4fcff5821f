"""A fake OpenAI API on 127.0.0.1 that the real `openai` SDK (2.x and 3.x) talks to over real HTTP, and the
loopback server core every fake provider of the test suite is built on.

The built-in provider of `otel-aitrack demo`: what the demo's workload asks for, no more (the test suite's
fake, `tests/fakes/openai_server.py`, adds the other scenarios and endpoints). Standard library only.

The core: a threaded HTTP/1.1 server (keep-alive, connections hung up on at `stop()`), a handler base
(bodies read and answered, chunked writes, a connection cut in the middle of a body, a fake's own bug
answered as a 500) and a fake base (start and stop, a plan of scenarios, the requests it received).

Each request gets a *scenario*: the head of the queue set by `plan()`, else the request's
`x-fake-scenario` header when it names one (what concurrent callers use, e.g. through the SDK's
`extra_headers=`), else the request's `model` when it names a scenario (so `model="server_error"`
always fails), else `"ok"`.

Scenarios:
    ok                  a success (a stream when the body has "stream": true); JSON that fits the schema
                        of `response_format` / `text.format` when one is asked
    slow                waits 2 s, then ok (for client timeouts)
    not_found, rate_limit (429 with `retry-after`), server_error
                        OpenAI's JSON error answer, also when a stream was asked for
    stream_truncated    2 chunks and a clean end without finish_reason (Responses: no response.completed)
A stream scenario answers a request without "stream": true with ok.

Endpoints (POST): /v1/chat/completions and /v1/responses. Successes, errors, headers and server-sent
events have the shapes the real API sends.
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import socket
import string
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, TypeVar
from urllib.parse import SplitResult, parse_qs, urlsplit

__all__ = [
    "ERRORS",
    "SCENARIOS",
    "SCENARIO_HEADER",
    "SLOW_SECONDS",
    "STREAM_SCENARIOS",
    "Call",
    "ErrorSpec",
    "FakeOpenAI",
    "LoopbackFake",
    "LoopbackHandler",
    "OpenAIHandler",
    "RecordedRequest",
    "StreamCut",
    "pieces",
    "sample",
]

# --- the loopback core ---------------------------------------------------------------------------


class StreamCut(Exception):
    """Raised by a stream script to drop the connection mid-body; its argument, the bytes sent first."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request as a fake received it."""

    path: str  # without the query
    headers: dict[str, str]  # names in lower case
    body: Any  # parsed JSON, else the text, else None
    method: str = "POST"
    scenario: str = ""
    query: dict[str, list[str]] = field(default_factory=dict)
    operation: str = ""  # what the request asks of the service, where its path does not say it alone
    model: str = ""

    @property
    def json(self) -> Any:
        """The parsed JSON body (alias of `body`)."""
        return self.body


class Server(ThreadingHTTPServer):
    """Thread per connection; remembers open connections so that `stop()` can close them."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, fake: Any, handler: type[BaseHTTPRequestHandler]) -> None:
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


Headers = Iterable[tuple[str, str]]


class LoopbackHandler(BaseHTTPRequestHandler):
    """What every fake provider's handler shares: HTTP/1.1 keep-alive, silence, bodies read and answered,
    chunked writes, cut connections. A provider's handler answers in `serve()` and its own bug in
    `send_bug()`."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: never write a line per request to stderr."""

    def do_POST(self) -> None:
        try:
            self.serve()
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away (closed stream, timeout): fine
        except Exception as error:  # a bug in this fake: make it visible to the test as a 500
            self.close_connection = True
            self.send_bug(error)

    def do_GET(self) -> None:
        self.do_POST()

    def serve(self) -> None:
        raise NotImplementedError

    def send_bug(self, error: Exception) -> None:
        self.send_body(500, f"fake server bug: {error!r}".encode(), [("content-type", "text/plain")])

    # reading

    @property
    def url(self) -> SplitResult:
        return urlsplit(self.path)

    def header_map(self) -> dict[str, str]:
        return {key.lower(): value for key, value in self.headers.items()}

    def read_raw(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def read_json(self) -> Any:
        """The body: parsed JSON, else its text (None when there is none)."""
        raw = self.read_raw()
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode("utf-8", "replace")

    def record(self, body: Any, scenario: str = "", **fields: Any) -> RecordedRequest:
        url = self.url
        request = RecordedRequest(
            url.path, self.header_map(), body, self.command, scenario, parse_qs(url.query), **fields
        )
        self.server.fake.record(request)
        return request

    # answering

    def pause(self, seconds: float) -> None:
        """Sleep, but wake up at once when the fake stops."""
        self.server.stopping.wait(seconds)

    def send_body(self, status: int, data: bytes, headers: Headers) -> None:
        """A whole answer: `headers` in order, then its length unless they give it."""
        self.send_response(status)
        sent = set()
        for name, value in headers:
            self.send_header(name, value)
            sent.add(name.lower())
        if "content-length" not in sent:
            self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_chunked(self, status: int, headers: Headers, chunks: Iterable[bytes]) -> None:
        """A chunked answer (`Transfer-Encoding: chunked`), flushed chunk by chunk; a `StreamCut` raised by
        `chunks` sends what it carries, then drops the connection without the terminating chunk."""
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        try:
            for chunk in chunks:
                self.write_chunk(chunk)
        except StreamCut as cut:
            if cut.args and cut.args[0]:
                self.write_chunk(cut.args[0])
            self.cut()
            return
        self.wfile.write(b"0\r\n\r\n")

    def write_chunk(self, encoded: bytes) -> None:
        """One chunk of a chunked body."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(encoded), encoded))
        self.wfile.flush()

    def cut(self) -> None:
        """Drop the connection, whatever of the body is still to come."""
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


_Fake = TypeVar("_Fake", bound="LoopbackFake")


class LoopbackFake:
    """A fake provider on 127.0.0.1: its server's lifecycle, the scenario plan and the recorded requests.

    A subclass names its handler class, its known scenarios, its thread and the path of its base URL.
    """

    handler: type[LoopbackHandler] = LoopbackHandler
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

    def next_scenario(self, *asked: object) -> str:
        """The scenario of one request: the plan's head, else the first of `asked` (a header, the model)
        that names one, else `ok`."""
        with self._lock:
            if self._plan:
                return self._plan.popleft()
        return next((name for name in asked if isinstance(name, str) and name in self.scenarios), "ok")

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


def pieces(text: str, count: int) -> list[str]:
    """`text` in `count` pieces (the last one shorter), as a stream sends it."""
    size = -(-len(text) // count)
    return [text[i : i + size] for i in range(0, len(text), size)]


def sample(schema: Any, root: Any = None) -> Any:
    """A minimal value that validates against a (strict, pydantic-made) JSON schema."""
    root = schema if root is None else root
    if not isinstance(schema, dict):
        return "42"
    if "$ref" in schema:
        return sample(root.get("$defs", {}).get(schema["$ref"].rsplit("/", 1)[-1]), root)
    if "anyOf" in schema:
        return sample(schema["anyOf"][0], root)
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("type") == "object":
        return {key: sample(sub, root) for key, sub in schema.get("properties", {}).items()}
    samples: dict[Any, Any] = {"array": [], "integer": 42, "number": 42.0, "boolean": True, "null": None}
    return samples.get(schema.get("type"), "42")


# --- OpenAI: scenarios ---------------------------------------------------------------------------

SLOW_SECONDS = 2.0
SCENARIO_HEADER = "x-fake-scenario"
ORGANIZATION = "org-fake"
TEXT = "This is a test response."
USAGE_IN, USAGE_OUT = 11, 7
# Of them: input read from OpenAI's prompt cache, and output spent on reasoning (a reasoning model's).
USAGE_CACHED, USAGE_REASONING = 4, 2
SERVER_ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"

SNAPSHOTS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-3.5-turbo-instruct": "gpt-3.5-turbo-instruct:20230824-v2",
}
ROUTES = {"/v1/chat/completions": "chat", "/v1/responses": "responses"}
STREAM_SCENARIOS = frozenset({"stream_truncated"})


@dataclass(frozen=True)
class ErrorSpec:
    """One of OpenAI's error answers; `message` may use {model}, {key} and {echo}."""

    status: int
    message: str
    type: str
    code: str | None
    param: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


ERRORS: dict[str, ErrorSpec] = {
    "not_found": ErrorSpec(
        404,
        "The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
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
    "server_error": ErrorSpec(500, SERVER_ERROR_MESSAGE, "server_error", None),
}
SCENARIOS = frozenset({"ok", "slow", *ERRORS, *STREAM_SCENARIOS})


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


# --- OpenAI: payloads ----------------------------------------------------------------------------


@dataclass
class Call:
    """What every payload of one answer shares."""

    body: dict[str, Any]
    kind: str  # the route's: chat, responses (the test suite's fake adds others)
    text: str = TEXT  # the answer's text
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def model(self) -> str:
        model = self.body.get("model")
        return model if isinstance(model, str) and model else "gpt-4o-mini"

    @property
    def resolved_model(self) -> str:
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


def alnum(length: int) -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=length))


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(25)


def answer_text(body: dict[str, Any], kind: str) -> str:
    """Plain text, or JSON matching the requested schema (chat `response_format`, Responses `text`)."""
    fmt = body.get("response_format")
    text = body.get("text")
    if kind == "responses" and isinstance(text, dict):
        fmt = text.get("format")
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_schema", "json_object"):
        return TEXT
    spec = fmt.get("json_schema", fmt)
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return json.dumps(sample(schema) if schema else {"answer": "42"})


def usage_chat() -> dict[str, Any]:
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
    message: dict[str, Any] = {"role": "assistant", "content": call.text, "refusal": None, "annotations": []}
    return {
        "id": call_id,
        "object": "chat.completion",
        "created": call.created,
        "model": call.resolved_model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": usage_chat(),
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


class ChunkMaker:
    """Chunks of one chat completions stream."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.id = "chatcmpl-" + alnum(29)
        self.first = True

    def content(self, piece: str) -> dict[str, Any]:
        delta: dict[str, Any] = {"content": piece}
        if self.first:
            delta = {"role": "assistant", "content": piece, "refusal": None}
        self.first = False
        return chat_chunk(self.call, self.id, delta, None)

    def finish(self) -> dict[str, Any]:
        return chat_chunk(self.call, self.id, {}, "stop")

    def usage(self) -> dict[str, Any]:
        """The extra last chunk of `stream_options.include_usage`: no choices, the usage."""
        return {**self.finish(), "choices": [], "usage": usage_chat()}


class ResponseEvents:
    """Builds one Responses API stream's events, numbering them as the real API does."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.response_id = new_id("resp_")
        self.item_id = new_id("msg_")
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

    def _where(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "output_index": 0, "content_index": 0}


# --- OpenAI: HTTP --------------------------------------------------------------------------------

Event = tuple[str | None, Any]  # (the SSE event name, its data: a payload, or text such as [DONE])


class OpenAIHandler(LoopbackHandler):
    """Answers one connection's requests (HTTP/1.1 keep-alive) for the FakeOpenAI it serves.

    The test suite's fake extends its tables (`routes`, `errors`) and its stream scripts' hooks.
    """

    routes: ClassVar[dict[str, str]] = ROUTES
    errors: ClassVar[dict[str, ErrorSpec]] = ERRORS
    stream_scenarios: ClassVar[frozenset[str]] = STREAM_SCENARIOS

    def version_string(self) -> str:
        return "cloudflare"

    def serve(self) -> None:
        self._started = time.monotonic()
        self._request_id = "req_" + secrets.token_hex(16)
        body = self.read_json()
        route = self.routes.get(self.url.path) if self.command == "POST" else None
        headers = self.header_map()
        scenario = ""
        if route is not None and isinstance(body, dict):
            scenario = self.server.fake.next_scenario(headers.get(SCENARIO_HEADER), body.get("model"))
        self.record(body, scenario)
        if route is None:
            self._send_invalid(404, f"Invalid URL ({self.command} {self.url.path})")
        elif not isinstance(body, dict):
            self._send_invalid(400, "We could not parse the JSON body of your request.")
        else:
            self.answer(scenario, Call(body, route, answer_text(body, route)))

    def send_bug(self, error: Exception) -> None:
        self.send_json(500, error_body(f"fake server bug: {error!r}", "server_error"))

    def answer(self, scenario: str, call: Call) -> None:
        if scenario in self.errors:
            self.send_error_spec(self.errors[scenario], call)
            return
        if scenario == "slow":
            self.pause(SLOW_SECONDS)
        if self.streams(call):
            script = self.response_events if call.kind == "responses" else self.data_events
            self.stream(script(scenario, call))
        else:
            self.send_json(200, self.success(call))

    def streams(self, call: Call) -> bool:
        return call.body.get("stream") is True

    def success(self, call: Call) -> dict[str, Any]:
        if call.kind == "chat":
            return chat_completion(call, "chatcmpl-" + alnum(29))
        item = output_message(new_id("msg_"), call.text)
        return response_object(call, new_id("resp_"), "completed", [item])

    # responses with a body

    def provider_headers(self, extra: tuple[tuple[str, str], ...] = ()) -> list[tuple[str, str]]:
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
        return list({**headers, **dict(extra)}.items())

    def send_json(self, status: int, payload: Any, extra: tuple[tuple[str, str], ...] = ()) -> None:
        headers = [*self.provider_headers(extra), ("content-type", "application/json")]
        self.send_body(status, json.dumps(payload, indent=2).encode(), headers)

    def send_error_spec(self, spec: ErrorSpec, call: Call) -> None:
        key = (self.headers.get("authorization") or "").removeprefix("Bearer ").strip()
        message = spec.message.format(model=call.model, key=key, echo=self.echo(call))
        self.send_json(spec.status, error_body(message, spec.type, spec.code, spec.param), spec.headers)

    def echo(self, call: Call) -> str:
        """What an error message repeats of the request (none of the demo's)."""
        return ""

    def _send_invalid(self, status: int, message: str) -> None:
        self.send_json(status, error_body(message, "invalid_request_error"))

    # server-sent events, chunked

    def stream(self, events: Iterator[Event]) -> None:
        headers = [
            *self.provider_headers(),
            ("content-type", "text/event-stream; charset=utf-8"),
            ("transfer-encoding", "chunked"),
        ]
        self.send_chunked(200, headers, (self._encode(name, payload) for name, payload in events))

    def _encode(self, name: str | None, payload: Any) -> bytes:
        data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        return ((f"event: {name}\n" if name else "") + f"data: {data}\n\n").encode()

    def stream_pieces(self, scenario: str, call: Call) -> list[str]:
        """A chat stream's text deltas: all three, or two of them for a stream that goes wrong."""
        every = pieces(call.text, 3)
        return every[:2] if scenario in self.stream_scenarios else every

    def response_pieces(self, scenario: str, call: Call) -> list[str]:
        """A Responses stream's text deltas."""
        return pieces(call.text, 2)

    def after_piece(self, scenario: str) -> None:
        """Called after each delta is sent (the test suite's fake sleeps in a long stream)."""

    def chunk_maker(self, call: Call) -> ChunkMaker:
        return ChunkMaker(call)

    def data_events(self, scenario: str, call: Call) -> Iterator[Event]:
        """Chat completions: `data: {chunk}` lines, then `data: [DONE]`."""
        chunks = self.chunk_maker(call)
        for piece in self.stream_pieces(scenario, call):
            yield None, chunks.content(piece)
            self.after_piece(scenario)
        yield from self.data_ending(scenario, chunks)

    def data_ending(self, scenario: str, chunks: ChunkMaker) -> Iterator[Event]:
        if scenario != "stream_truncated":
            yield None, chunks.finish()
            if chunks.call.wants_usage:
                yield None, chunks.usage()
        yield None, "[DONE]"

    def response_events(self, scenario: str, call: Call) -> Iterator[Event]:
        """Responses API: `event: <type>` + `data: {event}` with sequence numbers, no [DONE]."""
        events = ResponseEvents(call)
        yield from _named(events.opening())
        for index, piece in enumerate(self.response_pieces(scenario, call)):
            yield from _named([events.delta(piece)])
            self.after_piece(scenario)
            if index == 0 and self.response_interrupted(scenario, events):
                yield from _named(self.response_failure(scenario, events))
                return
        if scenario != "stream_truncated":
            yield from _named(events.closing())

    def response_interrupted(self, scenario: str, events: ResponseEvents) -> bool:
        """Whether a Responses stream goes wrong after its first delta (raise StreamCut to drop it)."""
        return False

    def response_failure(self, scenario: str, events: ResponseEvents) -> list[dict[str, Any]]:
        """The events of a Responses stream that went wrong."""
        return []


def _named(events: Iterable[dict[str, Any]]) -> Iterator[Event]:
    for payload in events:
        yield payload["type"], payload


# --- the fake ------------------------------------------------------------------------------------


class FakeOpenAI(LoopbackFake):
    """A loopback OpenAI API: `with FakeOpenAI() as fake: OpenAI(base_url=fake.base_url, ...)`."""

    handler = OpenAIHandler
    scenarios = SCENARIOS
    thread_name = "fake-openai"
    base_path = "/v1"
