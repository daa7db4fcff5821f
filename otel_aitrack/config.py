"""Settings: `OTEL_AITRACK_*` environment variables, overridden by `instrument()` keyword arguments.

The two are told apart on purpose. A keyword is the application's own code: a wrong name, type or
range raises a `TypeError` / `ValueError` naming it, at `instrument()`. An environment value comes from
a deployment and must never crash the application (nor, under `opentelemetry-instrument`, leave it
uninstrumented): a bad one is logged once, as a warning naming the variable and the value, and the
default is used instead.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
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

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
_EXCEPTION_SIGNALS = {"", "logs", "logs/dup"}
_logger = logging.getLogger(__name__)

# `instrument(provider_names=...)`: a mapping, (host, name) pairs, or the environment variable's text.
ProviderNamesOption = Mapping[str, str] | Iterable[tuple[str, str]] | str

# `instrument()` keywords that are not settings: the providers, and BaseInstrumentor's own.
INSTRUMENTOR_KEYWORDS = frozenset(
    {"tracer_provider", "meter_provider", "logger_provider", "skip_dep_check", "raise_exception_on_conflict"}
)


@dataclass(frozen=True)
class ContentMode:
    """Where captured prompts and responses go: span attributes, an event (a log record), both, none.

    False when nothing is captured, so `if mode:` asks "is anything captured at all".
    """

    span: bool = False
    event: bool = False

    def __bool__(self) -> bool:
        return self.span or self.event


NO_CONTENT = ContentMode()
SPAN_ONLY = ContentMode(span=True)
# The values util-genai accepts, case-insensitive, and the true/false this project always took.
CONTENT_MODES = {
    "no_content": NO_CONTENT,
    "span_only": SPAN_ONLY,
    "event_only": ContentMode(event=True),
    "span_and_event": ContentMode(span=True, event=True),
    **dict.fromkeys(_TRUE, SPAN_ONLY),
    **dict.fromkeys(_FALSE, NO_CONTENT),
}


def content_mode(value: object, where: str) -> ContentMode:
    """A content mode from `True` / `False` or a mode's name; `TypeError` / `ValueError` naming `where`."""
    if isinstance(value, ContentMode):
        return value
    if isinstance(value, bool):
        return SPAN_ONLY if value else NO_CONTENT
    if not isinstance(value, str):
        raise TypeError(f"{where} takes True, False or a content mode's name, not {value!r}")
    mode = CONTENT_MODES.get(value.strip().lower())
    if mode is None:
        names = "NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT, true, false"
        raise ValueError(f"{where} is one of {names}, not {value!r}")
    return mode


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
    capture_content: ContentMode = NO_CONTENT
    exception_as_span_event: bool = True
    exception_as_log: bool = False


# The smallest value each length setting accepts: below it nothing useful fits (a traceback's header
# and exception line alone take about a hundred characters).
MINIMUMS = {
    "traceback_max_length": 256,
    "message_max_length": 16,
    "content_max_length": 16,
    "max_prompt_types": 1,
}
_ENV_OF = {
    "traceback_max_length": ENV_TRACEBACK_MAX_LENGTH,
    "message_max_length": ENV_MESSAGE_MAX_LENGTH,
    "content_max_length": ENV_CONTENT_MAX_LENGTH,
    "max_prompt_types": ENV_MAX_PROMPT_TYPES,
}
# Settings that are derived from the environment only, never given as keywords.
_NOT_KEYWORDS = frozenset({"exception_as_span_event", "exception_as_log"})
KEYWORDS = frozenset(f.name for f in fields(Settings)) - _NOT_KEYWORDS


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings from the environment (bad values warned about, defaults used), then from
    `instrument(**overrides)` (bad ones raised: see `check_keywords`)."""
    chosen = check_keywords(overrides or {})
    return replace(settings_from_environment(os.environ), **chosen)


def settings_from_environment(env: Mapping[str, str]) -> Settings:
    signal = _choice(env, ENV_EXCEPTION_SIGNAL, _EXCEPTION_SIGNALS, "")
    lengths = {name: _env_int(env, variable, name) for name, variable in _ENV_OF.items()}
    return Settings(
        **lengths,
        redact_patterns=env_patterns(env.get(ENV_REDACT_PATTERNS)),
        provider_names=parse_provider_names(env.get(ENV_PROVIDER_NAMES)),
        capture_content=_env_content_mode(env),
        exception_as_span_event=signal != "logs",
        exception_as_log=signal in {"logs", "logs/dup"},
    )


def check_keywords(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The settings among `instrument()`'s keywords, checked and normalised.

    Raises `TypeError` for an unknown keyword or a value of the wrong type, `ValueError` for a value out
    of range or a pattern that does not compile, each naming the keyword.
    """
    unknown = [key for key in kwargs if key not in KEYWORDS and key not in INSTRUMENTOR_KEYWORDS]
    if unknown:
        raise TypeError(_unknown_keyword_message(unknown[0]))
    chosen: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in MINIMUMS:
            chosen[key] = _checked_int(key, value)
        elif key == "capture_content":
            chosen[key] = content_mode(value, "instrument(capture_content=...)")
        elif key == "redact_patterns":
            chosen[key] = checked_patterns(value)
        elif key == "provider_names":
            chosen[key] = provider_name_pairs(value)
    return chosen


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


