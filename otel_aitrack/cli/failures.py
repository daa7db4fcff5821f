"""`otel-aitrack failures`: the incident view, from the stack's Prometheus and (optionally) Tempo.

Prompt types ranked by failure rate and failed calls over the window, with their consecutive
failures, last error code, top failure category and last failure time: the dashboard's table, from the
same PromQL (otel_aitrack/stack/promql.py, the single source of the stack's queries). With `--tempo`,
the latest failed calls of each failing prompt type, from a TraceQL search: their failure groups (by
`aitrack.error.fingerprint`: count, first and last seen), then each call's error code, HTTP status,
request id, message, and with `--traceback` the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from datetime import datetime, timezone

from rich.console import Console
from rich.text import Text

from .. import names
from ..stack import promql
from .backends import BackendError, Prometheus, Sample, Tempo, TempoSpan
from .options import Window
from .view import (
    FailureRow,
    GroupRow,
    clock_time,
    failure_table,
    first_line,
    groups_table,
    make_console,
    ranked,
    traceback_body,
)

# Latest failed calls are looked up for this many failing prompt types at most, worst first.
MAX_PROMPT_TYPES_IN_TEMPO = 10
MESSAGE_WIDTH = 200
# Failed calls of a prompt type read from Tempo to group them by fingerprint (the latest ones).
GROUPED_CALLS = 200

TEMPO_COLUMNS = (
    names.ERROR_TYPE,
    names.HTTP_RESPONSE_STATUS_CODE,
    names.AITRACK_REQUEST_ID,
    names.AITRACK_ERROR_MESSAGE,
    names.AITRACK_ERROR_FINGERPRINT,
)


def main(args: argparse.Namespace) -> int:
    console = make_console()
    since: Window = args.since
    now = time.time()
    scope = f" of prompt type {args.prompt_type}" if args.prompt_type else ""
    try:
        rows = failure_rows(Prometheus(args.prometheus), since, args.prompt_type, now)
    except BackendError as error:
        return _fail(error)
    if not rows:
        console.print(f"No AI calls{scope} in the last {since.text} (Prometheus at {args.prometheus}).")
        return 0
    title = f"AI calls{scope} in the last {since.text}, worst first (Prometheus at {args.prometheus})"
    console.print(failure_table(rows, title=title))
    failing = [row.prompt_type for row in ranked(rows) if round(row.failed) > 0]
    if not failing:
        console.print(f"No failed calls in the last {since.text}.")
        return 0
    if not args.tempo:
        console.print("Add --tempo URL for the latest failed calls: error, HTTP status, request id, message.")
        return 0
    tempo = Tempo(args.tempo)
    for prompt_type in list(dict.fromkeys(failing))[:MAX_PROMPT_TYPES_IN_TEMPO]:
        query = failed_calls_traceql(prompt_type, args.traceback)
        try:
            spans = tempo.search(query, now - since.seconds, now, max(args.limit, GROUPED_CALLS))
        except BackendError as error:
            return _fail(error)
        _print_groups(console, prompt_type, spans, args)
        _print_failed_calls(console, prompt_type, spans[: args.limit], args, since)
    return 0


# --- Prometheus --------------------------------------------------------------------------------
def failure_rows(
    prometheus: Prometheus, since: Window, prompt_type: str | None, now: float
) -> list[FailureRow]:
    """One row per service and prompt type with calls in the window."""
    f = prompt_filters(prompt_type)
    calls = _by_prompt(prometheus.instant(promql.calls(f, since.text), now))
    failed = _by_prompt(prometheus.instant(promql.failed_calls(f, since.text), now))
    consecutive = _by_prompt(prometheus.instant(promql.consecutive_failures(f), now))
    last_failure_ms = _by_prompt(prometheus.instant(promql.last_failure_time_ms(f), now))
    last_error = _label_by_prompt(prometheus.instant(promql.last_error_type(f), now), promql.ERROR_TYPE)
    categories = prometheus.instant(promql.top_category(f, since.text), now)
    top_category = _label_by_prompt(categories, promql.CATEGORY)
    return [
        FailureRow(
            prompt_type=prompt,
            service=service or None,
            calls=count,
            failed=failed.get((service, prompt), 0.0),
            consecutive_failures=round(consecutive.get((service, prompt), 0.0)),
            last_error_code=last_error.get((service, prompt)),
            top_category=top_category.get((service, prompt)),
            last_failed_at=_from_ms(last_failure_ms.get((service, prompt))),
        )
        for (service, prompt), count in calls.items()
        if round(count) > 0
    ]


def prompt_filters(prompt_type: str | None) -> promql.Filters:
    if not prompt_type:
        return promql.ALERTS
    matcher = f"{promql.PROMPT}={_quoted(prompt_type)}"
    return promql.Filters(calls=(matcher,), prompt=(matcher,))


def _by_prompt(samples: list[Sample]) -> dict[tuple[str, str], float]:
    return {_key(s): s.value for s in samples}


def _label_by_prompt(samples: list[Sample], label: str) -> dict[tuple[str, str], str | None]:
    return {_key(s): s.labels.get(label) for s in samples}


def _key(sample: Sample) -> tuple[str, str]:
    return sample.labels.get(promql.SERVICE, ""), sample.labels.get(promql.PROMPT, "")


def _from_ms(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc) if value else None


# --- Tempo -------------------------------------------------------------------------------------
def failed_calls_traceql(prompt_type: str, with_traceback: bool) -> str:
    columns = (*TEMPO_COLUMNS, names.AITRACK_ERROR_TRACEBACK) if with_traceback else TEMPO_COLUMNS
    selected = ", ".join(f"span.{column}" for column in columns)
    condition = f"status = error && span.{names.GEN_AI_PROMPT_NAME} = {_quoted(prompt_type)}"
    return f"{{ {condition} }} | select({selected})"


def failure_groups(prompt_type: str, spans: list[TempoSpan]) -> list[GroupRow]:
    """The spans' failure groups: one per fingerprint, with its count and first and last seen."""
    groups: dict[str, list[TempoSpan]] = {}
    for span in spans:
        fingerprint = span.attributes.get(names.AITRACK_ERROR_FINGERPRINT)
        groups.setdefault(str(fingerprint or "—"), []).append(span)
    rows = []
    for fingerprint, members in groups.items():
        latest = max(members, key=lambda span: span.start_unix_nano)
        rows.append(
            GroupRow(
                prompt_type=prompt_type,
                fingerprint=fingerprint,
                error_code=_text(latest.attributes.get(names.ERROR_TYPE)),
                count=len(members),
                first_seen=_from_ns(min(span.start_unix_nano for span in members)),
                last_seen=_from_ns(latest.start_unix_nano),
                last_message=_text(latest.attributes.get(names.AITRACK_ERROR_MESSAGE)),
            )
        )
    return rows


