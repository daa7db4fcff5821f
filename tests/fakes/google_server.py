"""A fake Google GenAI API (Gemini Developer API and Vertex AI) on 127.0.0.1, for the real `google-genai` SDK.

Standard library only; the same `plan()` / scenario API as `tests/fakes/anthropic_server.py`. Each
request gets a *scenario*: the head of the queue set by `plan()`, else the request's model when it names
a scenario (so `model="unavailable"` always fails), else `"ok"`.

Scenarios:
    ok                  a success (a server-sent event stream on `:streamGenerateContent?alt=sse`)
    slow                waits 2 s, then ok (for client timeouts and cancellation)
    invalid_argument (400 INVALID_ARGUMENT, a `BadRequest` field violation), api_key_invalid (400
    INVALID_ARGUMENT, `ErrorInfo` reason API_KEY_INVALID: what the Gemini API answers a wrong key),
    unauthenticated (401 UNAUTHENTICATED, Vertex AI's answer to a bad OAuth token), permission_denied
    (403 PERMISSION_DENIED, "Consumer 'api_key:<the caller's key>' has been suspended."), not_found
    (404 NOT_FOUND model), rate_limit (429 RESOURCE_EXHAUSTED, a per-minute `QuotaFailure` and a
    `RetryInfo`), quota_exhausted (429 RESOURCE_EXHAUSTED, a per-day quota), internal (500 INTERNAL),
    unavailable (503 UNAVAILABLE, "The model is overloaded."), deadline_exceeded (504 DEADLINE_EXCEEDED)
                        Google's JSON error answer (`{"error": {"code", "message", "status", "details"}}`),
                        also when a stream was asked for
    prompt_blocked      200 without candidates: `promptFeedback.blockReason` SAFETY (a stream: one chunk)
    function_call       the model calls the request's first declared function (`functionCall` part): the
                        SDK's automatic function calling then runs it and sends a second request
    stream_error        two chunks, then an error object (503 UNAVAILABLE) as pretty-printed JSON lines
                        inside the 200 stream, the way the API reports a failure after the stream opened
    stream_error_first  the same error object as the 200 stream's first payload (before any chunk)
    stream_truncated    every chunk but none with a `finishReason`, then a clean end
    stream_cut          one chunk, then the connection drops mid chunked body
    stream_long         200 chunks 5 ms apart, then a normal end
Stream scenarios answer `:generateContent` with ok.

Endpoints (POST): `/{version}/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`
(Gemini Developer API, key in `x-goog-api-key`), and the Vertex AI forms
`/{version}/[projects/{p}/locations/{l}/]publishers/google/models/{model}:…`. Successes (`candidates`,
`usageMetadata`, `modelVersion`, `responseId`), errors, headers (Google's front end sends no request id)
and events (`data: {...}` lines separated by CRLF) have the shapes the real API sends.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from otel_aitrack.cli.fake_provider import LoopbackFake, LoopbackHandler, StreamCut, pieces

# A key of the real format (`AIza` and 35 characters) for the tests' clients; the fake echoes it back in
# `permission_denied`, as the API does.
API_KEY = "AIzaSyTESTKEY1234567890abcdefSECRET1234"
SLOW_SECONDS = 2.0
LONG_STREAM_CHUNKS = 200
LONG_STREAM_PAUSE = 0.005
PROJECT_NUMBER = "123456789012"
TEXT = "This is a test response."
PROMPT_TOKENS, CANDIDATES_TOKENS, THOUGHTS_TOKENS = 9, 7, 20
CACHED_TOKENS = 6  # of the prompt tokens, read from a context cache
DEFAULT_MODEL = "gemini-2.5-flash"
# Aliases answer with the version they point at, as `modelVersion`.
MODEL_VERSIONS = {"gemini-flash-latest": "gemini-2.5-flash-preview-09-2025"}
STREAM_SCENARIOS = frozenset(
    {"stream_error", "stream_error_first", "stream_truncated", "stream_cut", "stream_long"}
)
_PATH = re.compile(
    r"^/(?P<version>v1\w*)/(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/google/)?"
    r"models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$"
)
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TYPE = "type.googleapis.com/google.rpc."


@dataclass(frozen=True)
class ErrorSpec:
    """One of Google's error answers; `message` may use {model} and {key} (the caller's API key)."""

    code: int
    status: str
    message: str
    details: tuple[dict[str, Any], ...] = ()


def _error_info(reason: str, **metadata: str) -> dict[str, Any]:
    metadata = {"service": "generativelanguage.googleapis.com", **metadata}
    return {"@type": _TYPE + "ErrorInfo", "reason": reason, "domain": "googleapis.com", "metadata": metadata}


def _quota_failure(quota_id: str, value: str) -> dict[str, Any]:
    violation = {
        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "quotaId": quota_id,
        "quotaDimensions": {"location": "global", "model": "{model}"},
        "quotaValue": value,
    }
    return {"@type": _TYPE + "QuotaFailure", "violations": [violation]}


_HELP = {
    "@type": _TYPE + "Help",
    "links": [
        {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
        }
    ],
}
_QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more information on "
    "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, "
    "head to: https://ai.dev/usage?tab=rate-limit. \n* Quota exceeded for metric: "
    "generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: {limit}, model: {model}\n"
    "Please retry in 43.5s."
)
_SUSPENDED = "Permission denied: Consumer 'api_key:{key}' has been suspended."

ERRORS: dict[str, ErrorSpec] = {
    "invalid_argument": ErrorSpec(
        400,
        "INVALID_ARGUMENT",
        "* GenerateContentRequest.generation_config.max_output_tokens: max_output_tokens must be positive.\n",
        (
            {
                "@type": _TYPE + "BadRequest",
                "fieldViolations": [
                    {
                        "field": "generation_config.max_output_tokens",
                        "description": "max_output_tokens must be positive.",
                    }
                ],
            },
        ),
    ),
    "api_key_invalid": ErrorSpec(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        (
            _error_info("API_KEY_INVALID"),
            {
                "@type": _TYPE + "LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key.",
            },
        ),
    ),
    "unauthenticated": ErrorSpec(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
        "other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project.",
        (_error_info("ACCESS_TOKEN_TYPE_UNSUPPORTED", service="aiplatform.googleapis.com"),),
    ),
    "permission_denied": ErrorSpec(
        403,
        "PERMISSION_DENIED",
        _SUSPENDED,
        (
            _error_info("CONSUMER_SUSPENDED", consumer=f"projects/{PROJECT_NUMBER}"),
            {"@type": _TYPE + "LocalizedMessage", "locale": "en-US", "message": _SUSPENDED},
        ),
    ),
    "not_found": ErrorSpec(
        404,
        "NOT_FOUND",
        "models/{model} is not found for API version {version}, or is not supported for generateContent. "
        "Call ListModels to see the list of available models and their supported methods.",
    ),
    "rate_limit": ErrorSpec(
        429,
        "RESOURCE_EXHAUSTED",
        _QUOTA_MESSAGE.replace("{limit}", "10"),
        (
            _quota_failure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "10"),
            _HELP,
            {"@type": _TYPE + "RetryInfo", "retryDelay": "43s"},
        ),
    ),
    "quota_exhausted": ErrorSpec(
        429,
        "RESOURCE_EXHAUSTED",
        _QUOTA_MESSAGE.replace("{limit}", "250"),
        (_quota_failure("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "250"), _HELP),
    ),
    "internal": ErrorSpec(
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    "unavailable": ErrorSpec(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    "deadline_exceeded": ErrorSpec(
        504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."
    ),
}
SCENARIOS = frozenset({"ok", "slow", "prompt_blocked", "function_call", *ERRORS, *STREAM_SCENARIOS})
# What the API answers a request without any key or token.
_UNREGISTERED = ErrorSpec(
    403,
    "PERMISSION_DENIED",
    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key "
    "or other form of API consumer identity to call this API.",
)


# --- payloads ------------------------------------------------------------------------------------


def new_response_id() -> str:
    return "".join(random.choices(_ID_ALPHABET, k=23))


def model_version(model: str) -> str:
    return MODEL_VERSIONS.get(model, model)


def usage(candidates_tokens: int | None = CANDIDATES_TOKENS) -> dict[str, Any]:
    """`usageMetadata`; each chunk of a stream reports the candidates' tokens so far."""
    metadata: dict[str, Any] = {
        "promptTokenCount": PROMPT_TOKENS,
        "totalTokenCount": PROMPT_TOKENS + (candidates_tokens or 0) + THOUGHTS_TOKENS,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": PROMPT_TOKENS}],
        "cachedContentTokenCount": CACHED_TOKENS,
        "thoughtsTokenCount": THOUGHTS_TOKENS,
    }
    if candidates_tokens is not None:
        metadata["candidatesTokenCount"] = candidates_tokens
    return metadata


