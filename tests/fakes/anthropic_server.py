"""A fake Anthropic API on 127.0.0.1 that the real `anthropic` SDK (1.x and 2.x) talks to over real HTTP.

Standard library only; the same `plan()` / scenario API as `tests/fakes/openai_server.py`. Each request
gets a *scenario*: the head of the queue set by `plan()`, else the request's `model` when it names a
scenario (so `model="overloaded"` always fails), else `"ok"`.

Scenarios:
    ok                  a success (a stream when the body has "stream": true); JSON that fits the schema
                        of `output_config.format` when one is asked (`messages.parse`)
    slow                waits 2 s, then ok (for client timeouts and cancellation)
    bad_request (400 invalid_request_error), unauthorized (401 authentication_error),
    billing (402 billing_error), forbidden (403 permission_error), not_found (404 not_found_error),
    request_too_large (413), rate_limit (429 rate_limit_error, `retry-after` and the
    `anthropic-ratelimit-*` headers), api_error (500), timeout_error (504),
    overloaded (529 overloaded_error, `x-should-retry: true`; `retry-after-ms: 5` so that SDK retries
    take milliseconds here, where the real API leaves the delay to the client's backoff)
                        Anthropic's JSON error answer, also when a stream was asked for
    stream_error        message_start … one text delta, then `event: error` (overloaded_error)
    stream_truncated    every event up to message_delta, then a clean end without message_stop
    stream_cut          message_start … one text delta, then the connection drops mid chunked body
    stream_long         200 text deltas 5 ms apart, then a normal end
Stream scenarios answer a request without "stream": true with ok.

Endpoints: POST /v1/messages and /v1/messages/count_tokens, with or without `?beta=true`, and GET
/v1/models (an endpoint otel-aitrack does not instrument, where the SDK's own span shows). Successes,
errors (`{"type": "error", "error": {...}, "request_id": ...}`), headers (`request-id`,
`anthropic-ratelimit-*`, `x-should-retry`) and server-sent events (message_start, content_block_start,
ping, content_block_delta, content_block_stop, message_delta, message_stop) have the shapes the real
API sends.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from otel_aitrack.cli.fake_provider import LoopbackFake, LoopbackHandler, StreamCut, pieces, sample

SLOW_SECONDS = 2.0
LONG_STREAM_DELTAS = 200
LONG_STREAM_PAUSE = 0.005
ORGANIZATION_ID = "6f1c8b7e-4a52-4c39-9d0e-0d9c1b2a3f4e"
TEXT = "This is a test response."
USAGE_IN, USAGE_CACHE_READ, USAGE_OUT = 12, 3, 7
TOKENS_COUNTED = 14
DEFAULT_MODEL = "claude-haiku-4-5"
SNAPSHOTS = {
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-opus-4-5": "claude-opus-4-5-20251101",
}
ROUTES = {"/v1/messages": "messages", "/v1/messages/count_tokens": "count_tokens"}
MODELS = [
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5"),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5"),
]
STREAM_SCENARIOS = frozenset({"stream_error", "stream_truncated", "stream_cut", "stream_long"})
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@dataclass(frozen=True)
class ErrorSpec:
    """One of Anthropic's error answers; `message` may use {model}."""

    status: int
    type: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()


_NO_RETRY = (("x-should-retry", "false"),)
ERRORS: dict[str, ErrorSpec] = {
    "bad_request": ErrorSpec(
        400,
        "invalid_request_error",
        "max_tokens: 200000 > 64000, which is the maximum allowed number of output tokens for {model}",
        _NO_RETRY,
    ),
    "unauthorized": ErrorSpec(401, "authentication_error", "invalid x-api-key", _NO_RETRY),
    "billing": ErrorSpec(
        402,
        "billing_error",
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to "
        "upgrade or purchase credits.",
        _NO_RETRY,
    ),
    "forbidden": ErrorSpec(
        403,
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
        _NO_RETRY,
    ),
    "not_found": ErrorSpec(404, "not_found_error", "model: {model}", _NO_RETRY),
    "request_too_large": ErrorSpec(
        413,
        "request_too_large",
        "Request exceeds the maximum allowed number of bytes. The maximum request size is 32 MB for "
        "standard API requests.",
        _NO_RETRY,
    ),
    "rate_limit": ErrorSpec(
        429,
        "rate_limit_error",
        f"This request would exceed the rate limit for your organization ({ORGANIZATION_ID}) of 50 "
        "input tokens per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You "
        "can see the response headers for current usage. Please reduce the prompt length or the maximum "
        "tokens requested, or try again later.",
        (
            ("retry-after", "20"),
            ("x-should-retry", "true"),
            ("anthropic-ratelimit-input-tokens-limit", "50"),
            ("anthropic-ratelimit-input-tokens-remaining", "0"),
        ),
    ),
    "api_error": ErrorSpec(500, "api_error", "Internal server error", (("x-should-retry", "true"),)),
    "timeout_error": ErrorSpec(504, "timeout_error", "Request timeout", (("x-should-retry", "true"),)),
    "overloaded": ErrorSpec(
        529, "overloaded_error", "Overloaded", (("x-should-retry", "true"), ("retry-after-ms", "5"))
    ),
}
SCENARIOS = frozenset({"ok", "slow", *ERRORS, *STREAM_SCENARIOS})


