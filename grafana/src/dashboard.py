"""The "AI call failures" dashboard as data: one admin table per prompt type, trends, failure groups,
failed calls and, in a row of its own, the error budget of each prompt type.

Datasources are template variables (`prometheus_datasource`, `tempo_datasource`), so the JSON imports
into any Grafana; provisioned next to `datasources.yaml` they default to the fixed uids. The error
budget panels write out what the rules file records (`slo.Inline`), so they work on any Prometheus.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Sequence
from typing import Any

from otel_aitrack.stack import promql, slo
from otel_aitrack.stack.promql import DASHBOARD as F
from otel_aitrack.stack.slo import Objectives

from . import traceql

UID = "aitrack-ai-call-failures"
TITLE = "AI call failures"
PROMETHEUS = {"type": "prometheus", "uid": "${prometheus_datasource}"}
TEMPO = {"type": "tempo", "uid": "${tempo_datasource}"}
# A panel whose targets query different datasources, each naming its own.
MIXED = {"type": "datasource", "uid": "-- Mixed --"}
BURN_RATE_PANEL_ID = 11

# Grafana colours a value with the highest step whose value is <= the value ("≥ step"). To colour
# ratios strictly above a threshold the step sits one notch above it: 1e-7 is below the gap between
# the threshold and the next ratio of two call counts (≥ 1/(5·n) for n < 2 000 000 calls).
STRICTLY_ABOVE = 1e-7
FAILURE_RATE_STEPS = [
    {"color": "green", "value": None},
    {"color": "orange", "value": round(promql.WARNING_RATIO + STRICTLY_ABOVE, 9)},
    {"color": "red", "value": round(promql.CRITICAL_RATIO + STRICTLY_ABOVE, 9)},
]
CONSECUTIVE_STEPS = [
    {"color": "green", "value": None},
    {"color": "red", "value": promql.CONSECUTIVE_FAILURES_THRESHOLD},
]
# Value mappings replace the text and cannot interpolate the value, so each small count gets its
# own "⚠ N" and larger counts a "⚠ N+" bucket.
EXACT_WARNING_COUNTS = range(promql.CONSECUTIVE_FAILURES_THRESHOLD, 20)
WARNING_BUCKETS = ((20, 49), (50, 99), (100, 999), (1000, None))

COLUMNS = {  # refId / label -> column title, in table order
    promql.SERVICE: "Service",
    promql.PROMPT: "Prompt type",
    "Value #A": f"Calls ({promql.WINDOW})",
    "Value #B": f"Failed ({promql.WINDOW})",
    "Value #C": f"Failure rate ({promql.WINDOW})",
    "Value #D": "Consecutive failures",
    promql.ERROR_TYPE: "Last error code",
    "Value #F": "Last failure",
}


def consecutive_failure_mappings() -> list[dict[str, Any]]:
    warning = {"color": "red", "index": 0}
    exact = {str(n): {**warning, "text": f"⚠ {n}"} for n in EXACT_WARNING_COUNTS}
    mappings: list[dict[str, Any]] = [{"type": "value", "options": exact}]
    for low, high in WARNING_BUCKETS:
        options = {"from": low, "to": high, "result": {**warning, "text": f"⚠ {low}+"}}
        mappings.append({"type": "range", "options": options})
    return mappings


def _target(
    ref: str, expr: str, *, instant: bool, legend: str = "", exemplar: bool = False
) -> dict[str, Any]:
    return {
        "datasource": PROMETHEUS,
        "refId": ref,
        "expr": expr,
        "instant": instant,
        "range": not instant,
        "format": "table" if instant else "time_series",
        "legendFormat": legend or "__auto",
        "exemplar": exemplar,
        "editorMode": "code",
    }


def _tempo_target(query: str, ref: str = "A", **extra: Any) -> dict[str, Any]:
    return {"datasource": TEMPO, "refId": ref, "queryType": "traceql", "query": query, **extra}


def _panel(
    pid: int, kind: str, title: str, description: str, grid: tuple[int, int, int, int]
) -> dict[str, Any]:
    x, y, w, h = grid
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "description": description,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "datasource": PROMETHEUS,
    }


def _override(column: str, **properties: Any) -> dict[str, Any]:
    return {
        "matcher": {"id": "byName", "options": column},
        "properties": [{"id": key.replace("__", "."), "value": value} for key, value in properties.items()],
    }


def prompt_types_table() -> dict[str, Any]:
    panel = _panel(
        1,
        "table",
        "Prompt types",
        (
            f"One row per AI feature (prompt type). Calls, failures and failure rate cover the alert window "
            f"({promql.WINDOW}); the rate is orange above {promql.WARNING_RATIO:.0%} and red above "
            f"{promql.CRITICAL_RATIO:.0%}. Consecutive failures count the calls that failed since the last "
            f"success (⚠ from {promql.CONSECUTIVE_FAILURES_THRESHOLD}). Last error code is the error.type "
            "that failed last and last failure is when, as the running services remember them (a restarted "
            "process starts blank). Gauges ignore the provider and model filters."
        ),
        (0, 0, 24, 9),
    )
    panel["targets"] = [
        _target("A", promql.calls(F), instant=True),
        _target("B", promql.failed_calls(F), instant=True),
        _target("C", promql.failure_ratio(F), instant=True),
        _target("D", promql.consecutive_failures(F), instant=True),
        _target("E", promql.last_error_type(F), instant=True),
        _target("F", promql.last_failure_time_ms(F), instant=True),
    ]
    panel["transformations"] = [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {
                "excludeByName": {"Time": True, "Value #E": True},
                "indexByName": {name: index for index, name in enumerate(COLUMNS)},
                "renameByName": COLUMNS,
            },
        },
    ]
    filter_link = {
        "title": "Show only this prompt type",
        "url": f"/d/{UID}?var-prompt_type=${{__value.raw}}&${{__url_time_range}}",
    }
    panel["fieldConfig"] = {
        "defaults": {
            "unit": "short",
            "custom": {"align": "auto", "cellOptions": {"type": "auto"}},
            "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
        },
        "overrides": [
            _override(COLUMNS[promql.PROMPT], links=[filter_link]),
            _override(COLUMNS["Value #A"], decimals=0),
            _override(COLUMNS["Value #B"], decimals=0),
            _override(
                COLUMNS["Value #C"],
                unit="percentunit",
                decimals=1,
                min=0,
                max=1,
                thresholds={"mode": "absolute", "steps": FAILURE_RATE_STEPS},
                color={"mode": "thresholds"},
                custom__cellOptions={"type": "color-background", "mode": "basic"},
            ),
            _override(
                COLUMNS["Value #D"],
                decimals=0,
                thresholds={"mode": "absolute", "steps": CONSECUTIVE_STEPS},
                color={"mode": "thresholds"},
                mappings=consecutive_failure_mappings(),
                custom__cellOptions={"type": "color-text"},
            ),
            _override(COLUMNS["Value #F"], unit="dateTimeAsIso"),
        ],
    }
    panel["options"] = {
        "showHeader": True,
        "cellHeight": "sm",
        "sortBy": [{"displayName": COLUMNS["Value #C"], "desc": True}],
    }
    return panel


def failure_rate_panel() -> dict[str, Any]:
    panel = _panel(
        2,
        "timeseries",
        f"Failure rate by prompt type ({promql.WINDOW} window)",
        (
            f"Failed / all calls over a sliding {promql.WINDOW} window, the expression of the failure-rate "
            f"alerts (which also need at least {promql.MIN_CALLS} calls in the window). Dashed lines: "
            f"warning above {promql.WARNING_RATIO:.0%}, critical above {promql.CRITICAL_RATIO:.0%}."
        ),
        (0, 9, 24, 8),
    )
    legend = f"{{{{{promql.SERVICE}}}}} · {{{{{promql.PROMPT}}}}}"
    panel["targets"] = [_target("A", promql.failure_ratio(F), instant=False, legend=legend)]
    return _threshold_lines(panel, FAILURE_RATE_STEPS, unit="percentunit", min=0, max=1)


def _bar_gauge(pid: int, title: str, description: str, grid: tuple[int, int, int, int]) -> dict[str, Any]:
    panel = _panel(pid, "bargauge", title, description, grid)
    panel["fieldConfig"] = {
        "defaults": {
            "unit": "short",
            "decimals": 0,
            "min": 0,
            "color": {"mode": "continuous-YlRd"},
            "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
        },
        "overrides": [],
    }
    panel["options"] = {
        "orientation": "horizontal",
        "displayMode": "gradient",
        "showUnfilled": True,
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
    }
    return panel


def failures_by_category_panel() -> dict[str, Any]:
    panel = _bar_gauge(
        8,
        "Failures by category",
        (
            "Failed calls in the dashboard's time range per prompt type and aitrack.error.category: "
            "rate_limit, quota, auth, not_found, bad_request, timeout, connection, server, content_filter, "
            "stream_truncated, other. The same for every SDK, so a rate limit and a bad key differ even "
            "where error.type does not (google-genai's ClientError)."
        ),
        (0, 17, 8, 8),
    )
    legend = f"{{{{{promql.PROMPT}}}}} · {{{{{promql.CATEGORY}}}}}"
    panel["targets"] = [_target("A", promql.failures_by_category(F), instant=True, legend=legend)]
    return panel


def failures_by_error_type_panel() -> dict[str, Any]:
    panel = _bar_gauge(
        3,
        "Failures by error.type",
        "Failed calls in the dashboard's time range per prompt type and error.type (the exception class).",
        (8, 17, 8, 8),
    )
    legend = "{{gen_ai_prompt_name}} · {{error_type}}"
    panel["targets"] = [_target("A", promql.failures_by_error_type(F), instant=True, legend=legend)]
    return panel


def failures_by_provider_code_panel() -> dict[str, Any]:
    panel = _bar_gauge(
        4,
        "Failures by provider error code (Tempo)",
        (
            "Failed spans in the dashboard's time range per prompt type and aitrack.error.provider_code "
            "(the provider's own code: model_not_found, insufficient_quota, …); only spans carry it. "
            "A TraceQL metrics query: Tempo 3.x serves TraceQL metrics as configured in backends/tempo; "
            "Tempo 2.x needs the metrics-generator's local-blocks processor with flush_to_storage."
        ),
        (16, 17, 8, 8),
    )
    panel["datasource"] = TEMPO
    panel["targets"] = [_tempo_target(traceql.FAILURES_BY_PROVIDER_CODE, metricsQueryType="instant")]
    return panel


def _seconds_axis(panel: dict[str, Any]) -> dict[str, Any]:
    """A time series panel of durations: seconds from zero, one colour per series, legend below."""
    panel["fieldConfig"] = {
        "defaults": {"unit": "s", "min": 0, "color": {"mode": "palette-classic"}, "custom": {"lineWidth": 1}},
        "overrides": [],
    }
    panel["options"] = {"legend": {"displayMode": "list", "placement": "bottom"}}
    return panel


def latency_panel() -> dict[str, Any]:
    panel = _panel(
        5,
        "timeseries",
        "Latency p50 / p95 / p99 by prompt type",
        "gen_ai.client.operation.duration percentiles, failures included. Exemplars link to the trace.",
        (0, 25, 12, 8),
    )
    panel["targets"] = [
        _target(
            ref,
            promql.latency_quantile(q, F),
            instant=False,
            legend=f"{label} · {{{{gen_ai_prompt_name}}}}",
            exemplar=True,
        )
        for ref, q, label in (("A", 0.5, "p50"), ("B", 0.95, "p95"), ("C", 0.99, "p99"))
    ]
    return _seconds_axis(panel)


def time_to_first_chunk_panel() -> dict[str, Any]:
    panel = _panel(
        30,
        "timeseries",
        "Time to first chunk p95 by prompt type",
        (
            "gen_ai.client.operation.time_to_first_chunk, streamed calls only: how long users wait for the "
            "first token (p95). Exemplars link to the trace."
        ),
        (0, 52, 12, 8),
    )
    panel["targets"] = [
        _target(
            "A",
            promql.time_to_first_chunk_quantile(0.95, F),
            instant=False,
            legend="p95 · {{gen_ai_prompt_name}}",
            exemplar=True,
        )
    ]
    return _seconds_axis(panel)


def token_usage_panel() -> dict[str, Any]:
    panel = _panel(
        6,
        "timeseries",
        "Token usage by prompt type",
        "gen_ai.client.token.usage in tokens per minute, split into input and output tokens.",
        (12, 25, 12, 8),
    )
    legend = "{{gen_ai_prompt_name}} · {{gen_ai_token_type}}"
    panel["targets"] = [
        _target("A", promql.tokens_per_minute(F), instant=False, legend=legend, exemplar=True)
    ]
    panel["fieldConfig"] = {
        "defaults": {
            "unit": "short",
            "min": 0,
            "color": {"mode": "palette-classic"},
            "custom": {"axisLabel": "tokens / min", "lineWidth": 1},
        },
        "overrides": [],
    }
    panel["options"] = {"legend": {"displayMode": "list", "placement": "bottom"}}
    return panel


def recent_failures_panel() -> dict[str, Any]:
    panel = _panel(
        7,
        "table",
        "Recent failed calls (Tempo)",
        (
            "The latest failed AI calls as Tempo stores them: prompt type, error.type, provider code, "
            "message, HTTP status and the provider's request id. Open a row's trace for the span, whose "
            "aitrack.error.traceback attribute holds the Python traceback."
        ),
        (0, 42, 24, 10),
    )
    panel["datasource"] = TEMPO
    panel["targets"] = [_tempo_target(traceql.RECENT_FAILED_CALLS, limit=50, spss=1, tableType="spans")]
    panel["fieldConfig"] = {
        "defaults": {"unit": "none", "custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
        "overrides": [],
    }
    panel["options"] = {"showHeader": True, "cellHeight": "sm"}
    return panel


# --- Failure groups: counts from Prometheus, the latest message and trace from Tempo ----------------
# Grafana hands the panel two frames. Prometheus' instant table: Time, one field per label, Value.
# Tempo's spans table: traceIdHidden, traceService, traceName, spanID, time (shown as "Start time"),
# name, one field per selected attribute (named by its key, without `span.`), duration; traces newest
# first. The transformations (Grafana reads fields by display name) give both frames one
# "Fingerprint" field, fold Tempo's frame to the first (newest) span of each fingerprint, join them on
# it (outerTabular: a SQL outer join, which keeps a fingerprint that several prompt types share) and
# name the columns.
GROUP_FINGERPRINT = "Fingerprint"
_TEMPO_TIME = "Start time"
_TEMPO_TRACE_ID = "traceIdHidden"
GROUP_COLUMNS = {  # field after the join -> column title, in table order
    GROUP_FINGERPRINT: GROUP_FINGERPRINT,
    promql.PROMPT: "Prompt type",
    promql.ERROR_TYPE: "error.type",
    "Value (sum)": "Count",
    "Value #A (sum)": "Count",  # Prometheus names the value so when it answers several queries
    f"{traceql.MESSAGE} (first)": "Last message",
    f"{_TEMPO_TIME} (first)": "Last seen",
    f"{_TEMPO_TRACE_ID} (first)": "Latest trace",
}
_GROUP_BY = {
    GROUP_FINGERPRINT: {"operation": "groupby", "aggregations": []},
    promql.PROMPT: {"operation": "groupby", "aggregations": []},
    promql.ERROR_TYPE: {"operation": "groupby", "aggregations": []},
    # One row per group already: the sum of one value.
    "Value": {"operation": "aggregate", "aggregations": ["sum"]},
    "Value #A": {"operation": "aggregate", "aggregations": ["sum"]},
    # Tempo's rows come newest trace first: "first" is the latest span of the fingerprint.
    traceql.MESSAGE: {"operation": "aggregate", "aggregations": ["first"]},
    _TEMPO_TIME: {"operation": "aggregate", "aggregations": ["first"]},
    _TEMPO_TRACE_ID: {"operation": "aggregate", "aggregations": ["first"]},
}
_PLACEHOLDER = re.compile(r"%24%7B([\w.:]+)%7D")


def _explore_url(state: dict[str, Any]) -> str:
    """Grafana's Explore URL for `state` (the `left` pane, as Grafana's own trace links build it), with
    the `${...}` variables of the data link left for Grafana to fill in."""
    encoded = urllib.parse.quote(json.dumps(state, separators=(",", ":")), safe="")
    return "/explore?left=" + _PLACEHOLDER.sub(lambda m: "${" + m.group(1) + "}", encoded)


def latest_trace_link() -> dict[str, Any]:
    query = {"refId": "A", "datasource": TEMPO, "queryType": "traceql", "query": "${__value.raw}"}
    state = {"datasource": TEMPO["uid"], "queries": [query], "range": {"from": "${__from}", "to": "${__to}"}}
    return {"title": "Open the latest trace of this group", "url": _explore_url(state), "targetBlank": False}


def failure_groups_table() -> dict[str, Any]:
    panel = _panel(
        12,
        "table",
        "Failure groups",
        (
            "One row per kind of failure: aitrack.error.fingerprint groups the failed calls of one "
            "provider, error.type and provider error code raised from one place in the code (module and "
            "function), across processes and releases; a new fingerprint is a new kind of failure. Count "
            "is from Prometheus over the dashboard's time range; the last message, when it was seen and "
            "the latest trace come from the newest failed span of the group in Tempo (among the newest "
            "200 failed traces). _overflow counts the groups past the 20 a prompt type keeps as labels; "
            "their spans keep their own fingerprint, so they show as rows with a message and no count."
        ),
        (0, 33, 24, 9),
    )
    panel["datasource"] = MIXED
    panel["targets"] = [
        _target("A", promql.failure_groups(F), instant=True),
        _tempo_target(traceql.LATEST_FAILURE_PER_GROUP, "B", limit=200, spss=3, tableType="spans"),
    ]
    fingerprint = {
        "aitrack_error_fingerprint": GROUP_FINGERPRINT,
        f"{traceql.FINGERPRINT}": GROUP_FINGERPRINT,
    }
    panel["transformations"] = [
        {"id": "organize", "options": {"renameByName": fingerprint}},
        {"id": "groupBy", "options": {"fields": _GROUP_BY}},
        {"id": "joinByField", "options": {"byField": GROUP_FINGERPRINT, "mode": "outerTabular"}},
        {
            "id": "organize",
            "options": {
                "indexByName": {name: index for index, name in enumerate(GROUP_COLUMNS)},
                "renameByName": GROUP_COLUMNS,
            },
        },
    ]
    panel["fieldConfig"] = {
        "defaults": {"unit": "none", "custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
        "overrides": [
            _override("Count", unit="short", decimals=0),
            _override("Last message", custom__inspect=True),
            _override("Last seen", unit="dateTimeAsIso"),
            _override("Latest trace", links=[latest_trace_link()]),
        ],
    }
    panel["options"] = {
        "showHeader": True,
        "cellHeight": "sm",
        "sortBy": [{"displayName": "Count", "desc": True}],
    }
    return panel


# --- The error budget row ---------------------------------------------------------------------------
BUDGET_COLUMNS = {  # refId / label -> column title, in table order
    promql.SERVICE: "Service",
    promql.PROMPT: "Prompt type",
    "Value #A": "Objective",
    "Value #B": f"Budget remaining ({slo.PERIOD})",
    "Value #C": "Burn rate (1h)",
    "Value #D": "Burn rate (6h)",
    "Value #E": "Burn rate (3d)",
}
_BUDGET_BURN_WINDOWS = {"Value #C": "1h", "Value #D": "6h", "Value #E": "3d"}
# Grafana's "value >= step" colours, each step a notch above its threshold (see STRICTLY_ABOVE).
BUDGET_REMAINING_STEPS = [
    {"color": "red", "value": None},  # below 0: overspent
    {"color": "orange", "value": 0},
    {"color": "green", "value": 0.25},
]


def _above(value: float) -> float:
    return round(value + STRICTLY_ABOVE, 9)


def burn_rate_steps(window: str) -> list[dict[str, Any]]:
    """Green up to 1x (the budget lasts the period); red above the factor of the alert whose long
    window this is (orange in between), or above 1x for a window no alert reads as its long one."""
    factors = {alert.long_window: alert.factor for alert in slo.BURN_RATE_ALERTS}
    red = factors.get(window, 1)
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if red > 1:
        steps.append({"color": "orange", "value": _above(1)})
    steps.append({"color": "red", "value": _above(red)})
    return steps


def row(pid: int, title: str, y: int) -> dict[str, Any]:
    return {
        "id": pid,
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
    }


def error_budget_table(objectives: Objectives) -> dict[str, Any]:
    source = slo.Inline(objectives, F)
    panel = _panel(
        10,
        "table",
        "Error budget by prompt type",
        (
            f"Objective: the share of a prompt type's calls that must succeed over {slo.PERIOD} "
            f"(grafana/slo.yaml; {objectives.default:.2%} for prompt types it does not name). Budget "
            f"remaining: the share of its {slo.PERIOD} error budget not yet spent (red below 0, "
            "overspent). Burn rate: how many times faster than the objective allows it fails over the "
            "window: 1x spends the budget in exactly the period; the alerts page above 14.4x over 1h "
            "(and 5m) or 6x over 6h (and 30m), and open a ticket above 1x over 3d (and 6h)."
        ),
        (0, 61, 24, 8),
    )
    panel["targets"] = [
        _target("A", slo.objective_per_prompt_type(source, F), instant=True),
        _target("B", slo.budget_remaining(source), instant=True),
        *(
            _target(ref[-1], source.burn_rate(window), instant=True)
            for ref, window in _BUDGET_BURN_WINDOWS.items()
        ),
    ]
    panel["transformations"] = [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {
                "excludeByName": {"Time": True},
                "indexByName": {name: index for index, name in enumerate(BUDGET_COLUMNS)},
                "renameByName": BUDGET_COLUMNS,
            },
        },
    ]
    burn_overrides = [
        _override(
            BUDGET_COLUMNS[ref],
            decimals=1,
            thresholds={"mode": "absolute", "steps": burn_rate_steps(window)},
            color={"mode": "thresholds"},
            custom__cellOptions={"type": "color-text"},
        )
        for ref, window in _BUDGET_BURN_WINDOWS.items()
    ]
    panel["fieldConfig"] = {
        "defaults": {
            "unit": "short",
            "custom": {"align": "auto", "cellOptions": {"type": "auto"}},
            "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
        },
        "overrides": [
            _override(BUDGET_COLUMNS["Value #A"], unit="percentunit", decimals=2),
            _override(
                BUDGET_COLUMNS["Value #B"],
                unit="percentunit",
                decimals=1,
                thresholds={"mode": "absolute", "steps": BUDGET_REMAINING_STEPS},
                color={"mode": "thresholds"},
                custom__cellOptions={"type": "color-background", "mode": "basic"},
            ),
            *burn_overrides,
        ],
    }
    panel["options"] = {
        "showHeader": True,
        "cellHeight": "sm",
        "sortBy": [{"displayName": BUDGET_COLUMNS["Value #B"], "desc": False}],
    }
    return panel


def burn_rate_panel(objectives: Objectives) -> dict[str, Any]:
    panel = _panel(
        BURN_RATE_PANEL_ID,
        "timeseries",
        "Burn rate by prompt type (1h window)",
        (
            "The error ratio of the last hour over the prompt type's error budget: 1x spends the budget "
            f"in exactly {slo.PERIOD}. Dashed lines at 1x, 6x and 14.4x, the burn rates of the "
            "error-budget alerts (each also needs its short window)."
        ),
        (0, 69, 24, 8),
    )
    legend = f"{{{{{promql.SERVICE}}}}} · {{{{{promql.PROMPT}}}}}"
    source = slo.Inline(objectives, F)
    panel["targets"] = [_target("A", source.burn_rate("1h"), instant=False, legend=legend)]
    factors = sorted({alert.factor for alert in slo.BURN_RATE_ALERTS})
    colours = ("orange", "red", "dark-red")
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    steps += [
        {"color": colour, "value": _above(factor)} for colour, factor in zip(colours, factors, strict=True)
    ]
    return _threshold_lines(panel, steps, unit="short", decimals=1, min=0)


def _threshold_lines(panel: dict[str, Any], steps: Sequence[object], **axis: Any) -> dict[str, Any]:
    """A time series with its thresholds drawn as dashed lines, and a legend table of max and last."""
    panel["fieldConfig"] = {
        "defaults": {
            **axis,
            "color": {"mode": "palette-classic"},
            "thresholds": {"mode": "absolute", "steps": steps},
            "custom": {"drawStyle": "line", "lineWidth": 2, "thresholdsStyle": {"mode": "dashed"}},
        },
        "overrides": [],
    }
    panel["options"] = {"legend": {"displayMode": "table", "placement": "right", "calcs": ["max", "last"]}}
    return panel


def _datasource_variable(name: str, plugin: str, label: str, uid: str, display: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "datasource",
        "query": plugin,
        "current": {"selected": False, "text": display, "value": uid},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }


def _label_variable(name: str, label: str, metric_filter: tuple[str, ...], label_name: str) -> dict[str, Any]:
    query = f"label_values({promql.selector(promql.CALLS, *metric_filter)}, {label_name})"
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": PROMETHEUS,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "multi": True,
        "includeAll": True,
        # ".*" also matches series without the label (calls that named no model).
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "refresh": 2,
        "sort": 1,
        "hide": 0,
        "regex": "",
        "options": [],
    }


def variables() -> list[dict[str, Any]]:
    service = f'{promql.SERVICE}=~"$service"'
    provider = f'{promql.PROVIDER}=~"$provider"'
    model = f'{promql.MODEL}=~"$model"'
    return [
        _datasource_variable(
            "prometheus_datasource",
            "prometheus",
            "Prometheus data source",
            "aitrack-prometheus",
            "Prometheus",
        ),
        _datasource_variable("tempo_datasource", "tempo", "Tempo data source", "aitrack-tempo", "Tempo"),
        _label_variable("service", "Service", (), promql.SERVICE),
        _label_variable("provider", "Provider", (service,), promql.PROVIDER),
        _label_variable("model", "Model", (service, provider), promql.MODEL),
        _label_variable("prompt_type", "Prompt type", (service, provider, model), promql.PROMPT),
    ]


def panels(objectives: Objectives) -> list[dict[str, Any]]:
    return [
        prompt_types_table(),
        failure_rate_panel(),
        failures_by_category_panel(),
        failures_by_error_type_panel(),
        failures_by_provider_code_panel(),
        latency_panel(),
        token_usage_panel(),
        failure_groups_table(),
        recent_failures_panel(),
        time_to_first_chunk_panel(),
        row(9, "Error budget", 60),
        error_budget_table(objectives),
        burn_rate_panel(objectives),
    ]


def dashboard(objectives: Objectives) -> dict[str, Any]:
    return {
        "annotations": {"list": []},
        "description": (
            "otel-aitrack: failed AI provider calls per prompt type. Generated by grafana/src "
            "(python -m grafana.src.generate): edit the generator, not this file."
        ),
        "editable": False,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [],
        "panels": panels(objectives),
        "refresh": "1m",
        "schemaVersion": 39,
        "tags": ["otel-aitrack", "genai"],
        "templating": {"list": variables()},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": TITLE,
        "uid": UID,
        "version": 1,
        "weekStart": "",
    }
