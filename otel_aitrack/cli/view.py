"""The failure table of the `otel-aitrack` command: one rendering for `demo`, `run` and `failures`.

The colours follow the dashboard and the alert rules (otel_aitrack/stack/promql.py; a test keeps them
equal): the failure rate is orange above 20 % and red above 50 %, and 3 consecutive failures get a ⚠.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console, Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from ..book import FailureGroup, PromptStats

WARNING_PERCENT = 20.0
CRITICAL_PERCENT = 50.0
CONSECUTIVE_FAILURES_WARNING = 3

_WARNING_STYLE = "bold dark_orange"
_CRITICAL_STYLE = "bold red"
_NONE = "—"


@dataclass(frozen=True)
class FailureRow:
    """One prompt type's figures, from this process (`stats()`) or from Prometheus over a window."""

    prompt_type: str
    calls: float
    failed: float
    consecutive_failures: int = 0
    last_error_code: str | None = None
    last_failed_at: datetime | None = None
    service: str | None = None
    top_category: str | None = None  # aitrack.error.category with the most failed calls

    @property
    def failure_rate(self) -> float:
        """Failed calls as a percentage of all calls."""
        return 100.0 * self.failed / self.calls if self.calls else 0.0

    @classmethod
    def from_stats(cls, stats: PromptStats) -> FailureRow:
        return cls(
            prompt_type=stats.prompt_type,
            calls=stats.total_calls,
            failed=stats.total_failed_calls,
            consecutive_failures=stats.consecutive_failures,
            last_error_code=stats.last_error_code,
            last_failed_at=stats.last_failed_at,
            top_category=top_category(stats.failure_groups),
        )


def top_category(groups: Iterable[FailureGroup]) -> str | None:
    """The category with the most failed calls among a prompt type's failure groups (None: none failed);
    a tie goes to the category that failed last."""
    counts: dict[str, tuple[int, datetime]] = {}
    for group in groups:
        if group.category:
            count, last = counts.get(group.category, (0, group.last_seen))
            counts[group.category] = (count + group.count, max(last, group.last_seen))
    return max(counts, key=counts.__getitem__) if counts else None


@dataclass(frozen=True)
class GroupRow:
    """One failure group (one fingerprint) of a prompt type: from `stats()` or from the trace store."""

    prompt_type: str
    fingerprint: str
    error_code: str | None
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    last_message: str | None = None
    provider_code: str | None = None

    @classmethod
    def all_from_stats(cls, stats: Iterable[PromptStats]) -> list[GroupRow]:
        return [
            cls(
                prompt_type=s.prompt_type,
                fingerprint=group.fingerprint,
                error_code=group.error_code,
                count=group.count,
                first_seen=group.first_seen,
                last_seen=group.last_seen,
                last_message=group.last_message,
                provider_code=group.provider_code,
            )
            for s in stats
            for group in s.failure_groups
        ]


def groups_table(rows: Iterable[GroupRow], title: str, limit: int = 10) -> RenderableType | None:
    """The top failure groups, most failed calls first (None when nothing failed): which kinds of
    failure, from where in the code, since when."""
    top = sorted(rows, key=lambda r: (-r.count, -(r.last_seen or datetime.min).timestamp()))[:limit]
    if not top:
        return None
    table = Table(header_style="bold", expand=False)
    table.add_column("fingerprint", no_wrap=True)
    table.add_column("prompt type", overflow="fold")
    table.add_column("error", no_wrap=True)  # identifiers: never folded, so they copy whole
    table.add_column("failed", justify="right")
    table.add_column("first seen")
    table.add_column("last seen")
    table.add_column("last message", overflow="fold", max_width=60)
    for row in top:
        error = row.error_code or _NONE
        if row.provider_code:
            error = f"{error} ({row.provider_code})"
        table.add_row(
            row.fingerprint,
            row.prompt_type,
            error,
            str(row.count),
            clock_time(row.first_seen),
            clock_time(row.last_seen),
            first_line(row.last_message, 80),
        )
    return Group(Text(title, style="italic"), table)


def first_line(message: object, width: int = 200) -> str:
    """A message's first line, at most `width` characters."""
    text = (str(message or "").strip().splitlines() or [_NONE])[0]
    return text if len(text) <= width else text[: width - 1] + "…"


