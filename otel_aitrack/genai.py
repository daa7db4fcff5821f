"""Provider-neutral GenAI semantic-convention shapes: token attributes and captured messages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

from . import names

# The token counts a provider may report, by the key it reports them under in `ResponseDetails.tokens`.
# `input` and `output` are the totals (the token-usage histogram's two types); the others are parts of
# them, on the span only.
TOKEN_ATTRIBUTES = {
    "input": names.GEN_AI_USAGE_INPUT_TOKENS,
    "output": names.GEN_AI_USAGE_OUTPUT_TOKENS,
    "cache_read": names.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    "cache_creation": names.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    "reasoning": names.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
}


def token_attributes(tokens: Mapping[str, int]) -> dict[str, Any]:
    """`gen_ai.usage.*` from `{"input": n, "output": m}` and the parts of them a provider reports."""
    return {TOKEN_ATTRIBUTES[key]: count for key, count in tokens.items() if key in TOKEN_ATTRIBUTES}


# --- The conventions' message parts (gen_ai.input.messages / gen_ai.output.messages JSON) ------------


class TextPart(TypedDict):
    type: Literal["text"]
    content: str


class ReasoningPart(TypedDict):
    type: Literal["reasoning"]
    content: str


class ToolCallPart(TypedDict):
    type: Literal["tool_call"]
    id: Any  # the provider's call id (a string), or None when it gives none
    name: Any
    arguments: Any


class ToolCallResponsePart(TypedDict):
    type: Literal["tool_call_response"]
    id: Any
    response: Any


class BlobPart(TypedDict):
    type: Literal["blob"]
    mime_type: Any


class OtherPart(TypedDict):
    """A part the conventions have no shape for: its provider's kind (`image`, `document`, `unknown`)."""

    type: str


Part = TextPart | ReasoningPart | ToolCallPart | ToolCallResponsePart | BlobPart | OtherPart


class _MessageBase(TypedDict):
    role: str
    parts: list[Part]


class Message(_MessageBase, total=False):
    finish_reason: str  # output messages only


def text_part(text: str) -> TextPart:
    return {"type": "text", "content": text}


def reasoning_part(text: str) -> ReasoningPart:
    return {"type": "reasoning", "content": text}


def tool_call_part(call_id: Any, name: Any, arguments: Any) -> ToolCallPart:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}


def tool_call_response_part(call_id: Any, response: Any) -> ToolCallResponsePart:
    return {"type": "tool_call_response", "id": call_id, "response": response}


def blob_part(mime_type: Any) -> BlobPart:
    return {"type": "blob", "mime_type": mime_type}


def other_part(kind: object) -> OtherPart:
    return {"type": str(kind or "unknown")}


def message(role: str, parts: list[Part]) -> Message:
    return {"role": role, "parts": parts}


def output_message_attributes(messages: list[Message] | None) -> dict[str, Any]:
    return {names.GEN_AI_OUTPUT_MESSAGES: to_json(messages)} if messages else {}


def assistant_message(text: str, finish_reason: object) -> Message:
    message: Message = {"role": "assistant", "parts": [text_part(text)]}
    if finish_reason:
        message["finish_reason"] = str(finish_reason)
    return message


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