def response(
    model: str, response_id: str, text: str, finish_reason: str | None, candidates_tokens: int | None
) -> dict[str, Any]:
    """A GenerateContentResponse: the whole answer, or one chunk of a stream."""
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish_reason:
        candidate["finishReason"] = finish_reason
    return {
        "candidates": [candidate],
        "usageMetadata": usage(candidates_tokens),
        "modelVersion": model_version(model),
        "responseId": response_id,
    }


def function_call(model: str, response_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """The model asks for the request's first declared function, with an argument of its schema."""
    tools = body.get("tools") or [{}]
    declaration = (tools[0].get("functionDeclarations") or [{"name": "unknown"}])[0]
    schemas = ("parameters", "parametersJsonSchema", "parameters_json_schema")  # the SDK sends either
    schema = next((declaration[key] for key in schemas if isinstance(declaration.get(key), dict)), {})
    arguments = {name: 42 for name in schema.get("properties", {})}
    answer = response(model, response_id, "", "STOP", CANDIDATES_TOKENS)
    answer["candidates"][0]["content"]["parts"] = [
        {"functionCall": {"name": declaration["name"], "args": arguments}}
    ]
    return answer


def blocked(model: str, response_id: str) -> dict[str, Any]:
    """The prompt was blocked: no candidates, only `promptFeedback`."""
    ratings = [
        {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
        {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    ]
    return {
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": ratings},
        "usageMetadata": {
            "promptTokenCount": PROMPT_TOKENS,
            "totalTokenCount": PROMPT_TOKENS,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": PROMPT_TOKENS}],
        },
        "modelVersion": model_version(model),
        "responseId": response_id,
    }


def error_body(spec: ErrorSpec, model: str, key: str, version: str = "v1beta") -> dict[str, Any]:
    """Google's error object; {model}, {key} and {version} are filled in the message and the details."""

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("{model}", model).replace("{key}", key).replace("{version}", version)
        if isinstance(value, dict):
            return {name: fill(item) for name, item in value.items()}
        if isinstance(value, list):
            return [fill(item) for item in value]
        return value

    error: dict[str, Any] = {"code": spec.code, "message": fill(spec.message), "status": spec.status}
    if spec.details:
        error["details"] = fill(list(spec.details))
    return {"error": error}


# --- HTTP ----------------------------------------------------------------------------------------


class Handler(LoopbackHandler):
    """Answers one connection's requests (HTTP/1.1 keep-alive) for the FakeGoogle it serves."""

    def version_string(self) -> str:
        return "scaffolding on HTTPServer2"

    def send_bug(self, error: Exception) -> None:
        bug = ErrorSpec(500, "INTERNAL", f"fake server bug: {error!r}")
        self._send_json(500, error_body(bug, "", ""))

    def serve(self) -> None:
        self._version = "v1beta"
        body = self.read_json()
        match = _PATH.match(self.url.path)
        headers = self.header_map()
        model = match.group("model") if match else ""
        if match:
            self._version = match.group("version")
        scenario = self.server.fake.next_scenario(model) if match and isinstance(body, dict) else ""
        self.record(body, scenario, model=model)
        key = headers.get("x-goog-api-key", "")
        if match is None:
            self._send_error(ErrorSpec(404, "NOT_FOUND", f"Not Found: {self.url.path}"), model, key)
        elif not isinstance(body, dict):
            self._send_error(ErrorSpec(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), model, key)
        elif not key and "authorization" not in headers:
            self._send_error(_UNREGISTERED, model, key)
        elif match.group("method") == "streamGenerateContent":
            self._answer_stream(scenario, model, key)
        else:
            self._answer(scenario, model, key, body)

    def _answer(self, scenario: str, model: str, key: str, body: dict[str, Any]) -> None:
        if scenario in ERRORS:
            self._send_error(ERRORS[scenario], model, key)
            return
        if scenario == "slow":
            self.pause(SLOW_SECONDS)
        if scenario == "prompt_blocked":
            self._send_json(200, blocked(model, new_response_id()))
        elif scenario == "function_call":
            self._send_json(200, function_call(model, new_response_id(), body))
        else:
            self._send_json(200, response(model, new_response_id(), TEXT, "STOP", CANDIDATES_TOKENS))

    # responses with a body

    def _headers(self, content_type: str) -> list[tuple[str, str]]:
        return [
            ("content-type", content_type),
            ("vary", "Origin, X-Origin, Referer"),
            ("server-timing", f"gfet4t7; dur={random.randint(300, 2500)}"),
            ("x-xss-protection", "0"),
            ("x-frame-options", "SAMEORIGIN"),
            ("x-content-type-options", "nosniff"),
            ("alt-svc", 'h3=":443"; ma=2592000,h3-29=":443"; ma=2592000'),
        ]

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload, indent=2).encode()
        self.send_body(status, data, self._headers("application/json; charset=UTF-8"))

    def _send_error(self, spec: ErrorSpec, model: str, key: str) -> None:
        self._send_json(spec.code, error_body(spec, model, key, self._version))

    # server-sent events, chunked

    def _answer_stream(self, scenario: str, model: str, key: str) -> None:
        if scenario in ERRORS:
            self._send_error(ERRORS[scenario], model, key)
            return
        if scenario == "slow":
            self.pause(SLOW_SECONDS)
        headers = [*self._headers("text/event-stream"), ("transfer-encoding", "chunked")]
        self.send_chunked(200, headers, map(_event, self._chunks(scenario, model)))

    def _chunks(self, scenario: str, model: str) -> Iterator[dict[str, Any] | bytes]:
        response_id = new_response_id()
        if scenario == "prompt_blocked":
            yield blocked(model, response_id)
            return
        if scenario == "stream_error_first":
            yield _pretty_error(model)
            return
        texts = pieces(TEXT, 3)
        if scenario == "stream_long":
            texts = [f"word{index} " for index in range(LONG_STREAM_CHUNKS)]
        for index, piece in enumerate(texts):
            last = index == len(texts) - 1 and scenario != "stream_truncated"
            tokens_so_far = round(CANDIDATES_TOKENS * (index + 1) / len(texts))
            yield response(model, response_id, piece, "STOP" if last else None, tokens_so_far)
            if scenario == "stream_long":
                self.pause(LONG_STREAM_PAUSE)
            if index == 0 and scenario == "stream_cut":
                raise StreamCut
            if index == 1 and scenario == "stream_error":
                yield _pretty_error(model)
                return


def _event(payload: dict[str, Any] | bytes) -> bytes:
    """A `data:` event (lines separated by CRLF), or bytes sent as they are."""
    if isinstance(payload, bytes):
        return payload
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\r\n\r\n"


# --- the fake ------------------------------------------------------------------------------------


def _pretty_error(model: str) -> bytes:
    """Not an SSE event: the error object (503 UNAVAILABLE), pretty-printed, line by line."""
    return json.dumps(error_body(ERRORS["unavailable"], model, ""), indent=2).encode() + b"\n"


class FakeGoogle(LoopbackFake):
    """A loopback Google GenAI API: `Client(api_key=..., http_options={"base_url": fake.base_url})`."""

    handler = Handler
    scenarios = SCENARIOS
    thread_name = "fake-google"
