"""The test suite's fake OpenAI API: the demo's built-in one (`otel_aitrack.cli.fake_provider`, its core and
its chat and Responses answers) with every other scenario and endpoint the tests drive.

Scenarios, besides the demo's (ok, slow, not_found, rate_limit, server_error, stream_truncated):
    bad_request, content_filter, unauthorized (echoes the caller's full API key), forbidden, conflict,
    unprocessable, insufficient_quota, overloaded (503 with `retry-after-ms: 5`), key_in_query
                        OpenAI's JSON error answer, also when a stream was asked for
    echo_error          a 400 whose message echoes what the caller sent: the body's `user` field, and
                        each request header named in the `x-fake-echo-headers` header (`name: value`)
    echo_answer         a success whose answer is the text of the request's last message
    garbled_200         a 200 whose JSON body is an HTML page (a gateway in front of the API)
    stream_error        chat/completions: 2 chunks, then `data: {"error": ...}`;
                        Responses: a few events, then an `error` event
    stream_failed       Responses: a few events, then `response.failed`; chat/completions: as stream_error
    stream_cut          2 chunks, then the connection drops mid chunked body
    stream_long         200 chunks 5 ms apart, then a normal end

Endpoints (POST), besides /v1/chat/completions and /v1/responses: /v1/embeddings, /v1/completions.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from typing import Any

from otel_aitrack.cli import fake_provider
from otel_aitrack.cli.fake_provider import (
    SCENARIO_HEADER,
    SERVER_ERROR_MESSAGE,
    Call,
    ChunkMaker,
    ErrorSpec,
    Event,
    OpenAIHandler,
    ResponseEvents,
    StreamCut,
    alnum,
    usage_chat,
)

__all__ = ["ECHO_HEADERS_HEADER", "ERRORS", "SCENARIOS", "SCENARIO_HEADER", "FakeOpenAI"]

LONG_STREAM_CHUNKS = 200
LONG_STREAM_PAUSE = 0.005
EMBEDDING = [0.0123, -0.0456, 0.0789, -0.0112, 0.0345, -0.0678, 0.0901, -0.0234]
ECHO_HEADERS_HEADER = "x-fake-echo-headers"
ROUTES = {**fake_provider.ROUTES, "/v1/embeddings": "embeddings", "/v1/completions": "completions"}

ERRORS: dict[str, ErrorSpec] = {
    **fake_provider.ERRORS,
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
    "insufficient_quota": ErrorSpec(
        429,
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota",
        "insufficient_quota",
        headers=(("retry-after", "20"),),
    ),
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
    "echo_error": ErrorSpec(400, "Rejected: {echo}", "invalid_request_error", None),
}
STREAM_SCENARIOS = frozenset(
    {*fake_provider.STREAM_SCENARIOS, "stream_error", "stream_failed", "stream_cut", "stream_long"}
)
SCENARIOS = frozenset(
    {*fake_provider.SCENARIOS, "echo_answer", "garbled_200", *ERRORS, *STREAM_SCENARIOS}
)


def last_message_text(body: dict[str, Any]) -> str:
    """The text of the request's last message (chat `messages`, Responses `input`, legacy `prompt`)."""
    messages = body.get("messages") or body.get("input") or body.get("prompt") or ""
    last = messages[-1] if isinstance(messages, list) and messages else messages
    content = last.get("content", "") if isinstance(last, dict) else last
    if isinstance(content, list):  # content parts
        content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def usage_of(kind: str) -> dict[str, Any]:
    """Legacy completions' usage has no token details."""
    usage = usage_chat()
    return usage if kind == "chat" else {key: value for key, value in usage.items() if "details" not in key}


def text_completion(call: Call, call_id: str, text: str, finish: str | None) -> dict[str, Any]:
    return {
        "id": call_id,
        "object": "text_completion",
        "created": call.created,
        "model": call.resolved_model,
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
        "system_fingerprint": None,
    }


def embeddings(call: Call) -> dict[str, Any]:
    inputs = call.body.get("input")
    count = len(inputs) if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else 1
    as_base64 = call.body.get("encoding_format") == "base64"
    vector: Any = base64.b64encode(struct.pack("<8f", *EMBEDDING)).decode() if as_base64 else EMBEDDING
    data = [{"object": "embedding", "index": i, "embedding": vector} for i in range(count)]
    usage = {"prompt_tokens": 5, "total_tokens": 5}
    return {"object": "list", "data": data, "model": call.model, "usage": usage}


