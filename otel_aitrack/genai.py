"""Provider-neutral GenAI semantic-convention shapes: token attributes and captured messages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from . import names


def token_attributes(tokens: Mapping[str, int]) -> dict[str, Any]:
    """`gen_ai.usage.*` from `{"input": n, "output": m}`."""
    attributes: dict[str, Any] = {}
    if "input" in tokens:
        attributes[names.GEN_AI_USAGE_INPUT_TOKENS] = tokens["input"]
    if "output" in tokens:
        attributes[names.GEN_AI_USAGE_OUTPUT_TOKENS] = tokens["output"]
    return attributes


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