def env_patterns(value: str | None) -> tuple[str, ...]:
    """`OTEL_AITRACK_REDACT_PATTERNS`: the patterns that compile; the others warned about and left out
    (the built-in rules always apply)."""
    patterns = parse_patterns(value)
    bad = [pattern for pattern in patterns if _compile_error(pattern) is not None]
    if bad:
        _logger.warning(
            "otel-aitrack: %s=%r: %s not a valid regular expression (%s); ignored, the built-in "
            "redaction rules and the other patterns still apply",
            ENV_REDACT_PATTERNS,
            value,
            ", ".join(repr(pattern) for pattern in bad),
            "; ".join(str(_compile_error(pattern)) for pattern in bad),
        )
    return tuple(pattern for pattern in patterns if pattern not in bad)


def checked_patterns(value: object) -> tuple[str, ...]:
    """The `redact_patterns` keyword: one pattern or a sequence of them, each of which must compile."""
    patterns = (value,) if isinstance(value, str) else value
    if not isinstance(patterns, Sequence) or not all(isinstance(p, str) for p in patterns):
        raise TypeError(f"instrument(redact_patterns=...) takes a str or a list of str, not {value!r}")
    for pattern in patterns:
        error = _compile_error(pattern)
        if error is not None:
            raise ValueError(
                f"instrument(redact_patterns=...): {pattern!r} is not a valid regular expression: {error}"
            )
    return tuple(patterns)


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
    try:
        items = list(value.items() if isinstance(value, Mapping) else value)
        if not all(isinstance(host, str) and isinstance(name, str) for host, name in items):
            raise TypeError
    except (TypeError, ValueError):
        raise TypeError(
            "instrument(provider_names=...) takes a {host: name} mapping, (host, name) pairs or "
            f"'host=name,...' text, not {value!r}"
        ) from None
    return _clean_pairs(items)


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


def _checked_int(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"instrument({key}=...) takes an int, not {value!r}")
    if value < MINIMUMS[key]:
        raise ValueError(f"instrument({key}=...) must be at least {MINIMUMS[key]}, not {value}")
    return value


def _env_int(env: Mapping[str, str], variable: str, key: str) -> int:
    default: int = getattr(Settings, key)
    raw = env.get(variable)
    if raw is None or not raw.strip():
        return default
    try:
        number = int(raw)
    except ValueError:
        number = None
    if number is None or number < MINIMUMS[key]:
        _logger.warning(
            "otel-aitrack: %s=%r is not a whole number of at least %d; using the default, %d",
            variable,
            raw,
            MINIMUMS[key],
            default,
        )
        return default
    return number


def _env_content_mode(env: Mapping[str, str]) -> ContentMode:
    raw = env.get(ENV_CAPTURE_CONTENT)
    try:
        return content_mode(raw or "", ENV_CAPTURE_CONTENT)
    except ValueError:
        _logger.warning(
            "otel-aitrack: %s=%r is not NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT, true or false; "
            "using the default, NO_CONTENT",
            ENV_CAPTURE_CONTENT,
            raw,
        )
        return NO_CONTENT


def _choice(env: Mapping[str, str], variable: str, allowed: set[str], default: str) -> str:
    raw = env.get(variable)
    value = (raw or "").strip().lower()
    if value in allowed:
        return value
    _logger.warning(
        "otel-aitrack: %s=%r is not one of %s; using the default",
        variable,
        raw,
        ", ".join(repr(choice) for choice in sorted(allowed) if choice),
    )
    return default


def _compile_error(pattern: str) -> re.error | None:
    try:
        re.compile(pattern)
    except re.error as error:
        return error
    return None


def _unknown_keyword_message(key: str) -> str:
    known = sorted(KEYWORDS | INSTRUMENTOR_KEYWORDS)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; it takes {', '.join(known)}"
    return f"instrument() got an unexpected keyword argument {key!r}{hint}"
