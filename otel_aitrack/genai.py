"""Provider-neutral GenAI semantic-convention shapes: token attributes and captured messages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

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


def output_message_attributes(messages: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {names.GEN_AI_OUTPUT_MESSAGES: to_json(messages)} if messages else {}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "content": text}


def assistant_message(text: str, finish_reason: object) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "parts": [text_part(text)]}
    if finish_reason:
        message["finish_reason"] = str(finish_reason)
    return message


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
