"""The pieces the subcommands share: the table's colours and order, argument parsing, the queries."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

import pytest
from rich.console import Console

from otel_aitrack import PromptStats
from otel_aitrack.book import FailureGroup
from otel_aitrack.cli import failures, options, view
from otel_aitrack.stack import promql


def test_colours_and_warning_follow_the_dashboard_and_the_alerts() -> None:
    assert view.WARNING_PERCENT == 100 * promql.WARNING_RATIO
    assert view.CRITICAL_PERCENT == 100 * promql.CRITICAL_RATIO
    assert view.CONSECUTIVE_FAILURES_WARNING == promql.CONSECUTIVE_FAILURES_THRESHOLD
    assert options.INCIDENT_WINDOW == promql.WINDOW


@pytest.mark.parametrize(
    ("percent", "style"),
    [
        (0.0, ""),
        (20.0, ""),
        (20.1, "bold dark_orange"),
        (50.0, "bold dark_orange"),
        (50.1, "bold red"),
        (100.0, "bold red"),
    ],
)
def test_failure_rate_is_orange_strictly_above_20_and_red_strictly_above_50(
    percent: float, style: str
) -> None:
    assert str(view.failure_rate_cell(percent).style) == style


@pytest.mark.parametrize(("count", "shown"), [(0, "0"), (2, "2"), (3, "⚠ 3"), (12, "⚠ 12")])
def test_consecutive_failures_get_a_warning_sign_from_3(count: int, shown: str) -> None:
    assert view.consecutive_cell(count).plain == shown


def test_table_ranks_by_failure_rate_then_failed_calls() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    rows = [
        view.FailureRow.from_stats(PromptStats("healthy", total_calls=9)),
        view.FailureRow("few", calls=2, failed=1),
        view.FailureRow(
            "many", calls=20, failed=10, consecutive_failures=4, last_error_code="RateLimitError"
        ),
        view.FailureRow.from_stats(
            PromptStats("broken", 3, 3, 3, "NotFoundError", "m", "Traceback", last_failed_at=at)
        ),
    ]
    assert [row.prompt_type for row in view.ranked(rows)] == ["broken", "many", "few", "healthy"]
    console = Console(width=120, record=True, color_system=None)
    console.print(view.failure_table(rows, title="t"))
    text = console.export_text()
    lines = [line for line in text.splitlines() if "│" in line]
    assert [line.split("│")[1].strip() for line in lines] == ["broken", "many", "few", "healthy"]
    assert "100.0 %" in lines[0] and "⚠ 3" in lines[0] and "NotFoundError" in lines[0]
    assert "50.0 %" in lines[1] and "⚠ 4" in lines[1]
    assert lines[3].split("│")[6].strip() == "—"  # no last error


def test_the_top_category_has_the_most_failed_calls_and_a_tie_goes_to_the_latest() -> None:
    def group(category: str | None, count: int, minute: int) -> FailureGroup:
        at = datetime(2026, 1, 2, 3, minute, tzinfo=timezone.utc)
        return FailureGroup(f"{minute:016x}", "E", None, category, count, at, at, "m", None)

    assert view.top_category([]) is None
    assert view.top_category([group(None, 5, 1)]) is None
    # rate_limit over two groups (2 + 2) outnumbers server's 3; an uncategorised group is left out
    assert view.top_category(
        [group("rate_limit", 2, 1), group("server", 3, 2), group("rate_limit", 2, 3)]
    ) == ("rate_limit")
    assert view.top_category([group("auth", 2, 4), group("timeout", 2, 5), group(None, 9, 6)]) == "timeout"
    stats = PromptStats("p", 4, 4, failure_groups=(group("timeout", 1, 1), group("quota", 3, 2)))
    row = view.FailureRow.from_stats(stats)
    assert row.top_category == "quota"
    console = Console(width=140, record=True, color_system=None)
    console.print(view.failure_table([row]))
    assert [cell.strip() for cell in console.export_text().splitlines()[3].split("│")][7] == "quota"


def test_a_service_column_appears_only_when_rows_have_one() -> None:
    def header(rows: list[view.FailureRow]) -> str:
        console = Console(width=140, record=True, color_system=None)
        console.print(view.failure_table(rows))
        return console.export_text().splitlines()[1]

    assert "service" not in header([view.FailureRow("a", 1, 0)])
    assert "service" in header([view.FailureRow("a", 1, 0, service="shop")])


def test_failure_mix_takes_names_roles_and_percentages() -> None:
    mix = options.failure_mix("healthy=0, flaky=40%,ocr_receipt=1", options.DEMO_ROLES)
    assert mix == {"summarize_ticket": 0.0, "classify_email": 0.4, "ocr_receipt": 1.0}
    with pytest.raises(argparse.ArgumentTypeError, match="empty"):
        options.failure_mix(" , ", options.DEMO_ROLES)


@pytest.mark.parametrize(("text", "seconds"), [("15m", 900), ("1h30m", 5400), ("2d", 172800), ("90s", 90)])
def test_since_takes_promql_durations(text: str, seconds: float) -> None:
    assert options.window(text) == options.Window(text, seconds)


@pytest.mark.parametrize("text", ["15", "15 m", "m15", "-5m", "0m", ""])
def test_since_refuses_what_promql_would(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        options.window(text)


def test_a_prompt_type_filters_calls_and_gauges() -> None:
    f = failures.prompt_filters("classify_email")
    assert f.calls == f.prompt == ('gen_ai_prompt_name="classify_email"',)
    assert 'gen_ai_prompt_name="classify_email"' in promql.calls(f, "1h")
    assert "[1h]" in promql.calls(f, "1h")


def test_traceql_selects_the_failure_attributes_and_the_traceback_on_request() -> None:
    assert failures.failed_calls_traceql("classify_email", with_traceback=False) == (
        '{ status = error && span.gen_ai.prompt.name = "classify_email" } | select(span.error.type, '
        "span.http.response.status_code, span.aitrack.request.id, span.aitrack.error.message, "
        "span.aitrack.error.fingerprint)"
    )
    assert failures.failed_calls_traceql("x", with_traceback=True).endswith(
        "span.aitrack.error.fingerprint, span.aitrack.error.traceback)"
    )
