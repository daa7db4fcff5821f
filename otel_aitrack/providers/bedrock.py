"""AWS Bedrock Runtime (boto3 / botocore): the provider contract's answers for `bedrock-runtime`.

boto3 makes each client's methods at run time, per client class, so the one stable method is wrapped:
`botocore.client.BaseClient._make_api_call(operation_name, api_params)`, which every generated method
calls. `route` picks out Bedrock Runtime's four inference operations; every other call (another
operation, another AWS service) passes through untouched, without a span. Pure extractors only:
request parameters, response dicts and exceptions in, attributes out; botocore is never imported here.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import names
from ..errors import categorize, is_transport_error
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
from ..names import Category, ProviderName
from .base import Endpoint, ErrorDetails, Provider, ResponseDetails, StreamError
from .http import server_attributes

SERVICE = "bedrock-runtime"
CONVERSE, CONVERSE_STREAM = "Converse", "ConverseStream"
INVOKE_MODEL, INVOKE_MODEL_STREAM = "InvokeModel", "InvokeModelWithResponseStream"
OPERATIONS = frozenset({CONVERSE, CONVERSE_STREAM, INVOKE_MODEL, INVOKE_MODEL_STREAM})
# Bedrock's own counts on every InvokeModel answer, whatever the model (headers, and the last chunk of a
# stream); cache reads and writes are counted apart from the input.
_TOKEN_HEADERS = {
    "input": (
        "x-amzn-bedrock-input-token-count",
        "x-amzn-bedrock-cache-read-input-token-count",
        "x-amzn-bedrock-cache-write-input-token-count",
    ),
    "output": ("x-amzn-bedrock-output-token-count",),
}
_INVOCATION_METRICS = "amazon-bedrock-invocationMetrics"
_METRIC_COUNTS = {
    "input": ("inputTokenCount", "cacheReadInputTokenCount", "cacheWriteInputTokenCount"),
    "output": ("outputTokenCount",),
}
# An InvokeModel body is kept (to read its finish reason) up to this size; a larger one (an image) is not.
BODY_KEEP_LIMIT = 256 * 1024

# The failure category of an error code, lower-cased: an HTTP error says `ThrottlingException`, an
# exception event inside a stream `throttlingException`. Codes not listed: by HTTP status.
_CODE_CATEGORIES = {
    "throttlingexception": Category.RATE_LIMIT,
    "servicequotaexceededexception": Category.QUOTA,
    "accessdeniedexception": Category.AUTH,
    # The AWS front door's answers to a bad key, token or signature (not in Bedrock's own model).
    "unrecognizedclientexception": Category.AUTH,
    "expiredtokenexception": Category.AUTH,
    "invalidsignatureexception": Category.AUTH,
    "incompletesignatureexception": Category.AUTH,
    "missingauthenticationtokenexception": Category.AUTH,
    "resourcenotfoundexception": Category.NOT_FOUND,
    "validationexception": Category.BAD_REQUEST,
    "conflictexception": Category.BAD_REQUEST,
    "modeltimeoutexception": Category.TIMEOUT,
    "internalserverexception": Category.SERVER,
    "serviceunavailableexception": Category.SERVER,
    "modelnotreadyexception": Category.SERVER,  # a 429, but the model is loading: not the caller's rate
    "modelerrorexception": Category.SERVER,
    "modelstreamerrorexception": Category.SERVER,
}
# botocore's errors raised before or instead of an answer, by class name (the class's or a base's).
_CLASS_CATEGORIES = {
    "NoCredentialsError": Category.AUTH,
    "PartialCredentialsError": Category.AUTH,
    "ParamValidationError": Category.BAD_REQUEST,
    "ResponseStreamingError": Category.CONNECTION,
    "ChecksumMismatch": Category.CONNECTION,  # an event-stream frame damaged on the way
}
# botocore's generic classes: the error code names the modelled exception better than they do.
_GENERIC_ERRORS = frozenset({"ClientError", "EventStreamError"})


# --- Routing ------------------------------------------------------------------------------------


def route(
    instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Endpoint, dict[str, Any]] | None:
    """`_make_api_call(operation_name, api_params)`: the endpoint of a Bedrock Runtime inference call
    and its parameters; None for any other operation or service (looked at in that order: cheapest first)."""
    operation = args[0] if args else kwargs.get("operation_name")
    if not isinstance(operation, str) or operation not in OPERATIONS or _service_name(instance) != SERVICE:
        return None
    params = args[1] if len(args) > 1 else kwargs.get("api_params")
    params = params if isinstance(params, dict) else {}
    model = params.get("modelId")
    return endpoint_of(operation, model if isinstance(model, str) else ""), params


def _service_name(client: Any) -> object:
    return getattr(getattr(getattr(client, "meta", None), "service_model", None), "service_name", None)


@functools.lru_cache(maxsize=512)
def endpoint_of(operation: str, model: str) -> Endpoint:
    """One endpoint per operation and `gen_ai.operation.name` (made once: its wrapper is cached by it)."""
    name = "chat" if operation in (CONVERSE, CONVERSE_STREAM) else invoke_operation(model)
    return Endpoint(SERVICE, operation, name, False)


def invoke_operation(model_id: str) -> str:
    """InvokeModel's body is the model's own API: `embeddings` for an embedding model, `text_completion`
    for Amazon Titan Text (a prompt in, text out, as OpenTelemetry's botocore instrumentation names it),
    `chat` for the others (Anthropic Messages, Nova, Llama, Mistral, Cohere Command, …)."""
    model = model_id.lower()
    if "embed" in model:
        return "embeddings"
    if "amazon.titan-text" in model or "amazon.titan-tg1" in model:
        return "text_completion"
    return "chat"


MAKE_API_CALL = Endpoint("botocore.client", "BaseClient._make_api_call", "chat", False, route=route)


class BedrockProvider(Provider):
    """boto3's `bedrock-runtime` client: converse, converse_stream, invoke_model and its stream.
    botocore says its own count of resends (`ResponseMetadata.RetryAttempts`, on errors too): no retry
    hook; it traces nothing itself."""

    name = ProviderName.AWS_BEDROCK
    # Every call reaches `_make_api_call` from botocore's generated method, and botocore never calls
    # Bedrock on its own: no call is the SDK delegating to itself. So the package named is one whose code
    # never calls `_make_api_call` (naming botocore would take a Bedrock call made by a tool, during
    # another provider's call, for a delegation, and drop its span).
    package = "boto3"
    endpoints: tuple[Endpoint, ...] = (MAKE_API_CALL,)

    def request_attributes(self, endpoint: Endpoint, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            names.GEN_AI_OPERATION_NAME: endpoint.operation,
            names.GEN_AI_PROVIDER_NAME: self.name,
        }
        model = kwargs.get("modelId")
        if isinstance(model, str) and model:
            attributes[names.GEN_AI_REQUEST_MODEL] = model
        if endpoint.method in (CONVERSE_STREAM, INVOKE_MODEL_STREAM):
            attributes[names.GEN_AI_REQUEST_STREAM] = True
        attributes.update(server_attributes(getattr(getattr(instance, "meta", None), "endpoint_url", None)))
        return attributes

    def input_messages(self, endpoint: Endpoint, kwargs: dict[str, Any]) -> dict[str, Any]:
        if endpoint.method not in (CONVERSE, CONVERSE_STREAM):
            return {}  # InvokeModel's body is the model's own JSON: not captured
        return input_message_attributes(kwargs)

    def response_details(self, endpoint: Endpoint, result: Any, capture: bool) -> ResponseDetails:
        """Converse's answer; InvokeModel's only when its body is not followed (then from its headers)."""
        details = ResponseDetails(attributes=metadata_attributes(result))
        if endpoint.method == INVOKE_MODEL:
            details.tokens = header_tokens(result)
            return details
        reason = _str(_get(result, "stopReason"))
        if reason:
            details.attributes[names.GEN_AI_RESPONSE_FINISH_REASONS] = [reason]
        details.tokens = usage_tokens(_get(result, "usage"))
        if capture:
            message = _get(_get(result, "output"), "message")
            details.output_messages = [_output_message(_get(message, "content"), reason)]
        return details

    def is_stream(self, result: Any) -> bool:
        return isinstance(result, Mapping) and any(
            _is_botocore_stream(result.get(key)) for key in ("stream", "body")
        )

    def stream_state(self, endpoint: Endpoint, stream: Any, capture: bool) -> Any:
        attributes = metadata_attributes(stream)
        if endpoint.method == CONVERSE_STREAM:
            return ConverseStreamState(attributes, capture)
        if endpoint.method == INVOKE_MODEL_STREAM:
            return InvokeStreamState(attributes, capture)
        return InvokeBodyState(attributes, header_tokens(stream), _content_length(stream), _is_json(stream))

    def error_details(self, error: BaseException) -> ErrorDetails:
        response = _mapping(getattr(error, "response", None))
        metadata = _mapping(response.get("ResponseMetadata"))
        code = _str(_get(response.get("Error"), "Code"))
        status = _int(metadata.get("HTTPStatusCode"))
        return ErrorDetails(
            status_code=status,
            provider_code=code,
            request_id=_request_id(metadata),
            category=self.category(error, type(error).__name__, status, code),
            error_type=error_type(error, code),
            resend_count=_int(metadata.get("RetryAttempts")),
        )

    def category(
        self, error: BaseException | None, error_type: str, status: int | None, code: str | None
    ) -> str:
        if error is None:  # an error event that raised nothing: by its code alone
            return _CODE_CATEGORIES.get((code or "").lower()) or categorize(error_type, status, code)
        return error_category(error, status, code)


def _is_botocore_stream(value: Any) -> bool:
    cls = type(value)
    return cls.__name__ in ("EventStream", "StreamingBody") and cls.__module__.startswith("botocore.")


# --- Errors: the one place a Bedrock failure is categorized and named -----------------------------


def error_category(error: BaseException, status: int | None, code: str | None) -> str:
    """By the error code when there is one (an HTTP error's, or a stream's exception event's), else by
    botocore's class: its read and connect timeouts, connection errors and client-side errors."""
    if code:
        return _CODE_CATEGORIES.get(code.lower()) or categorize(type(error).__name__, status, code)
    classes = [cls.__name__ for cls in type(error).__mro__]
    if "Timeout" in classes[0]:
        return Category.TIMEOUT
    known = next((_CLASS_CATEGORIES[name] for name in classes if name in _CLASS_CATEGORIES), None)
    if known is not None:
        return known
    return Category.CONNECTION if is_transport_error(error) else categorize(classes[0], None, None)


def error_type(error: BaseException, code: str | None) -> str | None:
    """`error.type`: the modelled exception's name. botocore raises a modelled class named after the code
    (`ThrottlingException`); for a code its model lacks (`UnrecognizedClientException`) and for an
    exception event inside a stream (`throttlingException`), its generic ClientError / EventStreamError:
    then the code, as the modelled name. None: the class name."""
    if code and type(error).__name__ in _GENERIC_ERRORS:
        return code[:1].upper() + code[1:]
    return None


def _request_id(metadata: Mapping[str, Any]) -> str | None:
    """botocore's `RequestId` (from `x-amzn-RequestId`), else the header itself."""
    return _str(metadata.get("RequestId")) or _str(_get(metadata.get("HTTPHeaders"), "x-amzn-requestid"))


# --- Responses ----------------------------------------------------------------------------------


def metadata_attributes(result: Any) -> dict[str, Any]:
    """Status, request id and botocore's resend count of any operation's result."""
    metadata = _mapping(_get(result, "ResponseMetadata"))
    attributes: dict[str, Any] = {}
    status = _int(metadata.get("HTTPStatusCode"))
    if status is not None:
        attributes[names.HTTP_RESPONSE_STATUS_CODE] = status
    request_id = _request_id(metadata)
    if request_id:
        attributes[names.AITRACK_REQUEST_ID] = request_id
    retries = _int(metadata.get("RetryAttempts"))
    if retries:
        attributes[names.HTTP_REQUEST_RESEND_COUNT] = retries
    return attributes


def usage_tokens(usage: Any) -> dict[str, int]:
    """Converse's `usage` (and Nova's body): input = `inputTokens` + cache reads and writes, which Bedrock
    counts apart and the semantic conventions count in; output = `outputTokens`; and the cache reads
    and writes themselves."""
    return _counts(
        usage,
        {
            "input": ("inputTokens", "cacheReadInputTokens", "cacheWriteInputTokens"),
            "output": ("outputTokens",),
            "cache_read": ("cacheReadInputTokens",),
            "cache_creation": ("cacheWriteInputTokens",),
        },
    )


def header_tokens(result: Any) -> dict[str, int]:
    """Bedrock's own counts of an InvokeModel answer: its `X-Amzn-Bedrock-*-Token-Count` headers."""
    return _counts(_get(_get(result, "ResponseMetadata"), "HTTPHeaders"), _TOKEN_HEADERS)


def _counts(source: Any, fields: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
    """{"input": n, "output": m, …}: each the sum of its fields that `source` has (the first one needed)."""
    tokens: dict[str, int] = {}
    for kind, (first, *more) in fields.items():
        value = _int(_get(source, first))
        if value is not None:
            tokens[kind] = value + sum(_int(_get(source, name)) or 0 for name in more)
    return tokens


def _content_length(result: Any) -> int | None:
    return _int(_get(_get(_get(result, "ResponseMetadata"), "HTTPHeaders"), "content-length"))


def _is_json(result: Any) -> bool:
    return "json" in (_str(_get(result, "contentType")) or "")


# --- Model bodies: InvokeModel's JSON and its stream's chunks, per model family -------------------


@dataclass
class Reply:
    """What a model's own JSON tells: a whole InvokeModel body, or what its stream's chunks told so far."""

    response_id: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    tokens: dict[str, int] = field(default_factory=dict)  # the model's counts
    bedrock_tokens: dict[str, int] = field(default_factory=dict)  # Bedrock's (invocation metrics)
    text: list[str] = field(default_factory=list)
    end: bool = False  # the stream's last chunk was seen

    def attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        if self.response_id:
            attributes[names.GEN_AI_RESPONSE_ID] = self.response_id
        if self.model:
            attributes[names.GEN_AI_RESPONSE_MODEL] = self.model
        if self.finish_reason:
            attributes[names.GEN_AI_RESPONSE_FINISH_REASONS] = [self.finish_reason]
        return attributes


def read_reply(reply: Reply, body: Mapping[str, Any]) -> None:
    """Adds what one body or chunk tells, by its shape: Anthropic Messages (`type`), Amazon Titan Text
    (`results` / `outputText`), the Converse shape of Amazon Nova (`stopReason`, `usage`, stream events)."""
    metrics = body.get(_INVOCATION_METRICS)
    if isinstance(metrics, Mapping):
        reply.bedrock_tokens = _counts(metrics, _METRIC_COUNTS)
        reply.end = True
    kind = body.get("type")
    if isinstance(kind, str):
        _read_anthropic(reply, kind, body)
    elif "results" in body or "outputText" in body:
        _read_titan(reply, body)
    else:
        _read_converse_shape(reply, body)


def _read_anthropic(reply: Reply, kind: str, body: Mapping[str, Any]) -> None:
    message = body.get("message") if kind == "message_start" else body
    if kind in ("message", "message_start"):
        reply.response_id = _str(_get(message, "id")) or reply.response_id
        reply.model = _str(_get(message, "model")) or reply.model
        reply.tokens.update(_anthropic_tokens(_get(message, "usage")))
    if kind == "message":
        reply.finish_reason = _str(body.get("stop_reason"))
        reply.text.extend(_str(_get(block, "text")) or "" for block in _list(body.get("content")))
    elif kind == "content_block_delta":
        reply.text.append(_str(_get(body.get("delta"), "text")) or "")
    elif kind == "message_delta":
        reply.finish_reason = _str(_get(body.get("delta"), "stop_reason")) or reply.finish_reason
        reply.tokens.update(_anthropic_tokens(body.get("usage")))
    elif kind == "message_stop":
        reply.end = True


def _anthropic_tokens(usage: Any) -> dict[str, int]:
    """As the anthropic provider counts them: cache reads and writes in the input."""
    fields = {
        "input": ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"),
        "output": ("output_tokens",),
        "cache_read": ("cache_read_input_tokens",),
        "cache_creation": ("cache_creation_input_tokens",),
    }
    return _counts(usage, fields)


def _read_titan(reply: Reply, body: Mapping[str, Any]) -> None:
    """A whole body (`inputTextTokenCount`, `results[]`) or a stream chunk (`outputText`,
    `completionReason`, `totalOutputTextTokenCount`)."""
    result = next(iter(_list(body.get("results"))), body)
    reason = _str(_get(result, "completionReason"))
    reply.finish_reason = reason or reply.finish_reason
    reply.end = reply.end or reason is not None
    reply.text.append(_str(_get(result, "outputText")) or "")
    tokens = _counts(body, {"input": ("inputTextTokenCount",)})
    tokens.update(_counts(result, {"output": ("tokenCount",)}))
    tokens.update(_counts(body, {"output": ("totalOutputTextTokenCount",)}))
    reply.tokens.update(tokens)


def _read_converse_shape(reply: Reply, body: Mapping[str, Any]) -> None:
    """Nova's body is Converse's answer (`output`, `stopReason`, `usage`); its stream's chunks are
    ConverseStream's events (`contentBlockDelta`, `messageStop`, `metadata`)."""
    stop = body.get("messageStop", body)
    reply.finish_reason = _str(_get(stop, "stopReason")) or reply.finish_reason
    usage = body.get("usage", _get(body.get("metadata"), "usage"))
    reply.tokens.update(usage_tokens(usage))
    content = _get(_get(body.get("output"), "message"), "content")
    reply.text.extend(_str(_get(block, "text")) or "" for block in _list(content))
    reply.text.append(_str(_get(_get(body.get("contentBlockDelta"), "delta"), "text")) or "")
    reply.end = reply.end or "metadata" in body


def reply_details(base: dict[str, Any], reply: Reply, capture: bool) -> ResponseDetails:
    """Bedrock's own token counts when it gave them (any model), else the model's."""
    tokens = reply.bedrock_tokens or reply.tokens
    output = [assistant_message("".join(reply.text), reply.finish_reason)] if capture else None
    return ResponseDetails(
        attributes={**base, **reply.attributes()}, tokens=dict(tokens), output_messages=output
    )


class InvokeBodyState:
    """Follows InvokeModel's body as the user reads it (botocore's StreamingBody can be read once: nothing
    is read for us, what the user reads is kept, up to `BODY_KEEP_LIMIT`). Read through: its JSON's
    response id, model and finish reason; its tokens from the headers, or from the JSON."""

    def __init__(
        self, attributes: dict[str, Any], tokens: dict[str, int], length: int | None, is_json: bool
    ) -> None:
        self.terminal = False
        self.error: StreamError | None = None
        self._attributes = attributes
        self._tokens = tokens
        self._length = length
        self._kept: list[bytes] | None = [] if is_json else None
        self._size = 0
        self._details: ResponseDetails | None = None

    def observe(self, data: bytes) -> None:
        self._size += len(data)
        if self._kept is not None and self._size > BODY_KEEP_LIMIT:
            self._kept = None
        elif self._kept is not None:
            self._kept.append(data)
        self.terminal = self._length is not None and self._size >= self._length

    def details(self) -> ResponseDetails:
        if self._details is None:  # made once: the body is parsed once, when the call ends
            reply = Reply()
            # What was kept; a body closed half read is no JSON object, and tells nothing.
            body = _json_object(b"".join(self._kept)) if self._kept is not None else None
            if body is not None:
                read_reply(reply, body)
            reply.bedrock_tokens = self._tokens
            self._details = reply_details(self._attributes, reply, capture=False)
        return self._details


class _ReplyStreamState:
    """What both event streams share: the response's own attributes, and the reply read from events.

    botocore raises an exception event as an `EventStreamError` (never yields it), so a failure arrives
    through the core's stream error path, not through `error`."""

    def __init__(self, attributes: dict[str, Any], capture: bool) -> None:
        self.terminal = False
        self.error: StreamError | None = None
        self._attributes = attributes
        self._capture = capture
        self._reply = Reply()

    def details(self) -> ResponseDetails:
        return reply_details(self._attributes, self._reply, self._capture)


class ConverseStreamState(_ReplyStreamState):
    """Follows ConverseStream: messageStart, contentBlockDelta…, contentBlockStop, messageStop (the stop
    reason), then metadata (the usage): the end is both."""

    def __init__(self, attributes: dict[str, Any], capture: bool) -> None:
        super().__init__(attributes, capture)
        self._stopped = False

    def observe(self, event: Any) -> None:
        if not isinstance(event, Mapping):
            return
        self._stopped = self._stopped or "messageStop" in event
        if self._capture or "contentBlockDelta" not in event:
            _read_converse_shape(self._reply, event)
        self.terminal = self._stopped and self._reply.end


class InvokeStreamState(_ReplyStreamState):
    """Follows InvokeModelWithResponseStream: `{"chunk": {"bytes": <the model's JSON>}}` events, the last
    of which carries Bedrock's `amazon-bedrock-invocationMetrics` (its end, whatever the model; Anthropic's
    `message_stop` too)."""

    def observe(self, event: Any) -> None:
        body = _json_object(_get(_get(event, "chunk"), "bytes"))
        if body is not None:
            read_reply(self._reply, body)
        self.terminal = self._reply.end


def _json_object(data: Any) -> Mapping[str, Any] | None:
    """A JSON object from bytes (the body's, or a chunk's, which botocore has already base64-decoded)."""
    if not isinstance(data, (bytes, bytearray)):
        return None
    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    return parsed if isinstance(parsed, Mapping) else None


# --- Captured content (only when capture is on; Converse only) ----------------------------------


def input_message_attributes(params: Mapping[str, Any]) -> dict[str, Any]:
    """`gen_ai.input.messages` / `gen_ai.system_instructions` of a Converse request."""
    attributes: dict[str, Any] = {}
    messages = params.get("messages")
    if isinstance(messages, (list, tuple)) and messages:
        attributes[names.GEN_AI_INPUT_MESSAGES] = to_json(
            [message(str(_get(m, "role") or "user"), parts(_get(m, "content"))) for m in messages]
        )
    system = params.get("system")
    if isinstance(system, (list, tuple)) and system:
        attributes[names.GEN_AI_SYSTEM_INSTRUCTIONS] = to_json(parts(system))
    return attributes


def _output_message(content: Any, reason: str | None) -> Message:
    output = assistant_message("", reason)
    output["parts"] = parts(content)
    return output


def parts(content: Any) -> list[Part]:
    """Semantic-convention parts of Converse content blocks (`text`, `toolUse`, `toolResult`, …)."""
    return [_part(block) for block in _list(content)]


def _part(block: Any) -> Part:
    if not isinstance(block, Mapping):
        return other_part("unknown")
    if "text" in block:
        return text_part(str(block["text"]))
    tool = block.get("toolUse")
    if isinstance(tool, Mapping):
        return tool_call_part(tool.get("toolUseId"), tool.get("name"), tool.get("input"))
    result = block.get("toolResult")
    if isinstance(result, Mapping):
        return tool_call_response_part(result.get("toolUseId"), result.get("content"))
    reasoning = _get(_get(block, "reasoningContent"), "reasoningText")
    if reasoning is not None:
        return reasoning_part(str(_get(reasoning, "text") or ""))
    return other_part(next(iter(block), "unknown"))  # image, document, video, cachePoint, guardContent, …


# --- Small readers --------------------------------------------------------------------------------


def _get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, Mapping) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    """An int, or a header's digits (`"12"`)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None
