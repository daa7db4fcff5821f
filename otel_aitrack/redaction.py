"""Secret redaction and length bounds, applied to every string before it is exported or kept."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"

# Provider API keys: OpenAI (`sk-…`, `sk-proj-…`, `sk-svcacct-…`) and Anthropic (`sk-ant-…`).
_PROVIDER_KEY = r"\bsk-[A-Za-z0-9_\-]{8,}"
# `Authorization: Bearer <token>` and bare `Bearer <token>`.
_BEARER = r"(?i)(?<=\bbearer )[A-Za-z0-9._~+/\-]{6,}=*"
# Query-string and key=value style secrets: `?api_key=…`, `&access_token=…`, `key: "…"`.
_KEY_VALUE = (
    r"(?i)(?<![A-Za-z0-9_])((?:api[_-]?key|x-api-key|access[_-]?token|refresh[_-]?token|client[_-]?secret"
    r"|secret|password|passwd|token|key|sig|signature)[\"']?\s*[=:]\s*[\"']?)([^\s&\"',;}]{4,})"
)
_BUILTIN = (re.compile(_PROVIDER_KEY), re.compile(_BEARER))
_KEY_VALUE_RE = re.compile(_KEY_VALUE)


class Redactor:
    """Masks secrets in text; the built-in patterns plus the user's own."""

    def __init__(self, extra_patterns: Iterable[str] = ()) -> None:
        self._patterns = _BUILTIN + tuple(re.compile(pattern) for pattern in extra_patterns)

    def redact(self, text: str) -> str:
        for pattern in self._patterns:
            text = pattern.sub(REDACTED, text)
        return _KEY_VALUE_RE.sub(_keep_key, text)

    def clean(self, text: str, max_length: int) -> str:
        """Redact, then bound: what every exported string goes through."""
        return bound(self.redact(text), max_length)


def _keep_key(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED


def bound(text: str, max_length: int) -> str:
    """Keep the head and the tail of an over-long text, marking what was cut in the middle."""
    if len(text) <= max_length:
        return text
    marker = f"\n[... {len(text) - max_length} characters omitted by otel-aitrack ...]\n"
    keep = max(max_length - len(marker), 0)
    head = keep // 2
    return text[:head] + marker + text[len(text) - (keep - head) :]
