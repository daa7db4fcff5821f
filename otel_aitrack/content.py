"""Captured prompts and responses of one call: on its span, as the GenAI conventions' event, or both.

Off unless asked for (`ContentMode`). Every text is redacted and bounded before it is kept. On the span
the messages are the conventions' JSON text; in the event (`gen_ai.client.inference.operation.details`,
emitted through the logger provider when the call ends) they are the same JSON as structured values,
unless bounding cut them (then the bounded text itself).
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry._logs import LogRecord
from opentelemetry.context import Context

from . import names
from .config import ContentMode
from .redaction import Redactor

_MESSAGE_KEYS = (names.GEN_AI_INPUT_MESSAGES, names.GEN_AI_SYSTEM_INSTRUCTIONS, names.GEN_AI_OUTPUT_MESSAGES)


class CapturedContent:
    """The content of one call, cleaned once, for the span and the event alike."""

    __slots__ = ("_kept", "_limit", "_redactor", "mode")

    def __init__(self, mode: ContentMode, redactor: Redactor, limit: int) -> None:
        self.mode = mode
        self._redactor = redactor
        self._limit = limit
        self._kept: dict[str, str] = {}

    def take(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """Clean and keep message attributes; what goes on the span (nothing in EVENT_ONLY)."""
        clean = {key: self._redactor.clean(str(value), self._limit) for key, value in attributes.items()}
        self._kept.update(clean)
        return clean if self.mode.span else {}

    def event(self, context: Context | None, attributes: dict[str, Any]) -> LogRecord | None:
        """The inference details event of the ended call (`attributes`: the call's), if asked for."""
        if not self.mode.event:
            return None
        body = dict(attributes)
        for key in _MESSAGE_KEYS:
            if key in self._kept:
                body[key] = _structured(self._kept[key])
        return LogRecord(context=context, attributes=body, event_name=names.EVENT_INFERENCE_DETAILS)


def _structured(text: str) -> Any:
    """The conventions' JSON as a value; the text itself when bounding cut it (no longer JSON)."""
    try:
        return json.loads(text)
    except ValueError:
        return text
