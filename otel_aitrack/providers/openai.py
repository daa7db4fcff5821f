"""OpenAI (the `openai` SDK, 2.x and 3.x): the provider contract's answers for OpenAI.

Pure extractors only: request kwargs, results and exceptions in, attributes out. Which provider a call
really goes to (Azure, Groq, a vLLM server, …) is worked out in `compatible.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import names
from ..genai import (
    Message,
    Part,
    assistant_message,
    message,
    text_part,
    to_json,
)
from . import compatible
from .base import Endpoint, ErrorDetails, Provider, ResponseDetails, StreamError
from .http import attribute, header, parse_hooks, response_attributes, status_error_details
from .http import is_http_response as _is_http_response

_CHAT = "openai.resources.chat.completions"
_RESPONSES = "openai.resources.responses"

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(_CHAT, "Completions.create", "chat", False),
    Endpoint(_CHAT, "AsyncCompletions.create", "chat", True),
    Endpoint(_CHAT, "Completions.parse", "chat", False),
    Endpoint(_CHAT, "AsyncCompletions.parse", "chat", True),
    Endpoint(_RESPONSES, "Responses.create", "chat", False),
    Endpoint(_RESPONSES, "AsyncResponses.create", "chat", True),
    Endpoint("openai.resources.embeddings", "Embeddings.create", "embeddings", False),
    Endpoint("openai.resources.embeddings", "AsyncEmbeddings.create", "embeddings", True),
    Endpoint("openai.resources.completions", "Completions.create", "text_completion", False),
    Endpoint("openai.resources.completions", "AsyncCompletions.create", "text_completion", True),
)

_REQUEST_ID_HEADER = "x-request-id"
_RESPONSE_HOOKS = parse_hooks("openai._base_client")
# Responses API stream events that end a stream; the failing ones carry an error.
_RESPONSES_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})


class OpenAIProvider(Provider):
    """The `openai` SDK. Its retry hook says its attempt number (`retries_taken`); it traces nothing
    itself; its `stream(...)` helpers send their request through `create`, wrapped already."""

    name = "openai"
    package = "openai"
    endpoints = ENDPOINTS

    def request_attributes(self, endpoint: Endpoint, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        client = getattr(instance, "_client", None)
        base_url = compatible.base_url_of(client)
        attributes: dict[str, Any] = {
            names.GEN_AI_OPERATION_NAME: endpoint.operation,
            names.GEN_AI_PROVIDER_NAME: compatible.provider_name(client, base_url),
        }
        model = kwargs.get("model")
        if isinstance(model, str):
            attributes[names.GEN_AI_REQUEST_MODEL] = model
        if kwargs.get("stream") is True:  # also the `.stream(...)` helpers, which call `create` so
            attributes[names.GEN_AI_REQUEST_STREAM] = True
        attributes.update(base_url.server)
        return attributes

    def input_messages(self, endpoint: Endpoint, kwargs: dict[str, Any]) -> dict[str, Any]:
        return input_message_attributes(endpoint, kwargs)

    def response_details(self, endpoint: Endpoint, result: Any, capture: bool) -> ResponseDetails:
        if _is_http_response(result):
            return ResponseDetails(attributes=http_response_attributes(result))
        details = ResponseDetails(attributes=model_attributes(result), tokens=usage_tokens(result))
        request_id = _request_id(result)
        if isinstance(request_id, str):
            details.attributes[names.AITRACK_REQUEST_ID] = request_id
        if capture:
            details.output_messages = output_messages(result)
        return details

    def is_stream(self, result: Any) -> bool:
        return _is_stream_class(_sdk_class(result)) and hasattr(result, "_iterator")

    def stream_state(self, endpoint: Endpoint, stream: Any, capture: bool) -> OpenAIStreamState:
        return OpenAIStreamState(http_response_attributes(getattr(stream, "response", None)), capture)

    def error_details(self, error: BaseException) -> ErrorDetails:
        return status_error_details(error, _REQUEST_ID_HEADER, provider_code(error), self.category)

    def retry_hooks(self) -> tuple[tuple[str, str], ...]:
        return (("openai._base_client", "BaseClient._build_request"),)

    def response_hooks(self) -> tuple[tuple[str, str], ...]:
        return _RESPONSE_HOOKS

    def answer_request_id(self, response: Any) -> str | None:
        return header(response, _REQUEST_ID_HEADER)


def provider_code(error: BaseException) -> str | None:
    """The error body's `code`, else its `type` (e.g. `model_not_found`, `insufficient_quota`)."""
    for value in (attribute(error, "code"), attribute(error, "type")):
        if isinstance(value, str) and value:
            return value
    body = attribute(error, "body")
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            for key in ("code", "type"):
                if isinstance(inner.get(key), str):
                    return str(inner[key])
    return None


