"""Generated provisioning pieces that embed PromQL or panel titles: datasources and the linter's `.lint`.

Provisioning files go through Grafana's environment expansion (`$VAR`, `${VAR}`), so a literal `$` in
a query is written `$$`.
"""

from __future__ import annotations

from typing import Any

from otel_aitrack.stack import promql
from otel_aitrack.stack.promql import TEMPO_LINK

from . import dashboard

PROMETHEUS_UID = "aitrack-prometheus"
TEMPO_UID = "aitrack-tempo"


def _literal_dollars(query: str) -> str:
    return query.replace("$", "$$")


def datasources() -> dict[str, Any]:
    prometheus = {
        "name": "Prometheus (aitrack)",
        "type": "prometheus",
        "uid": PROMETHEUS_UID,
        "access": "proxy",
        "url": "${AITRACK_PROMETHEUS_URL}",
        "isDefault": False,
        "editable": False,
        "jsonData": {
            "httpMethod": "POST",
            # Prometheus' scrape interval: $__rate_interval is computed from it.
            "timeInterval": "${AITRACK_SCRAPE_INTERVAL}",
            # The collector's exporter attaches the span's trace id to histogram samples.
            "exemplarTraceIdDestinations": [{"name": "trace_id", "datasourceUid": TEMPO_UID}],
        },
    }
    span_to_labels = [
        {"key": "service.name", "value": promql.SERVICE},
        {"key": "gen_ai.prompt.name", "value": promql.PROMPT},
    ]
    trace_links = [
        (f"Failure rate of this prompt type ({promql.WINDOW})", promql.failure_ratio(TEMPO_LINK)),
        ("Calls per minute of this prompt type", promql.calls_per_minute(TEMPO_LINK)),
        ("p95 latency of this prompt type", promql.latency_quantile(0.95, TEMPO_LINK)),
    ]
    tempo = {
        "name": "Tempo (aitrack)",
        "type": "tempo",
        "uid": TEMPO_UID,
        "access": "proxy",
        "url": "${AITRACK_TEMPO_URL}",
        "editable": False,
        "jsonData": {
            "tracesToMetrics": {
                "datasourceUid": PROMETHEUS_UID,
                "spanStartTimeShift": f"-{promql.WINDOW}",
                "spanEndTimeShift": promql.WINDOW,
                "tags": span_to_labels,
                "queries": [{"name": name, "query": _literal_dollars(q)} for name, q in trace_links],
            },
            # Filled by Tempo's metrics-generator (service graphs) when it remote-writes to Prometheus.
            "serviceMap": {"datasourceUid": PROMETHEUS_UID},
            "nodeGraph": {"enabled": True},
            "search": {"hide": False},
            "traceQuery": {"timeShiftEnabled": True, "spanStartTimeShift": "-1h", "spanEndTimeShift": "1h"},
        },
    }
    return {
        "apiVersion": 1,
        "datasources": [prometheus, tempo],
    }


def _targets_reading_counters_raw(board: dict[str, Any]) -> list[dict[str, Any]]:
    entries = []
    for panel in board["panels"]:
        for index, target in enumerate(panel.get("targets", [])):
            expr = target.get("expr", "")
            # The counter read otherwise than through increase(): born series, presence (group by).
            if promql.CALLS in expr and (" unless " in expr or f"({promql.CALLS}" in expr):
                entries.append({"dashboard": board["title"], "panel": panel["title"], "targetIdx": index})
    return entries


def _mixed_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"dashboard": board["title"], "panel": panel["title"]}
        for panel in board["panels"]
        if panel.get("datasource") == dashboard.MIXED
    ]


def lint_config(board: dict[str, Any]) -> dict[str, Any]:
    """The exclusions of `board` (the generated dashboard)."""
    multi_datasource = (
        "Multi-datasource dashboard (Prometheus and Tempo): the linter's docs advise excluding the job and "
        "instance rules and filtering on a label both share. Here that is the service: the `service` "
        "variable matches the job label (the collector's exporter writes service.name into job) and "
        "resource.service.name in Tempo, with provider, model and prompt type. Instances are not a "
        "dimension of these panels."
    )
    return {
        "exclusions": {
            "template-job-rule": {"reason": multi_datasource},
            "template-instance-rule": {"reason": multi_datasource},
            "target-job-rule": {"reason": multi_datasource},
            "target-instance-rule": {"reason": multi_datasource},
            "target-counter-agg-rule": {
                "reason": (
                    "These targets also read aitrack_calls_total as `max_over_time(X[<window>]) unless X "
                    "offset <window>` to count the series born inside the window from zero: increase() "
                    "skips a series' first sample, which for sparse failures is the first (often the only) "
                    "failure of an error.type. The error-budget targets also read it as `group by (...) "
                    "(X)`: which prompt types have calls, to give each its objective. Every count of the "
                    "counter goes through increase()."
                ),
                "entries": _targets_reading_counters_raw(board),
            },
            "panel-datasource-rule": {
                "reason": (
                    "Failure groups joins counts from Prometheus with the latest span of each group from "
                    "Tempo, so the panel's datasource is Grafana's -- Mixed --; each of its targets names "
                    "its datasource variable, as the rule asks of single-datasource panels."
                ),
                "entries": _mixed_panels(board),
            },
        }
    }
