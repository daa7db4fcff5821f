"""Google GenAI (the `google-genai` SDK): the provider contract's answers for Gemini and Vertex AI.

Pure extractors only: request kwargs, results and exceptions in, attributes out. The SDK is never
imported here; its objects are read by their documented fields (snake_case on the SDK's models, the
REST body's camelCase only inside an error's `details`).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from .. import names
from ..errors import categorize, is_transport_error
from ..genai import (
    Message,
    Part,
    assistant_message,
    blob_part,
    message,
    other_part,
    reasoning_part,
    text_part,
    to_json,
    tool_call_part,
    tool_call_response_part,
)
from ..names import Category, ProviderName
from .base import Endpoint, ErrorDetails, Provider, ResponseDetails, StreamError
from .http import attribute, server_attributes

_MODELS = "google.genai.models"
_API_CLIENT = "google.genai._api_client"
# The semantic conventions' operation for Gemini's multimodal `generateContent`.
GENERATE_CONTENT = "generate_content"

CALL_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(_MODELS, "Models.generate_content", GENERATE_CONTENT, False),
    Endpoint(_MODELS, "AsyncModels.generate_content", GENERATE_CONTENT, True),
)
# The SDK's streams are plain generators (async generators) that send their request when first read,
# not stream objects the core can follow in place: the core reads them through a generator of the same
# kind (streams.follow, docs/providers.md "Google GenAI").
STREAM_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(_MODELS, "Models.generate_content_stream", GENERATE_CONTENT, False),
    Endpoint(_MODELS, "AsyncModels.generate_content_stream", GENERATE_CONTENT, True),
)
ENDPOINTS = CALL_ENDPOINTS + STREAM_ENDPOINTS

# gen_ai.provider.name, by the client's `vertexai` flag (the SDK calls the Gemini Developer API unless
# it is true); a client that does not say is the semantic conventions' "any Google generative AI endpoint".
ANY_GOOGLE = ProviderName.GCP_GEN_AI

# What a google.rpc status means when no HTTP error status says it (an error inside a 200 stream).
_STATUS_CATEGORIES = {
    "INVALID_ARGUMENT": Category.BAD_REQUEST,
    "FAILED_PRECONDITION": Category.BAD_REQUEST,
    "OUT_OF_RANGE": Category.BAD_REQUEST,
    "UNAUTHENTICATED": Category.AUTH,
    "PERMISSION_DENIED": Category.AUTH,
    "NOT_FOUND": Category.NOT_FOUND,
    "RESOURCE_EXHAUSTED": Category.RATE_LIMIT,
    "INTERNAL": Category.SERVER,
    "UNAVAILABLE": Category.SERVER,
    "UNKNOWN": Category.SERVER,
    "DEADLINE_EXCEEDED": Category.TIMEOUT,
}
# `ErrorInfo` reasons that say more than their status: a wrong key is a 400 INVALID_ARGUMENT.
_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"})


class GoogleProvider(Provider):
    """The `google-genai` SDK (`genai.Client(...).models` and `.aio.models`)."""

    name = ANY_GOOGLE
    package = "google.genai"
    endpoints = ENDPOINTS

    def request_attributes(self, endpoint: Endpoint, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        client = getattr(instance, "_api_client", None)
        attributes: dict[str, Any] = {
            names.GEN_AI_OPERATION_NAME: endpoint.operation,
            names.GEN_AI_PROVIDER_NAME: provider_name(client),
        }
        model = kwargs.get("model")
        if isinstance(model, str):
            attributes[names.GEN_AI_REQUEST_MODEL] = model
        if endpoint in STREAM_ENDPOINTS:
            attributes[names.GEN_AI_REQUEST_STREAM] = True
        options = getattr(client, "_http_options", None)  # a model, or a dict in early 1.x
        attributes.update(server_attributes(_field(options, "base_url")))
        return attributes

    def input_messages(self, endpoint: Endpoint, kwargs: dict[str, Any]) -> dict[str, Any]:
        return input_message_attributes(kwargs)

    def response_details(self, endpoint: Endpoint, result: Any, capture: bool) -> ResponseDetails:
        details = ResponseDetails(
            attributes=response_attributes(result),
            tokens=usage_tokens(getattr(result, "usage_metadata", None)),
        )
        if capture:
            details.output_messages = output_messages(result)
        return details

    def is_stream(self, result: Any) -> bool:
        return inspect.isgenerator(result) or inspect.isasyncgen(result)

    def stream_state(self, endpoint: Endpoint, stream: Any, capture: bool) -> GoogleStreamState:
        return GoogleStreamState(capture)

    def error_details(self, error: BaseException) -> ErrorDetails:
        status = http_status(error)
        code = provider_code(error)
        return ErrorDetails(status, code, None, self.category(error, type(error).__name__, status, code))

    def category(
        self, error: BaseException | None, error_type: str, status: int | None, code: str | None
    ) -> str:
        """By the status and the google.rpc details; google-genai does not wrap transport errors."""
        category = error_category(error_type, status, code, attribute(error, "details"))
        if category == Category.OTHER and error is not None and is_transport_error(error):
            return Category.CONNECTION
        return category

    def retry_hooks(self) -> tuple[tuple[str, str], ...]:
        # One attempt each, called by the SDK's tenacity loop (`HttpRetryOptions`).
        return (
            (_API_CLIENT, "BaseApiClient._request_once"),
            (_API_CLIENT, "BaseApiClient._async_request_once"),
        )

    def send_hooks(self) -> tuple[tuple[str, str], ...]:
        # One request, retried by the loop inside; automatic function calling sends several per call.
        return ((_API_CLIENT, "BaseApiClient._request"), (_API_CLIENT, "BaseApiClient._async_request"))


def provider_name(client: Any) -> str:
    """`gcp.vertex_ai` or `gcp.gemini` by the client's `vertexai` flag; `gcp.gen_ai` when it has none."""
    if client is None or not hasattr(client, "vertexai"):
        return ANY_GOOGLE
    return ProviderName.GCP_VERTEX_AI if client.vertexai is True else ProviderName.GCP_GEMINI


