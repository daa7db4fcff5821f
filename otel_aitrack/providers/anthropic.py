"""Anthropic (the `anthropic` SDK, 1.x and 2.x): the provider contract's answers for Anthropic.

Pure extractors only: request kwargs, results and exceptions in, attributes out. The SDK is never
imported here; its objects are read by their documented fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .. import names
from ..errors import categorize
from ..genai import (
    Message,
    Part,
    assistant_message,
    message,
    other_part,
    reasoning_part,
    text_part,
    to_json,
    tool_call_part,
    tool_call_response_part,
)
from ..names import Category
from .base import Endpoint, ErrorDetails, Provider, ResponseDetails, StreamError
from .http import (
    attribute,
    header,
    is_http_response,
    parse_hooks,
    response_attributes,
    server_attributes,
    status_error_details,
)

_MESSAGES = "anthropic.resources.messages.messages"
_BETA_MESSAGES = "anthropic.resources.beta.messages.messages"
# No semantic-convention operation counts tokens; this is Anthropic's own name for it.
COUNT_TOKENS = "count_tokens"


def _messages_endpoints(module: str) -> tuple[Endpoint, ...]:
    return (
        Endpoint(module, "Messages.create", "chat", False),
        Endpoint(module, "AsyncMessages.create", "chat", True),
        Endpoint(module, "Messages.parse", "chat", False),
        Endpoint(module, "AsyncMessages.parse", "chat", True),
        Endpoint(module, "Messages.stream", "chat", False, deferred=True),
        Endpoint(module, "AsyncMessages.stream", "chat", True, deferred=True),
        Endpoint(module, "Messages.count_tokens", COUNT_TOKENS, False),
        Endpoint(module, "AsyncMessages.count_tokens", COUNT_TOKENS, True),
    )


ENDPOINTS: tuple[Endpoint, ...] = _messages_endpoints(_MESSAGES) + _messages_endpoints(_BETA_MESSAGES)

_REQUEST_ID_HEADER = "request-id"
_RESPONSE_HOOKS = parse_hooks("anthropic._base_client")
# The SDK's span names of the methods above (`beta.messages` uses the same ones).
_OWN_SPAN_NAMES = frozenset({"anthropic.messages.create", "anthropic.messages.count_tokens"})
# What the application gives the SDK's span through the client's `open_telemetry=` option, kept on ours.
_OWN_SPAN_KEPT = (names.GEN_AI_CONVERSATION_ID,)
# The name suffix of the private attribute where the `stream(...)` managers keep their pending request
# (`_MessageStreamManager__api_request`, `_BetaAsyncMessageStreamManager__api_request`, …).
_PENDING_REQUEST = "__api_request"
# What an error's `error.type` means when no HTTP error status says it: an `error` event inside a
# stream that opened with 200 (e.g. `overloaded_error` mid-stream).
_ERROR_TYPE_CATEGORIES = {
    "invalid_request_error": Category.BAD_REQUEST,
    "request_too_large": Category.BAD_REQUEST,
    "authentication_error": Category.AUTH,
    "permission_error": Category.AUTH,
    "not_found_error": Category.NOT_FOUND,
    "rate_limit_error": Category.RATE_LIMIT,
    "api_error": Category.SERVER,
    "overloaded_error": Category.SERVER,
    "timeout_error": Category.TIMEOUT,
}


class AnthropicProvider(Provider):
    """The `anthropic` SDK."""

    name = "anthropic"
    package = "anthropic"
    endpoints = ENDPOINTS

    def request_attributes(self, endpoint: Endpoint, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        client = getattr(instance, "_client", None)
        # Bedrock and Vertex clients say who serves them (`aws.bedrock`, `gcp.vertex_ai`).
        provider = getattr(client, "_gen_ai_provider_name", None)
        attributes: dict[str, Any] = {
            names.GEN_AI_OPERATION_NAME: endpoint.operation,
            names.GEN_AI_PROVIDER_NAME: provider if isinstance(provider, str) and provider else self.name,
        }
        model = kwargs.get("model")
        if isinstance(model, str):
            attributes[names.GEN_AI_REQUEST_MODEL] = model
        if kwargs.get("stream") is True or endpoint.deferred:  # `stream=True`, or the `stream()` helper
            attributes[names.GEN_AI_REQUEST_STREAM] = True
        attributes.update(server_attributes(getattr(client, "base_url", None)))
        return attributes

    def input_messages(self, endpoint: Endpoint, kwargs: dict[str, Any]) -> dict[str, Any]:
        return input_message_attributes(kwargs)

    def response_details(self, endpoint: Endpoint, result: Any, capture: bool) -> ResponseDetails:
        if is_http_response(result):
            return ResponseDetails(attributes=response_attributes(result, _REQUEST_ID_HEADER))
        details = ResponseDetails(attributes=message_attributes(result))
        if endpoint.operation != COUNT_TOKENS:  # a count is not usage: nothing was generated
            details.tokens = usage_tokens(getattr(result, "usage", None))
        request_id = getattr(result, "_request_id", None)
        if isinstance(request_id, str):
            details.attributes[names.AITRACK_REQUEST_ID] = request_id
        if capture and endpoint.operation != COUNT_TOKENS:
            details.output_messages = output_messages(result)
        return details

    def is_stream(self, result: Any) -> bool:
        # A stream's `_iterator` is set in `__init__` (early 1.x) or made on first access (later), so it
        # is looked up without being made.
        made_later = hasattr(type(result), "_iterator")
        return hasattr(result, "response") and (made_later or "_iterator" in getattr(result, "__dict__", ()))

    def stream_state(self, endpoint: Endpoint, stream: Any, capture: bool) -> AnthropicStreamState:
        response = getattr(stream, "response", None)
        return AnthropicStreamState(response_attributes(response, _REQUEST_ID_HEADER), capture)

    def error_details(self, error: BaseException) -> ErrorDetails:
        return status_error_details(error, _REQUEST_ID_HEADER, provider_code(error), self.category)

    def category(
        self, error: BaseException | None, error_type: str, status: int | None, code: str | None
    ) -> str:
        return error_category(error_type, status, code)

    def retry_hooks(self) -> tuple[tuple[str, str], ...]:
        return (("anthropic._base_client", "BaseClient._build_request"),)

    def response_hooks(self) -> tuple[tuple[str, str], ...]:
        return _RESPONSE_HOOKS

    def answer_request_id(self, response: Any) -> str | None:
        return header(response, _REQUEST_ID_HEADER)

    def own_span_hooks(self) -> tuple[tuple[str, str], ...]:
        # The SDK's call span (`anthropic.messages.create`): ours takes its place, see docs/providers.md.
        return (("anthropic._base_client", "start_api_call_span"),)

    def own_span_of_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        # start_api_call_span(tracer, base_url, options, attributes, *, ...) in 1.x and 2.x alike.
        options = args[2] if len(args) > 2 else kwargs.get("options")
        if getattr(options, "span_name", None) not in _OWN_SPAN_NAMES:
            return None
        given = args[3] if len(args) > 3 else kwargs.get("attributes")
        if not isinstance(given, Mapping):
            return {}
        return {key: given[key] for key in _OWN_SPAN_KEPT if isinstance(given.get(key), str)}

    def defer_request(self, endpoint: Endpoint, manager: Any, instrument: Callable[[Any], Any]) -> None:
        for name, request in vars(manager).items():
            if name.endswith(_PENDING_REQUEST):
                setattr(manager, name, instrument(request))
                return
        raise LookupError(f"no pending request found on {type(manager).__name__}")


def provider_code(error: BaseException) -> str | None:
    """The error body's `error.type`: `not_found_error`, `overloaded_error`, `rate_limit_error`, …"""
    value = attribute(error, "type")
    if isinstance(value, str) and value:
        return value
    body = attribute(error, "body")
    inner = body.get("error") if isinstance(body, Mapping) else None
    kind = inner.get("type") if isinstance(inner, Mapping) else None
    return kind if isinstance(kind, str) and kind else None


