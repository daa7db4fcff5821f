"""Read-only clients of the stack's backends over their HTTP APIs (standard library only).

Prometheus: `GET /api/v1/query` (instant queries). Tempo: `GET /api/search` with a TraceQL `q`, `start`
and `end` in unix seconds, `limit` and `spss`; its answer lists `traces[].spanSets[].spans[]`, each span
with its selected `attributes` as OTLP JSON key/values (Tempo before 2.2: a single `spanSet`).
Every failure becomes a `BackendError` whose text is one line for the user.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from ..version import __version__

TIMEOUT_SECONDS = 15.0


class BackendError(Exception):
    """A backend could not be asked or did not answer as expected; `str()` is one line for the user."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector."""

    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class TempoSpan:
    """One span of a TraceQL search result, with the attributes the query selected."""

    trace_id: str
    span_id: str
    start_unix_nano: int
    attributes: dict[str, Any]


def get_json(base_url: str, path: str, params: dict[str, str], backend: str) -> Any:
    url = f"{base_url}{path}?{urllib.parse.urlencode(params)}"
    headers = {"Accept": "application/json", "User-Agent": f"otel-aitrack/{__version__}"}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=TIMEOUT_SECONDS
        ) as answer:
            body = answer.read()
    except urllib.error.HTTPError as error:
        raise BackendError(f"{backend} at {base_url} answered HTTP {error.code}: {_detail(error)}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise BackendError(f"cannot reach {backend} at {base_url}: {reason}") from None
    try:
        return json.loads(body)
    except ValueError:
        raise BackendError(f"{backend} at {base_url} did not answer JSON: is it {backend}?") from None


class Prometheus:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def instant(self, expr: str, at: float) -> list[Sample]:
        """The instant vector of `expr` at unix time `at`."""
        body = get_json(self.base_url, "/api/v1/query", {"query": expr, "time": f"{at:.3f}"}, "Prometheus")
        if not isinstance(body, dict) or body.get("status") != "success":
            raise BackendError(f"Prometheus at {self.base_url} did not answer the query: {_one_line(body)}")
        data = body.get("data") or {}
        if data.get("resultType") != "vector":
            raise BackendError(
                f"Prometheus at {self.base_url} answered a {data.get('resultType')}, not a vector"
            )
        try:
            return [Sample(dict(s["metric"]), float(s["value"][1])) for s in data.get("result", [])]
        except (KeyError, IndexError, TypeError, ValueError):
            raise BackendError(f"Prometheus at {self.base_url} answered an unexpected vector") from None


class Tempo:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def search(self, traceql: str, start: float, end: float, limit: int) -> list[TempoSpan]:
        """The spans matching `traceql` in [start, end], latest first, at most `limit`."""
        params = {"q": traceql, "start": str(int(start)), "end": str(int(end) + 1), "limit": str(limit)}
        body = get_json(self.base_url, "/api/search", {**params, "spss": str(limit)}, "Tempo")
        if not isinstance(body, dict) or not isinstance(body.get("traces", []), list):
            raise BackendError(f"Tempo at {self.base_url} did not answer a search result: {_one_line(body)}")
        try:
            spans = [span for trace in body.get("traces") or [] for span in _spans_of(trace)]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise BackendError(f"Tempo at {self.base_url} answered an unexpected search result") from None
        return sorted(spans, key=lambda s: s.start_unix_nano, reverse=True)[:limit]


def _spans_of(trace: dict[str, Any]) -> list[TempoSpan]:
    span_sets = trace.get("spanSets") or ([trace["spanSet"]] if trace.get("spanSet") else [])
    seen: dict[str, TempoSpan] = {}
    for span_set in span_sets:
        for span in span_set.get("spans") or []:
            attributes = {kv["key"]: _value(kv.get("value") or {}) for kv in span.get("attributes") or []}
            found = TempoSpan(
                trace_id=str(trace.get("traceID", "")),
                span_id=str(span.get("spanID", "")),
                start_unix_nano=int(span.get("startTimeUnixNano") or trace.get("startTimeUnixNano") or 0),
                attributes=attributes,
            )
            seen[found.span_id] = found  # one span can match in several span sets
    return list(seen.values())


def _value(value: dict[str, Any]) -> Any:
    """An OTLP JSON AnyValue; int64 values come as strings in protobuf JSON."""
    if "intValue" in value:
        return int(value["intValue"])
    for key in ("stringValue", "doubleValue", "boolValue"):
        if key in value:
            return value[key]
    return None


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        text = error.read().decode("utf-8", "replace")
    except OSError:
        return str(error.reason)
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict) and "error" in parsed:
            text = str(parsed["error"])
    except ValueError:
        pass
    return _one_line(text) or str(error.reason)


def _one_line(value: object, limit: int = 300) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
