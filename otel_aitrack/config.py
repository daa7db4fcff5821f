"""Settings: `OTEL_AITRACK_*` environment variables, overridden by `instrument()` keyword arguments."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

ENV_TRACEBACK_MAX_LENGTH = "OTEL_AITRACK_TRACEBACK_MAX_LENGTH"
ENV_MESSAGE_MAX_LENGTH = "OTEL_AITRACK_MESSAGE_MAX_LENGTH"
ENV_CONTENT_MAX_LENGTH = "OTEL_AITRACK_CONTENT_MAX_LENGTH"
ENV_REDACT_PATTERNS = "OTEL_AITRACK_REDACT_PATTERNS"
ENV_MAX_PROMPT_TYPES = "OTEL_AITRACK_MAX_PROMPT_TYPES"
ENV_PROVIDER_NAMES = "OTEL_AITRACK_PROVIDER_NAMES"
ENV_STRICT = "OTEL_AITRACK_STRICT"
ENV_CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENV_EXCEPTION_SIGNAL = "OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN"

_TRUE = {"1", "true", "yes", "on", "span_only", "span_and_event", "event_only"}
_logger = logging.getLogger(__name__)

# `instrument(provider_names=...)`: a mapping, (host, name) pairs, or the environment variable's text.
ProviderNamesOption = Mapping[str, str] | Iterable[tuple[str, str]] | str


@dataclass(frozen=True)
class Settings:
    """What the instrumentation may record and how much of it."""

    traceback_max_length: int = 8192
    message_max_length: int = 1024
    content_max_length: int = 16384
    redact_patterns: tuple[str, ...] = ()
    max_prompt_types: int = 100
    # gen_ai.provider.name of openai-SDK calls by server: (host key, name) pairs in the order given.
    # A host key is `host`, `host:port` or a `*` pattern (`*.lan`); see providers/compatible.py.
    provider_names: tuple[tuple[str, str], ...] = ()
    capture_content: bool = False
    exception_as_span_event: bool = True
    exception_as_log: bool = False


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings from the environment, then from `instrument(**overrides)`."""
    env = os.environ
    signal = env.get(ENV_EXCEPTION_SIGNAL, "").strip().lower()
    settings = Settings(
        traceback_max_length=_int(env.get(ENV_TRACEBACK_MAX_LENGTH), Settings.traceback_max_length),
        message_max_length=_int(env.get(ENV_MESSAGE_MAX_LENGTH), Settings.message_max_length),
        content_max_length=_int(env.get(ENV_CONTENT_MAX_LENGTH), Settings.content_max_length),
        redact_patterns=parse_patterns(env.get(ENV_REDACT_PATTERNS)),
        max_prompt_types=_int(env.get(ENV_MAX_PROMPT_TYPES), Settings.max_prompt_types),
        provider_names=parse_provider_names(env.get(ENV_PROVIDER_NAMES)),
        capture_content=is_true(env.get(ENV_CAPTURE_CONTENT)),
        exception_as_span_event=signal != "logs",
        exception_as_log=signal in {"logs", "logs/dup"},
    )
    # Keywords that are not settings (tracer_provider, …) are the instrumentor's, not ours.
    chosen = {key: value for key, value in (overrides or {}).items() if key in Settings.__dataclass_fields__}
    if "redact_patterns" in chosen:
        chosen["redact_patterns"] = tuple(_as_sequence(chosen["redact_patterns"]))
    if "provider_names" in chosen:
        chosen["provider_names"] = provider_name_pairs(chosen["provider_names"])
    return replace(settings, **chosen)


def is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


def parse_patterns(value: str | None) -> tuple[str, ...]:
    """A JSON array of regular expressions, or one bare regular expression."""
    if not value or not value.strip():
        return ()
    try:
        parsed = json.loads(value)
    except ValueError:
        return (value,)
    if isinstance(parsed, list):
        return tuple(str(item) for item in parsed)
    return (value,)


def parse_provider_names(value: str | None) -> tuple[tuple[str, str], ...]:
    """`llm.internal:8000=vllm,ollama.lan=ollama`: comma-separated `host=name` entries."""
    pairs = []
    for entry in (value or "").split(","):
        host, equals, name = entry.partition("=")
        if entry.strip() and not equals:
            _logger.warning("otel-aitrack: %s entry %r is not host=name; ignored", ENV_PROVIDER_NAMES, entry)
            continue
        pairs.append((host, name))
    return _clean_pairs(pairs)


def provider_name_pairs(value: ProviderNamesOption | None) -> tuple[tuple[str, str], ...]:
    """The `provider_names` keyword in any of its accepted shapes, as clean (host, name) pairs."""
    if value is None:
        return ()
    if isinstance(value, str):
        return parse_provider_names(value)
    items = value.items() if isinstance(value, Mapping) else value
    return _clean_pairs((str(host), str(name)) for host, name in items)


def _clean_pairs(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Hosts lower-cased (host names are case-insensitive), names kept as written; empty halves dropped."""
    clean = []
    for raw_host, raw_name in pairs:
        host, name = raw_host.strip().lower(), raw_name.strip()
        if host and name:
            clean.append((host, name))
        elif host or name:
            _logger.warning("otel-aitrack: provider name entry %r=%r is incomplete; ignored", host, name)
    return tuple(clean)


def _as_sequence(value: str | Sequence[str]) -> Sequence[str]:
    return (value,) if isinstance(value, str) else value


def _int(value: str | None, default: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return number if number > 0 else default