def model_attributes(result: Any) -> dict[str, Any]:
    """Response id, model and finish reasons of a ChatCompletion, Response, Completion or embedding."""
    attributes: dict[str, Any] = {}
    response_id = getattr(result, "id", None)
    if isinstance(response_id, str):
        attributes[names.GEN_AI_RESPONSE_ID] = response_id
    model = getattr(result, "model", None)
    if isinstance(model, str):
        attributes[names.GEN_AI_RESPONSE_MODEL] = model
    reasons = finish_reasons(result)
    if reasons:
        attributes[names.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    return attributes


def finish_reasons(result: Any) -> list[str]:
    choices = getattr(result, "choices", None)
    if isinstance(choices, list):
        return [str(choice.finish_reason) for choice in choices if getattr(choice, "finish_reason", None)]
    incomplete = getattr(result, "incomplete_details", None)
    reason = getattr(incomplete, "reason", None)
    if isinstance(reason, str):
        return [reason]
    if getattr(result, "status", None) == "completed":
        return ["stop"]
    return []


def usage_tokens(result: Any) -> dict[str, int]:
    """Input/output tokens from `usage` (chat/completions/embeddings and Responses field names), and the
    parts of them OpenAI details: cached input (`cached_tokens`) and reasoning output (`reasoning_tokens`)."""
    usage = getattr(result, "usage", None)
    if usage is None:
        return {}
    tokens: dict[str, int] = {}
    for token_type, fields in (
        ("input", ("input_tokens", "prompt_tokens")),
        ("output", ("output_tokens", "completion_tokens")),
    ):
        for name in fields:
            value = _field(usage, name)
            if isinstance(value, int):
                tokens[token_type] = value
                break
    for token_type, details, name in _TOKEN_DETAILS:
        for holder in details:
            value = _field(_field(usage, holder), name)
            if isinstance(value, int):
                tokens[token_type] = value
                break
    return tokens


# (token key, the usage fields that may hold its details (chat, Responses), the count's name there)
_TOKEN_DETAILS = (
    ("cache_read", ("prompt_tokens_details", "input_tokens_details"), "cached_tokens"),
    ("reasoning", ("completion_tokens_details", "output_tokens_details"), "reasoning_tokens"),
)


def _request_id(result: Any) -> Any:
    """The `x-request-id` the SDK keeps on a parsed body: a pydantic private attribute, read from the
    model's private dict (`getattr` goes through pydantic's `__getattr__`, microseconds per call)."""
    private = getattr(result, "__pydantic_private__", None)
    if isinstance(private, dict):
        return private.get("_request_id")
    return getattr(result, "_request_id", None)


def _field(model: Any, name: str) -> Any:
    """A field of an SDK model, read from its `__dict__`: a missing name costs a pydantic model an
    exception (microseconds per call), and chat and Responses usage name their fields differently."""
    fields = getattr(model, "__dict__", None)
    return fields.get(name) if isinstance(fields, dict) else getattr(model, name, None)


_STREAM_CLASSES: dict[type, bool] = {}
_PROXY_CLASSES: dict[type, bool] = {}


def _sdk_class(result: Any) -> type:
    """The class of the SDK's object, also behind a proxy that another instrumentation, wrapping below
    ours, put around it (OpenInference wraps `OpenAI.request` and returns a wrapt proxy of the `Stream`).
    """
    cls = type(result)
    proxy = _PROXY_CLASSES.get(cls)
    if proxy is None:
        proxy = _PROXY_CLASSES[cls] = hasattr(cls, "__wrapped__")
    return type(result.__wrapped__) if proxy else cls


def _is_stream_class(cls: type) -> bool:
    """`Stream` / `AsyncStream` (and subclasses): iterable, with a `response`, not a parsed body.

    Asked of the class, once per class: asking a parsed body (a pydantic model) for a missing
    attribute on every call would cost microseconds each time.
    """
    known = _STREAM_CLASSES.get(cls)
    if known is None:
        iterable = hasattr(cls, "__iter__") or hasattr(cls, "__aiter__")
        known = _STREAM_CLASSES[cls] = iterable and hasattr(cls, "__stream__") and not hasattr(cls, "choices")
    return known


def http_response_attributes(response: Any) -> dict[str, Any]:
    """Status and request id of a raw HTTP response (`with_raw_response`, streams)."""
    return response_attributes(response, _REQUEST_ID_HEADER)


# --- Streams ------------------------------------------------------------------------------------


class OpenAIStreamState:
    """Follows a chat/completions chunk stream or a Responses API event stream."""

    def __init__(self, http_attributes: dict[str, Any], capture: bool) -> None:
        self.terminal = False
        self.error: StreamError | None = None
        self._attributes = dict(http_attributes)
        self._tokens: dict[str, int] = {}
        self._reasons: list[str] = []
        self._capture = capture
        self._text: list[str] = []

    def observe(self, chunk: Any) -> None:
        event_type = getattr(chunk, "type", None)
        if isinstance(event_type, str) and event_type.startswith(("response.", "error")):
            self._observe_event(event_type, chunk)
        else:
            self._observe_chunk(chunk)

    def details(self) -> ResponseDetails:
        attributes = dict(self._attributes)
        if self._reasons:
            attributes[names.GEN_AI_RESPONSE_FINISH_REASONS] = list(self._reasons)
        output = None
        if self._capture:
            output = [assistant_message("".join(self._text), self._reasons[0] if self._reasons else None)]
        return ResponseDetails(attributes=attributes, tokens=dict(self._tokens), output_messages=output)

    def _observe_chunk(self, chunk: Any) -> None:
        self._attributes.update(model_attributes(chunk))
        self._tokens.update(usage_tokens(chunk))
        for choice in getattr(chunk, "choices", None) or ():
            reason = getattr(choice, "finish_reason", None)
            if reason:
                self.terminal = True
                self._reasons.append(str(reason))
            if self._capture:
                self._text.append(_choice_text(choice))

    def _observe_event(self, event_type: str, event: Any) -> None:
        response = getattr(event, "response", None)
        if response is not None:
            self._attributes.update(model_attributes(response))
            self._tokens.update(usage_tokens(response))
        if event_type == "response.output_text.delta" and self._capture:
            self._text.append(str(getattr(event, "delta", "")))
        if event_type in _RESPONSES_TERMINAL:
            self.terminal = True
            self._reasons = finish_reasons(response) if response is not None else self._reasons
        if event_type == "error":
            self.error = StreamError(
                type(event).__name__, str(getattr(event, "message", "")), _str(event, "code")
            )
        elif event_type == "response.failed":
            failure = getattr(response, "error", None)
            message = str(getattr(failure, "message", "")) or "response failed"
            self.error = StreamError(type(event).__name__, message, _str(failure, "code"))


def _choice_text(choice: Any) -> str:
    delta = getattr(choice, "delta", None)
    text = getattr(delta, "content", None) if delta is not None else getattr(choice, "text", None)
    return text if isinstance(text, str) else ""


def _str(obj: Any, attribute: str) -> str | None:
    value = getattr(obj, attribute, None)
    return value if isinstance(value, str) else None


# --- Captured content (only when capture is on) -----------------------------------------------


def input_message_attributes(endpoint: Endpoint, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """`gen_ai.input.messages` / `gen_ai.system_instructions` as semantic-convention JSON."""
    messages: list[Message] = []
    system: list[Part] = []
    for item in _request_messages(kwargs):
        role = str(item.get("role", "user"))
        parts = _parts(item.get("content"))
        if role in {"system", "developer"}:
            system.extend(parts)
        else:
            messages.append(message(role, parts))
    instructions = kwargs.get("instructions")
    if isinstance(instructions, str):
        system.append(text_part(instructions))
    attributes: dict[str, Any] = {}
    if messages:
        attributes[names.GEN_AI_INPUT_MESSAGES] = to_json(messages)
    if system:
        attributes[names.GEN_AI_SYSTEM_INSTRUCTIONS] = to_json(system)
    return attributes


def output_messages(result: Any) -> list[Message] | None:
    choices = getattr(result, "choices", None)
    if isinstance(choices, list):
        return [
            assistant_message(_message_text(choice), getattr(choice, "finish_reason", None))
            for choice in choices
        ]
    text = getattr(result, "output_text", None)
    if isinstance(text, str):
        reasons = finish_reasons(result)
        return [assistant_message(text, reasons[0] if reasons else None)]
    return None


def _request_messages(kwargs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    for key in ("messages", "input", "prompt"):
        value = kwargs.get(key)
        if isinstance(value, str):
            return [{"role": "user", "content": value}]
        if isinstance(value, list):
            return [
                item if isinstance(item, Mapping) else {"role": "user", "content": item} for item in value
            ]
    return []


def _parts(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [text_part(content)]
    if isinstance(content, list):
        return [
            text_part(str(item.get("text", ""))) if isinstance(item, Mapping) else text_part(str(item))
            for item in content
        ]
    return [] if content is None else [text_part(str(content))]


def _message_text(choice: Any) -> str:
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None) if message is not None else getattr(choice, "text", None)
    return text if isinstance(text, str) else ""