def error_category(error_type: str, status: int | None, code: str | None) -> str:
    """The HTTP status decides when it is an error status; else the error's own type (stream events)."""
    if status is not None and status >= 400:
        return categorize(error_type, status, code)
    category = categorize(error_type, None, code)
    if category == Category.OTHER and code in _ERROR_TYPE_CATEGORIES:
        return _ERROR_TYPE_CATEGORIES[code]
    return category


def message_attributes(message: Any) -> dict[str, Any]:
    """Response id, model and finish reason (`stop_reason`) of a Message."""
    attributes: dict[str, Any] = {}
    message_id = getattr(message, "id", None)
    if isinstance(message_id, str):
        attributes[names.GEN_AI_RESPONSE_ID] = message_id
    model = getattr(message, "model", None)
    if isinstance(model, str):
        attributes[names.GEN_AI_RESPONSE_MODEL] = model
    reason = getattr(message, "stop_reason", None)
    if isinstance(reason, str):
        attributes[names.GEN_AI_RESPONSE_FINISH_REASONS] = [reason]
    return attributes


_CACHE_COUNTS = (("cache_read", "cache_read_input_tokens"), ("cache_creation", "cache_creation_input_tokens"))


def usage_tokens(usage: Any) -> dict[str, int]:
    """Input tokens as the semantic conventions count them for Anthropic (cache reads and writes
    included, as the SDK's own spans do), output tokens, and the cache reads and writes themselves."""
    tokens: dict[str, int] = {}
    input_tokens = getattr(usage, "input_tokens", None)
    if isinstance(input_tokens, int):
        cached = (_int(usage, "cache_read_input_tokens"), _int(usage, "cache_creation_input_tokens"))
        tokens["input"] = input_tokens + sum(cached)
    for token_type, name in _CACHE_COUNTS:
        value = getattr(usage, name, None)
        if isinstance(value, int):
            tokens[token_type] = value
    output_tokens = getattr(usage, "output_tokens", None)
    if isinstance(output_tokens, int):
        tokens["output"] = output_tokens
    return tokens


