"""The "AI call failures" dashboard as data: one admin table per prompt type, trends and failed calls.

Datasources are template variables (`prometheus_datasource`, `tempo_datasource`), so the JSON imports
into any Grafana; provisioned next to `datasources.yaml` they default to the fixed uids.
"""

from __future__ import annotations

from typing import Any

from otel_aitrack.stack import promql
from otel_aitrack.stack.promql import DASHBOARD as F

from . import traceql

UID = "aitrack-ai-call-failures"
TITLE = "AI call failures"
PROMETHEUS = {"type": "prometheus", "uid": "${prometheus_datasource}"}
TEMPO = {"type": "tempo", "uid": "${tempo_datasource}"}

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


def _tempo_target(query: str, **extra: Any) -> dict[str, Any]:
    return {"datasource": TEMPO, "refId": "A", "queryType": "traceql", "query": query, **extra}


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
    panel["fieldConfig"] = {
        "defaults": {
            "unit": "percentunit",
            "min": 0,
            "max": 1,
            "color": {"mode": "palette-classic"},
            "thresholds": {"mode": "absolute", "steps": FAILURE_RATE_STEPS},
            "custom": {"drawStyle": "line", "lineWidth": 2, "thresholdsStyle": {"mode": "dashed"}},
        },
        "overrides": [],
    }
    panel["options"] = {"legend": {"displayMode": "table", "placement": "right", "calcs": ["max", "last"]}}
    return panel


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
        (0, 43, 12, 8),
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
        (0, 33, 24, 10),
    )
    panel["datasource"] = TEMPO
    panel["targets"] = [_tempo_target(traceql.RECENT_FAILED_CALLS, limit=50, spss=1, tableType="spans")]
    panel["fieldConfig"] = {
        "defaults": {"unit": "none", "custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
        "overrides": [],
    }
    panel["options"] = {"showHeader": True, "cellHeight": "sm"}
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


def panels() -> list[dict[str, Any]]:
    return [
        prompt_types_table(),
        failure_rate_panel(),
        failures_by_category_panel(),
        failures_by_error_type_panel(),
        failures_by_provider_code_panel(),
        latency_panel(),
        token_usage_panel(),
        recent_failures_panel(),
        time_to_first_chunk_panel(),
    ]


def dashboard() -> dict[str, Any]:
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
        "panels": panels(),
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