def ranked(rows: Iterable[FailureRow]) -> list[FailureRow]:
    """Worst first: by failure rate, then failed calls, then calls."""
    return sorted(rows, key=lambda r: (-r.failure_rate, -r.failed, -r.calls, r.service or "", r.prompt_type))


def failure_table(rows: Iterable[FailureRow], title: str | None = None) -> RenderableType:
    """The list view: prompt type, calls, failed, failure rate, consecutive failures, last error, top
    category, last failure, worst first, under its title."""
    rows = ranked(rows)
    with_service = any(row.service for row in rows)
    table = Table(header_style="bold", expand=False)
    if with_service:
        table.add_column("service", no_wrap=True)  # identifiers: never folded, so they copy whole
    table.add_column("prompt type", no_wrap=True)
    table.add_column("calls", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("failure rate", justify="right")
    table.add_column("consecutive", justify="right")
    table.add_column("last error", no_wrap=True)
    table.add_column("top category", no_wrap=True)
    table.add_column("last failure")
    for row in rows:
        cells: list[str | Text] = [row.service or _NONE] if with_service else []
        cells += [
            row.prompt_type,
            _count(row.calls),
            _count(row.failed),
            failure_rate_cell(row.failure_rate),
            consecutive_cell(row.consecutive_failures),
            row.last_error_code or _NONE,
            row.top_category or _NONE,
            clock_time(row.last_failed_at),
        ]
        table.add_row(*cells)
    # The title as a line of its own: a table title would be padded with spaces to the table's width.
    return Group(Text(title, style="italic"), table) if title else table


def failure_rate_cell(percent: float) -> Text:
    style = (
        _CRITICAL_STYLE if percent > CRITICAL_PERCENT else _WARNING_STYLE if percent > WARNING_PERCENT else ""
    )
    return Text(f"{percent:.1f} %", style=style)


def consecutive_cell(count: int) -> Text:
    if count >= CONSECUTIVE_FAILURES_WARNING:
        return Text(f"⚠ {count}", style=_CRITICAL_STYLE)
    return Text(str(count))


def traceback_block(heading: str, traceback: str, console: Console) -> RenderableType:
    """A heading line and the traceback."""
    return Group(Text(heading, style="bold"), traceback_body(traceback, console))


def traceback_body(traceback: str, console: Console) -> RenderableType:
    """The traceback: highlighted on a terminal, plain text in a pipe or a file."""
    if console.is_terminal:
        return Syntax(traceback.rstrip("\n"), "pytb", word_wrap=True, background_color="default")
    return Text(traceback.rstrip("\n"))


def latest_failure_with_traceback(stats: Iterable[PromptStats]) -> PromptStats | None:
    """The prompt type whose last failure is the most recent among those that raised (a truncated
    stream raises nothing, so it has no traceback)."""
    failed = [s for s in stats if s.last_failed_at is not None and s.last_error_traceback]
    return max(failed, key=lambda s: s.last_failed_at or datetime.min) if failed else None


def failure_heading(prompt_type: str, error_code: str | None, at: datetime | None) -> str:
    return f"Latest failure: {prompt_type} · {error_code or 'unknown error'} · {clock_time(at)}"


PIPE_WIDTH = 140  # the failure table with a service column and its identifiers unfolded


def make_console(stderr: bool = False) -> Console:
    """Where the command writes: colours on a terminal, plain text in a pipe or CI log (140 columns
    unless COLUMNS says otherwise). Strings print literally: no markup, emoji codes or highlighting,
    since error messages and URLs are data."""
    console = Console(stderr=stderr, markup=False, emoji=False, highlight=False)
    if not console.is_terminal and console.width < PIPE_WIDTH:
        console = Console(stderr=stderr, markup=False, emoji=False, highlight=False, width=PIPE_WIDTH)
    return console


def _count(value: float) -> str:
    return str(round(value))


def clock_time(at: datetime | None) -> str:
    if at is None:
        return _NONE
    local = at.astimezone()
    today = datetime.now(local.tzinfo).date()
    return local.strftime("%H:%M:%S" if local.date() == today else "%Y-%m-%d %H:%M:%S")