def _int(obj: Any, attribute: str) -> int:
    value = getattr(obj, attribute, None)
    return value if isinstance(value, int) else 0


# --- Streams ------------------------------------------------------------------------------------


class AnthropicStreamState:
    """Follows a Messages event stream: `message_start` … `message_delta`, then `message_stop`.

    The SDK raises an `error` event as an `APIStatusError` from the stream (never yields it), so a
    failure arrives through the core's stream error path, not through `error` here.
    """

    def __init__(self, http_attributes: dict[str, Any], capture: bool) -> None:
        self.terminal = False
        self.error: StreamError | None = None
        self._attributes = dict(http_attributes)
        self._tokens: dict[str, int] = {}
        self._reason: str | None = None
        self._capture = capture
        self._text: list[str] = []

    def observe(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            message = getattr(event, "message", None)
            self._attributes.update(message_attributes(message))
            self._tokens.update(usage_tokens(getattr(message, "usage", None)))
        elif kind == "content_block_delta":
            if self._capture:
                self._text.append(_delta_text(getattr(event, "delta", None)))
        elif kind == "message_delta":
            reason = getattr(getattr(event, "delta", None), "stop_reason", None)
            self._reason = reason if isinstance(reason, str) else self._reason
            # The final usage: output tokens always, input tokens when the API restates them.
            self._tokens.update(usage_tokens(getattr(event, "usage", None)))
        elif kind == "message_stop":
            self.terminal = True

    def details(self) -> ResponseDetails:
        attributes = dict(self._attributes)
        attributes.pop(names.GEN_AI_RESPONSE_FINISH_REASONS, None)  # message_start's is a placeholder
        if self._reason:
            attributes[names.GEN_AI_RESPONSE_FINISH_REASONS] = [self._reason]
        output = [assistant_message("".join(self._text), self._reason)] if self._capture else None
        return ResponseDetails(attributes=attributes, tokens=dict(self._tokens), output_messages=output)


def _delta_text(delta: Any) -> str:
    text = getattr(delta, "text", None) if getattr(delta, "type", None) == "text_delta" else None
    return text if isinstance(text, str) else ""


# --- Captured content (only when capture is on) -----------------------------------------------


def input_message_attributes(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """`gen_ai.input.messages` / `gen_ai.system_instructions` as semantic-convention JSON."""
    attributes: dict[str, Any] = {}
    messages = kwargs.get("messages")
    if isinstance(messages, (list, tuple)) and messages:  # never an iterator: it is the SDK's to read
        attributes[names.GEN_AI_INPUT_MESSAGES] = to_json(
            [
                message(str(_field(item, "role") or "user"), parts(_field(item, "content")))
                for item in messages
            ]
        )
    system = kwargs.get("system")
    if isinstance(system, (str, list)) and system:
        attributes[names.GEN_AI_SYSTEM_INSTRUCTIONS] = to_json(parts(system))
    return attributes


def output_messages(reply: Any) -> list[Message] | None:
    content = getattr(reply, "content", None)
    if not isinstance(content, list):
        return None
    output = assistant_message("", getattr(reply, "stop_reason", None))
    output["parts"] = parts(content)
    return [output]


def parts(content: Any) -> list[Part]:
    """Semantic-convention parts of an Anthropic content: a string, or a list of content blocks."""
    if isinstance(content, str):
        return [text_part(content)]
    if isinstance(content, list):
        return [_part(block) for block in content]
    return [] if content is None else [text_part(str(content))]


def _part(block: Any) -> Part:
    kind = _field(block, "type")
    if kind == "text":
        return text_part(str(_field(block, "text") or ""))
    if kind == "thinking":
        return reasoning_part(str(_field(block, "thinking") or ""))
    if kind in ("tool_use", "server_tool_use"):
        return tool_call_part(_field(block, "id"), _field(block, "name"), _field(block, "input"))
    if kind == "tool_result":
        return tool_call_response_part(_field(block, "tool_use_id"), _field(block, "content"))
    return other_part(kind)


def _field(item: Any, name: str) -> Any:
    """A field of a request dict or of a response model alike."""
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
