"""Secret redaction and length bounds, applied to every string before it is exported or kept."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"

# Redaction runs on every failure and must cost microseconds: each scan starts from a literal found by
# `str.find` (a regex alternation would be tried at every position), and word boundaries are checked
# in Python on the few candidates only.
# Provider API keys: OpenAI (`sk-…`, `sk-proj-…`, `sk-svcacct-…`) and Anthropic (`sk-ant-…`).
_PROVIDER_KEY = re.compile(r"sk-[A-Za-z0-9_\-]{8,}")
# Google API keys (Gemini, Vertex AI express mode): `AIza` and 35 more characters.
_GOOGLE_KEY = re.compile(r"AIza[0-9A-Za-z_\-]{35,}")
# AWS access key ids, long-term (`AKIA…`) and temporary (`ASIA…`): AWS errors echo them in the
# Authorization header they quote (`Credential=AKIA…/20261202/us-east-1/bedrock/aws4_request`).
_AWS_KEY_ID = re.compile(r"A[KS]IA[0-9A-Z]{16}")
# Matched on the lower-cased text: `Bearer <token>`, and `<name>=<value>` / `"<name>": "<value>"`
# where the name ends in one of these words (`api_key`, `access_token`, `client_secret`, …).
_BEARER = re.compile(r"bearer\s+([a-z0-9._~+/\-]{6,}=*)")
_KEY_VALUE = re.compile(
    r"(?:key|token|secret|passw(?:or)?d|sig(?:nature)?)[\"']?\s*[=:]\s*[\"']?([^\s&\"',;}]{4,})"
)
_KEY_WORDS = ("key", "token", "secret", "passw", "sig")
_NAME_PREFIXES = (
    *("x-api-", "x-goog-api-", "refresh_", "refresh-", "access_", "access-", "client_", "client-"),
    # AWS: the session token header a quoted canonical request shows, and the credentials' own names.
    *("x-amz-security-", "aws_secret_access_", "aws_session_", "secret_access_", "session_"),
    *("api_", "api-", "api", ""),
)
_WORD = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


class Redactor:
    """Masks secrets in text; the built-in patterns plus the user's own."""

    def __init__(self, extra_patterns: Iterable[str] = ()) -> None:
        self._extra = tuple(re.compile(pattern) for pattern in extra_patterns)

    def redact(self, text: str) -> str:
        if "sk-" in text:
            text = _PROVIDER_KEY.sub(_key_unless_inside_word, text)
        if "AIza" in text:
            text = _GOOGLE_KEY.sub(_key_unless_inside_word, text)
        if "AKIA" in text or "ASIA" in text:
            text = _AWS_KEY_ID.sub(_key_unless_inside_word, text)
        lower = text.lower()
        if len(lower) == len(text):  # positions in `lower` are positions in `text`
            text = _replace_spans(text, _secret_spans(lower))
        else:  # pragma: no cover - a character whose lower case is longer (e.g. "İ")
            text = _replace_spans(text, _secret_spans(text))
        for pattern in self._extra:
            text = pattern.sub(REDACTED, text)
        return text

    def clean(self, text: str, max_length: int) -> str:
        """Redact, then bound: what every exported string goes through."""
        return bound(self.redact(text), max_length)


def _key_unless_inside_word(match: re.Match[str]) -> str:
    start = match.start()
    inside = start > 0 and (match.string[start - 1].isalnum() or match.string[start - 1] == "_")
    return match.group(0) if inside else REDACTED


def _secret_spans(lower: str) -> list[tuple[int, int]]:
    """Where secret values stand in `lower` (bearer tokens, values of secret-named keys)."""
    spans = [m.span(1) for m in _BEARER.finditer(lower) if not _inside_word(lower, m.start())]
    for word in _KEY_WORDS:
        index = lower.find(word)
        while index != -1:
            match = _KEY_VALUE.match(lower, index)
            if match and _named_secret(lower, index):
                spans.append(match.span(1))
            index = lower.find(word, index + 1)
    return spans


def _named_secret(lower: str, index: int) -> bool:
    """The identifier ending in the secret word at `index` is a secret's name (`api_key`, not `monkey`)."""
    return any(
        lower.endswith(prefix, 0, index) and not _inside_word(lower, index - len(prefix))
        for prefix in _NAME_PREFIXES
    )


def _inside_word(text: str, index: int) -> bool:
    return index > 0 and text[index - 1] in _WORD


def _replace_spans(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    out, last = [], 0
    for start, end in sorted(spans):
        if start >= last:
            out.append(text[last:start])
            out.append(REDACTED)
            last = end
    out.append(text[last:])
    return "".join(out)


def bound(text: str, max_length: int) -> str:
    """Keep the head and the tail of an over-long text, marking what was cut in the middle."""
    if len(text) <= max_length:
        return text
    marker = f"\n[... {len(text) - max_length} characters omitted by otel-aitrack ...]\n"
    keep = max(max_length - len(marker), 0)
    head = keep // 2
    return text[:head] + marker + text[len(text) - (keep - head) :]