def _print_groups(
    console: Console, prompt_type: str, spans: list[TempoSpan], args: argparse.Namespace
) -> None:
    table = groups_table(
        failure_groups(prompt_type, spans),
        f"Failure groups of {prompt_type} in its {len(spans)} latest failed calls (Tempo at {args.tempo})",
    )
    if table is not None:
        console.print()
        console.print(table)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _print_failed_calls(
    console: Console, prompt_type: str, spans: list[TempoSpan], args: argparse.Namespace, since: Window
) -> None:
    """One entry per call: a line of identifiers (never folded, to copy them whole), then the message."""
    console.print()
    if not spans:
        console.print(
            f"Tempo at {args.tempo} has no failed call of {prompt_type} in the last {since.text} "
            "(not flushed yet, or sampled out).",
            markup=False,
        )
        return
    console.print(Text(f"Latest failed calls of {prompt_type} (Tempo at {args.tempo})", style="bold"))
    for span in spans:
        a = span.attributes
        status = a.get(names.HTTP_RESPONSE_STATUS_CODE)
        request_id = a.get(names.AITRACK_REQUEST_ID)
        fields = [
            clock_time(_from_ns(span.start_unix_nano)),
            str(a.get(names.ERROR_TYPE) or "unknown error"),
            *([f"HTTP {status}"] if status else []),
            *([f"request {request_id}"] if request_id else []),
            f"trace {span.trace_id}",
        ]
        console.print(Text("  " + "  ".join(fields)))
        console.print(Text("    " + first_line(a.get(names.AITRACK_ERROR_MESSAGE), MESSAGE_WIDTH)))
        traceback = a.get(names.AITRACK_ERROR_TRACEBACK) if args.traceback else None
        if traceback:
            console.print(traceback_body(textwrap.indent(str(traceback), "    "), console))
            console.print()


def _from_ns(value: int) -> datetime | None:
    return datetime.fromtimestamp(value / 1e9, tz=timezone.utc) if value else None


def _quoted(value: str) -> str:
    # A double-quoted string with backslash escapes reads the same in PromQL and in TraceQL.
    return json.dumps(value)


def _fail(error: BackendError) -> int:
    print(f"otel-aitrack failures: {error}", file=sys.stderr)
    return 1
