"""Argument types of the `otel-aitrack` subcommands: each turns one string into a value or says why not.

argparse turns their `ArgumentTypeError` into a usage message and exit code 2.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

# PromQL's duration syntax (also what Tempo's time range is computed from): 15m, 1h30m, 2d.
_DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_PROMPT_TYPE = re.compile(r"[A-Za-z0-9_.:/-]+")

MAX_CALLS_PER_SECOND = 200.0
# The demo's built-in prompt types, by the role `--failure-mix` may call them, and its default mix.
DEMO_ROLES = {"healthy": "summarize_ticket", "flaky": "classify_email", "broken": "extract_invoice"}
DEMO_FAILURE_MIX = "summarize_ticket=0,classify_email=0.4,extract_invoice=1"
# `failures --since` by default: the window of the dashboard's table and of the alerts (promql.WINDOW).
INCIDENT_WINDOW = "15m"


@dataclass(frozen=True)
class Window:
    """A look-back window: its PromQL spelling and its length in seconds."""

    text: str
    seconds: float


def window(text: str) -> Window:
    """`--since`: a PromQL duration such as `15m`, `2h` or `1h30m`."""
    text = text.strip()
    if not _DURATION.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: use e.g. 30s, 15m, 2h, 1h30m, 7d")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is an empty window")
    return Window(text, seconds)


def seconds(text: str) -> float:
    """`--duration`: seconds, 0 or more (0 = until Ctrl-C)."""
    value = _number(text, "seconds")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the duration cannot be negative (0 runs until Ctrl-C)")
    return value


def calls_per_second(text: str) -> float:
    """`--rate`: calls per second, above 0 and at most MAX_CALLS_PER_SECOND."""
    value = _number(text, "calls per second")
    if not 0 < value <= MAX_CALLS_PER_SECOND:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the rate must be above 0 and at most {MAX_CALLS_PER_SECOND:g}"
        )
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be 1 or more")
    return value


def http_url(text: str) -> str:
    """`--prometheus`, `--tempo`: an http(s) base URL, without a query."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) base URL, e.g. http://localhost:9090")
    return text.strip().rstrip("/")


def prompt_type(text: str) -> str:
    if not _PROMPT_TYPE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a prompt type name (letters, digits and _ . : / - only)"
        )
    return text


def failure_mix(text: str, aliases: dict[str, str]) -> dict[str, float]:
    """`--failure-mix`: `NAME=P,...`, P a probability (0.4) or a percentage (40%); names may be aliases."""
    mix: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, equals, value = item.partition("=")
        name = aliases.get(name.strip(), name.strip())
        if not equals or not name:
            raise argparse.ArgumentTypeError(f"{item!r}: expected NAME=PROBABILITY, e.g. classify_email=0.4")
        prompt_type(name)
        if name in mix:
            raise argparse.ArgumentTypeError(f"{name!r} appears twice in the failure mix")
        mix[name] = _probability(value.strip())
    if not mix:
        raise argparse.ArgumentTypeError("the failure mix is empty: give at least one NAME=PROBABILITY")
    return mix


def _probability(text: str) -> float:
    percent = text.endswith("%")
    value = _number(text.removesuffix("%"), "probability") / (100 if percent else 1)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a failure probability is between 0 and 1 (or 0% and 100%)"
        )
    return value


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of {what}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of {what}")
    return value