# --- payloads ------------------------------------------------------------------------------------


def _base58(length: int) -> str:
    return "".join(random.choices(_BASE58, k=length))


def new_request_id() -> str:
    return "req_011C" + _base58(20)


def resolved_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    model = model if isinstance(model, str) and model else DEFAULT_MODEL
    return SNAPSHOTS.get(model, model)


def usage(output_tokens: int = USAGE_OUT) -> dict[str, Any]:
    return {
        "input_tokens": USAGE_IN,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": USAGE_CACHE_READ,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message(
    body: dict[str, Any], message_id: str, text: str | None, stop_reason: str | None
) -> dict[str, Any]:
    """A Message: complete (non-stream answer) or as `message_start` announces it (no content yet)."""
    return {
        "model": resolved_model(body),
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "content": [] if text is None else [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage(USAGE_OUT if stop_reason else 1),
    }


def answer_text(body: dict[str, Any]) -> str:
    """Plain text, or JSON matching the schema of `output_config.format` (what `messages.parse` asks)."""
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else body.get("output_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return TEXT
    return json.dumps(sample(fmt.get("schema")))


def error_body(spec: ErrorSpec, model: str, request_id: str) -> dict[str, Any]:
    error = {"type": spec.type, "message": spec.message.format(model=model)}
    return {"type": "error", "error": error, "request_id": request_id}


class MessageEvents:
    """The events of one streamed Message, as the API sends them."""

    def __init__(self, body: dict[str, Any], request_id: str) -> None:
        self.body = body
        self.request_id = request_id
        self.message_id = "msg_01" + _base58(22)

    def opening(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield (
            "message_start",
            {"type": "message_start", "message": message(self.body, self.message_id, None, None)},
        )
        block = {"type": "text", "text": ""}
        yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
        yield "ping", {"type": "ping"}

    def delta(self, text: str) -> tuple[str, dict[str, Any]]:
        delta = {"type": "text_delta", "text": text}
        return "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}

    def closing(self, with_stop: bool = True) -> Iterator[tuple[str, dict[str, Any]]]:
        yield "content_block_stop", {"type": "content_block_stop", "index": 0}
        final = {
            key: value for key, value in usage().items() if key not in ("cache_creation", "service_tier")
        }
        delta = {"stop_reason": "end_turn", "stop_sequence": None}
        yield "message_delta", {"type": "message_delta", "delta": delta, "usage": final}
        if with_stop:
            yield "message_stop", {"type": "message_stop"}

    def error(self, spec: ErrorSpec) -> tuple[str, dict[str, Any]]:
        return "error", error_body(spec, resolved_model(self.body), self.request_id)


# --- HTTP ----------------------------------------------------------------------------------------


class Handler(LoopbackHandler):
    """Answers one connection's requests (HTTP/1.1 keep-alive) for the FakeAnthropic it serves."""

    def version_string(self) -> str:
        return "cloudflare"

    def serve(self) -> None:
        self._request_id = new_request_id()
        if self.command == "GET":
            self._list_models()
            return
        body = self.read_json()
        route = ROUTES.get(self.url.path)
        scenario = (
            self.server.fake.next_scenario(body.get("model")) if route and isinstance(body, dict) else ""
        )
        self.record(body, scenario)
        if route is None:
            self._send_error(ErrorSpec(404, "not_found_error", f"Not Found: {self.url.path}"), {})
        elif not isinstance(body, dict):
            self._send_error(ErrorSpec(400, "invalid_request_error", "Request body is not valid JSON"), {})
        elif "anthropic-version" not in self.header_map():
            self._send_error(
                ErrorSpec(400, "invalid_request_error", "anthropic-version: header is required"), {}
            )
        else:
            self._answer(scenario, route, body)

    def send_bug(self, error: Exception) -> None:
        bug = ErrorSpec(500, "api_error", f"fake server bug: {error!r}")
        self._send_json(500, error_body(bug, "", self._request_id))

    def _list_models(self) -> None:
        self.record(None)
        if self.url.path != "/v1/models":
            self._send_error(ErrorSpec(404, "not_found_error", f"Not Found: {self.url.path}"), {})
            return
        data = [
            {"type": "model", "id": model, "display_name": name, "created_at": "2025-10-01T00:00:00Z"}
            for model, name in MODELS
        ]
        self._send_json(
            200, {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
        )

    def _answer(self, scenario: str, route: str, body: dict[str, Any]) -> None:
        if scenario in ERRORS:
            self._send_error(ERRORS[scenario], body)
            return
        if scenario == "slow":
            self.pause(SLOW_SECONDS)
        if route == "count_tokens":
            self._send_json(200, {"input_tokens": TOKENS_COUNTED})
        elif body.get("stream") is True:
            self._stream(scenario, body)
        else:
            self._send_json(200, message(body, "msg_01" + _base58(22), answer_text(body), "end_turn"))

    # responses with a body

    def _headers(self, extra: tuple[tuple[str, str], ...] = ()) -> list[tuple[str, str]]:
        reset = (datetime.now(timezone.utc) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            "request-id": self._request_id,
            "anthropic-organization-id": ORGANIZATION_ID,
            "anthropic-ratelimit-requests-limit": "4000",
            "anthropic-ratelimit-requests-remaining": "3999",
            "anthropic-ratelimit-requests-reset": reset,
            "anthropic-ratelimit-input-tokens-limit": "2000000",
            "anthropic-ratelimit-input-tokens-remaining": "2000000",
            "anthropic-ratelimit-input-tokens-reset": reset,
            "anthropic-ratelimit-output-tokens-limit": "400000",
            "anthropic-ratelimit-output-tokens-remaining": "400000",
            "anthropic-ratelimit-output-tokens-reset": reset,
            "anthropic-ratelimit-tokens-limit": "2400000",
            "anthropic-ratelimit-tokens-remaining": "2400000",
            "anthropic-ratelimit-tokens-reset": reset,
            "strict-transport-security": "max-age=31536000; includeSubDomains; preload",
            "via": "1.1 google",
            "cf-cache-status": "DYNAMIC",
            "x-robots-tag": "none",
        }
        return list({**headers, **dict(extra)}.items())

    def _send_json(self, status: int, payload: Any, extra: tuple[tuple[str, str], ...] = ()) -> None:
        headers = [*self._headers(extra), ("content-type", "application/json")]
        self.send_body(status, json.dumps(payload).encode(), headers)

    def _send_error(self, spec: ErrorSpec, body: dict[str, Any]) -> None:
        self._send_json(spec.status, error_body(spec, resolved_model(body), self._request_id), spec.headers)

    # server-sent events, chunked

    def _stream(self, scenario: str, body: dict[str, Any]) -> None:
        headers = [
            *self._headers(),
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("transfer-encoding", "chunked"),
        ]
        events = self._events(scenario, MessageEvents(body, self._request_id))
        self.send_chunked(200, headers, (_event(name, payload) for name, payload in events))

    def _events(self, scenario: str, events: MessageEvents) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from events.opening()
        deltas = pieces(TEXT, 3)
        if scenario == "stream_long":
            deltas = [f"word{index} " for index in range(LONG_STREAM_DELTAS)]
        for index, piece in enumerate(deltas):
            yield events.delta(piece)
            if scenario == "stream_long":
                self.pause(LONG_STREAM_PAUSE)
            if index == 0 and scenario == "stream_cut":
                raise StreamCut
            if index == 0 and scenario == "stream_error":
                yield events.error(ERRORS["overloaded"])
                return
        yield from events.closing(with_stop=scenario != "stream_truncated")


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


# --- the fake ------------------------------------------------------------------------------------


class FakeAnthropic(LoopbackFake):
    """A loopback Anthropic API: `with FakeAnthropic() as fake: Anthropic(base_url=fake.base_url, ...)`."""

    handler = Handler
    scenarios = SCENARIOS
    thread_name = "fake-anthropic"