# --- Errors -------------------------------------------------------------------------------------


def http_status(error: BaseException) -> int | None:
    """The HTTP status of the answer: 200 for an error object inside a stream that had opened.

    `APIError.code` is the error body's code; the status of the response it came with wins (an error
    inside a stream carries the stream's response, whose status is 200).
    """
    response = attribute(error, "response")
    for value in (getattr(response, "status_code", None), getattr(response, "status", None)):
        if isinstance(value, int):
            return value
    code = attribute(error, "code")
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def provider_code(error: BaseException) -> str | None:
    """The error body's `status`: `RESOURCE_EXHAUSTED`, `PERMISSION_DENIED`, `NOT_FOUND`, …"""
    status = attribute(error, "status")
    return status if isinstance(status, str) and status else None


def error_category(error_type: str, status: int | None, code: str | None, body: Any) -> str:
    """From the HTTP status when it is an error status, else from the google.rpc status; refined by the
    error's details (a wrong API key is `auth`, an exhausted daily or zero quota is `quota`)."""
    if status is not None and status >= 400:
        category = categorize(error_type, status, code)
    else:
        category = _STATUS_CATEGORIES.get(code or "", categorize(error_type, None, code))
    if _AUTH_REASONS & set(_detail_values(body, "ErrorInfo", "reason")):
        return Category.AUTH
    if category == Category.RATE_LIMIT and _quota_spent(body):
        return Category.QUOTA
    return category


def _quota_spent(body: Any) -> bool:
    """A `QuotaFailure` for a daily quota, or a quota of zero: waiting a minute will not help."""
    violations = [v for group in _details(body, "QuotaFailure") for v in _list(group.get("violations"))]
    return any(
        "PerDay" in str(v.get("quotaId", "")) or str(v.get("quotaValue")) == "0"
        for v in violations
        if isinstance(v, Mapping)
    )


def _detail_values(body: Any, kind: str, key: str) -> Iterable[Any]:
    return (detail.get(key) for detail in _details(body, kind))