class CompletionChunks(ChunkMaker):
    """Chunks of one legacy completions stream."""

    def __init__(self, call: Call) -> None:
        super().__init__(call)
        self.id = "cmpl-" + alnum(29)

    def content(self, piece: str) -> dict[str, Any]:
        return text_completion(self.call, self.id, piece, None)

    def finish(self) -> dict[str, Any]:
        return text_completion(self.call, self.id, "", "stop")

    def usage(self) -> dict[str, Any]:
        return {**self.finish(), "choices": [], "usage": usage_of("completions")}


class Handler(OpenAIHandler):
    """The demo's handler, with the test suite's scenarios and endpoints."""

    routes = ROUTES
    errors = ERRORS
    stream_scenarios = STREAM_SCENARIOS

    def answer(self, scenario: str, call: Call) -> None:
        if scenario == "echo_answer":
            call.text = last_message_text(call.body)
        if scenario == "garbled_200":
            page = b"<html><body>502 upstream unavailable</body></html>"
            self.send_body(200, page, [*self.provider_headers(), ("content-type", "application/json")])
            return
        super().answer(scenario, call)

    def streams(self, call: Call) -> bool:
        return call.kind != "embeddings" and super().streams(call)

    def success(self, call: Call) -> dict[str, Any]:
        if call.kind == "embeddings":
            return embeddings(call)
        if call.kind == "completions":
            return {
                **text_completion(call, "cmpl-" + alnum(29), call.text, "stop"),
                "usage": usage_of(call.kind),
            }
        return super().success(call)

    def echo(self, call: Call) -> str:
        """What `echo_error` repeats: the body's `user`, then the headers the caller named."""
        user = call.body.get("user")
        parts = [user] if isinstance(user, str) else []
        names = (self.headers.get(ECHO_HEADERS_HEADER) or "").split(",")
        parts += [f"{name.strip()}: {self.headers.get(name.strip())}" for name in names if name.strip()]
        return " ".join(parts)

    # streams

    def chunk_maker(self, call: Call) -> ChunkMaker:
        return CompletionChunks(call) if call.kind == "completions" else ChunkMaker(call)

    def stream_pieces(self, scenario: str, call: Call) -> list[str]:
        if scenario == "stream_long":
            return [f"word{index} " for index in range(LONG_STREAM_CHUNKS)]
        return super().stream_pieces(scenario, call)

    def response_pieces(self, scenario: str, call: Call) -> list[str]:
        if scenario == "stream_long":
            return [f"word{index} " for index in range(LONG_STREAM_CHUNKS)]
        return super().response_pieces(scenario, call)

    def after_piece(self, scenario: str) -> None:
        if scenario == "stream_long":
            self.pause(LONG_STREAM_PAUSE)

    def data_ending(self, scenario: str, chunks: ChunkMaker) -> Iterator[Event]:
        if scenario == "stream_cut":
            raise StreamCut
        if scenario in ("stream_error", "stream_failed"):
            error = {"message": SERVER_ERROR_MESSAGE, "type": "server_error", "param": None}
            yield None, {"error": {**error, "code": "server_error"}}
            return
        yield from super().data_ending(scenario, chunks)

    def response_interrupted(self, scenario: str, events: ResponseEvents) -> bool:
        if scenario == "stream_cut":
            raise StreamCut
        return scenario in ("stream_error", "stream_failed")

    def response_failure(self, scenario: str, events: ResponseEvents) -> list[dict[str, Any]]:
        if scenario == "stream_error":
            return [events.event("error", code="server_error", message=SERVER_ERROR_MESSAGE, param=None)]
        response = events.response("failed", [])
        response["error"] = {"code": "server_error", "message": SERVER_ERROR_MESSAGE}
        return [events.event("response.failed", response=response)]


class FakeOpenAI(fake_provider.FakeOpenAI):
    """A loopback OpenAI API: `with FakeOpenAI() as fake: OpenAI(base_url=fake.base_url, ...)`."""

    handler = Handler
    scenarios = SCENARIOS