def _details(body: Any, kind: str) -> list[Mapping[str, Any]]:
    """The `details` entries of a google.rpc type (`ErrorInfo`, `QuotaFailure`, …) in an error body."""
    error = body.get("error", body) if isinstance(body, Mapping) else None
    entries = _list(error.get("details")) if isinstance(error, Mapping) else []
    suffix = "google.rpc." + kind
    return [e for e in entries if isinstance(e, Mapping) and str(e.get("@type", "")).endswith(suffix)]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --- Responses ----------------------------------------------------------------------------------


def response_attributes(response: Any) -> dict[str, Any]:
    """Response id, model version and finish reasons of a GenerateContentResponse.

    Google sends no request id: `responseId` (the encoding of the server's event id) is the one id it
    returns, so it is both `gen_ai.response.id` and `aitrack.request.id`.
    """
    attributes: dict[str, Any] = {}
    response_id = getattr(response, "response_id", None)
    if isinstance(response_id, str) and response_id:
        attributes[names.GEN_AI_RESPONSE_ID] = response_id
        attributes[names.AITRACK_REQUEST_ID] = response_id
    version = getattr(response, "model_version", None)
    if isinstance(version, str) and version:
        attributes[names.GEN_AI_RESPONSE_MODEL] = version
    reasons = finish_reasons(response)
    if reasons:
        attributes[names.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    return attributes


def finish_reasons(response: Any) -> list[str]:
    """Each candidate's `finishReason` as the API says it (`STOP`, `MAX_TOKENS`, `SAFETY`, …); for a
    prompt blocked before any candidate, its `blockReason` (`SAFETY`, `PROHIBITED_CONTENT`, …)."""
    reasons = [_text(getattr(c, "finish_reason", None)) for c in getattr(response, "candidates", None) or ()]
    found = [reason for reason in reasons if reason]
    if found:
        return found
    blocked = _text(getattr(getattr(response, "prompt_feedback", None), "block_reason", None))
    return [blocked] if blocked else []


_TOKEN_PARTS = (("cache_read", "cached_content_token_count"), ("reasoning", "thoughts_token_count"))


def usage_tokens(usage: Any) -> dict[str, int]:
    """Input: `promptTokenCount` (cached content included). Output: `candidatesTokenCount` plus
    `thoughtsTokenCount`, the reasoning Google bills as output (as the other providers' counts do).
    Their parts: `cachedContentTokenCount` (cache reads) and `thoughtsTokenCount` (reasoning)."""
    tokens: dict[str, int] = {}
    prompt = getattr(usage, "prompt_token_count", None)
    if isinstance(prompt, int):
        tokens["input"] = prompt
    output = [getattr(usage, field, None) for field in ("candidates_token_count", "thoughts_token_count")]
    counted = [value for value in output if isinstance(value, int)]
    if counted:
        tokens["output"] = sum(counted)
    for token_type, name in _TOKEN_PARTS:
        value = getattr(usage, name, None)
        if isinstance(value, int):
            tokens[token_type] = value
    return tokens


def _text(value: Any) -> str | None:
    """An SDK enum member (`FinishReason.STOP`) or a plain string, as the API's own text (`STOP`)."""
    value = getattr(value, "value", value)
    return value if isinstance(value, str) and value else None


# --- Streams ------------------------------------------------------------------------------------


class GoogleStreamState:
    """Follows `generate_content_stream`: GenerateContentResponse chunks, the last with a finishReason.

    The SDK raises an error object inside the stream as `APIError` (never yields it), so a failure
    arrives through the core's stream error path, not through `error` here. A prompt blocked before
    generation is the API's final word (one chunk with `promptFeedback.blockReason`): terminal.
    """

    def __init__(self, capture: bool) -> None:
        self.terminal = False
        self.error: StreamError | None = None
        self._attributes: dict[str, Any] = {}
        self._tokens: dict[str, int] = {}
        self._reasons: list[str] = []
        self._capture = capture
        self._text: list[str] = []

    def observe(self, chunk: Any) -> None:
        attributes = response_attributes(chunk)
        reasons = attributes.pop(names.GEN_AI_RESPONSE_FINISH_REASONS, [])
        self._attributes.update(attributes)
        # Every chunk restates the usage so far: the last one has the totals.
        self._tokens.update(usage_tokens(getattr(chunk, "usage_metadata", None)))
        if reasons:
            self.terminal = True
            self._reasons = reasons
        if self._capture:
            self._text.extend(_candidate_text(c) for c in (getattr(chunk, "candidates", None) or ())[:1])

    def details(self) -> ResponseDetails:
        attributes = dict(self._attributes)
        if self._reasons:
            attributes[names.GEN_AI_RESPONSE_FINISH_REASONS] = list(self._reasons)
        output = None
        if self._capture:
            output = [assistant_message("".join(self._text), self._reasons[0] if self._reasons else None)]
        return ResponseDetails(attributes=attributes, tokens=dict(self._tokens), output_messages=output)


# --- Captured content (only when capture is on) -----------------------------------------------


def input_message_attributes(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """`gen_ai.input.messages` / `gen_ai.system_instructions` as semantic-convention JSON."""
    attributes: dict[str, Any] = {}
    messages = request_messages(kwargs.get("contents"))
    if messages:
        attributes[names.GEN_AI_INPUT_MESSAGES] = to_json(messages)
    system = _field(kwargs.get("config"), "system_instruction")
    if system:
        attributes[names.GEN_AI_SYSTEM_INSTRUCTIONS] = to_json(parts(system))
    return attributes


def request_messages(contents: Any) -> list[Message]:
    """`contents` as messages: a string, a Content, or a list (never an iterator: the SDK reads it) of
    strings, Parts and Contents, the SDK's dicts and models alike."""
    if contents is None:
        return []
    items = list(contents) if isinstance(contents, (list, tuple)) else [contents]
    messages: list[Message] = []
    loose = False  # the last message gathers loose strings and Parts, as the SDK sends them: one user turn
    for item in items:
        if _field(item, "parts") is not None:
            messages.append(message(_role(_field(item, "role")), parts(_field(item, "parts"))))
            loose = False
        elif loose:
            messages[-1]["parts"].extend(parts(item))
        else:
            messages.append(message("user", parts(item)))
            loose = True
    return messages


def output_messages(response: Any) -> list[Message] | None:
    candidates = getattr(response, "candidates", None)
    if not isinstance(candidates, list):
        return None
    return [_candidate_message(candidate) for candidate in candidates]


def _candidate_message(candidate: Any) -> Message:
    output = assistant_message("", _text(getattr(candidate, "finish_reason", None)))
    output["parts"] = parts(_field(getattr(candidate, "content", None), "parts") or [])
    return output


def _candidate_text(candidate: Any) -> str:
    content_parts = _field(getattr(candidate, "content", None), "parts") or []
    return "".join(str(_field(part, "text") or "") for part in content_parts)


def parts(content: Any) -> list[Part]:
    """Semantic-convention parts of a string, a Part, a Content or a list of them."""
    if isinstance(content, str):
        return [text_part(content)]
    if isinstance(content, (list, tuple)):
        return [part for item in content for part in parts(item)]
    nested = _field(content, "parts")
    if nested is not None:
        return parts(nested)
    return [] if content is None else [_part(content)]


def _part(part: Any) -> Part:
    text = _field(part, "text")
    if isinstance(text, str):
        return reasoning_part(text) if _field(part, "thought") is True else text_part(text)
    call = _field(part, "function_call")
    if call is not None:
        return tool_call_part(_field(call, "id"), _field(call, "name"), _field(call, "args"))
    result = _field(part, "function_response")
    if result is not None:
        return tool_call_response_part(_field(result, "id"), _field(result, "response"))
    blob = _field(part, "inline_data") or _field(part, "file_data")
    if blob is not None:
        return blob_part(_field(blob, "mime_type"))
    return other_part("unknown")


def _role(role: Any) -> str:
    return "assistant" if role == "model" else str(role or "user")


def _field(item: Any, name: str) -> Any:
    """A field of a request dict or of an SDK model alike."""
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
