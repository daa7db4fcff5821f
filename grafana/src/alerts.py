"""The alert rules, rendered three ways from one list: Prometheus rules, Grafana rules, promtool tests.

Each rule's condition is a function from `promql`, so the Prometheus rule, the Grafana rule and the
dashboard panel that shows the same number evaluate the same expression.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from otel_aitrack.stack import promql
from otel_aitrack.stack.promql import ALERTS, PROMPT, SERVICE

GROUP_NAME = "aitrack-ai-call-failures"
GROUP_INTERVAL = "1m"
GRAFANA_FOLDER = "otel-aitrack"
PROMETHEUS_UID = "aitrack-prometheus"
DASHBOARD_UID = "aitrack-ai-call-failures"
# Repo-relative by default; `--runbook-base-url` (Prometheus file) or AITRACK_RUNBOOK_BASE_URL
# (Grafana, read at provisioning time) point it at a hosted copy.
DEFAULT_RUNBOOK_BASE_URL = "docs/runbook.md"
GRAFANA_RUNBOOK_BASE_URL = "${AITRACK_RUNBOOK_BASE_URL}"


@dataclass(frozen=True)
class Alert:
    name: str
    uid: str
    severity: str
    for_: str
    condition: Callable[[promql.Filters], str]
    # Templates with {prompt}, {service}, {value}; each target renders them in its own syntax.
    summary: str
    description: str
    value_is_ratio: bool
    panel_id: int

    @property
    def anchor(self) -> str:
        return self.name.lower()

    def runbook_url(self, base: str) -> str:
        return f"{base}#{self.anchor}"


_WINDOW_TEXT = f"the last {promql.WINDOW} (at least {promql.MIN_CALLS} calls)"

ALERT_RULES = (
    Alert(
        name="AITrackPromptFailureRateCritical",
        uid="aitrack-failure-rate-critical",
        severity="critical",
        for_="5m",
        condition=promql.failure_ratio_critical,
        summary="AI feature {prompt} fails {value} of its calls",
        description=(
            "{value} of the calls of prompt type {prompt} (service {service}) failed over "
            f"{_WINDOW_TEXT}: above {promql.CRITICAL_RATIO:.0%}. "
            "The dashboard's recent failed calls show the error and its traceback."
        ),
        value_is_ratio=True,
        panel_id=2,
    ),
    Alert(
        name="AITrackPromptFailureRateWarning",
        uid="aitrack-failure-rate-warning",
        severity="warning",
        for_="10m",
        condition=promql.failure_ratio_warning,
        summary="AI feature {prompt} fails {value} of its calls",
        description=(
            "{value} of the calls of prompt type {prompt} (service {service}) failed over "
            f"{_WINDOW_TEXT}: above {promql.WARNING_RATIO:.0%}, "
            f"up to {promql.CRITICAL_RATIO:.0%}."
        ),
        value_is_ratio=True,
        panel_id=2,
    ),
    Alert(
        name="AITrackPromptConsecutiveFailures",
        uid="aitrack-consecutive-failures",
        severity="critical",
        for_="1m",
        condition=promql.consecutive_failures_alert,
        summary="AI feature {prompt} failed its last {value} calls in a row",
        description=(
            "The last {value} calls of prompt type {prompt} (service {service}) all failed and none "
            "succeeded since; the count resets on the next successful call."
        ),
        value_is_ratio=False,
        panel_id=1,
    ),
)


def _render(template: str, **slots: str) -> str:
    for name, text in slots.items():
        template = template.replace("{" + name + "}", text)
    return template


def _annotations(alert: Alert, runbook_base: str, **slots: str) -> dict[str, str]:
    return {
        "summary": _render(alert.summary, **slots),
        "description": _render(alert.description, **slots),
        "runbook_url": alert.runbook_url(runbook_base),
    }


def _label_slots() -> dict[str, str]:
    return {"prompt": f"{{{{ $labels.{PROMPT} }}}}", "service": f"{{{{ $labels.{SERVICE} }}}}"}


# --- Prometheus -----------------------------------------------------------------------------------
def prometheus_rules(runbook_base: str) -> dict[str, object]:
    rules = []
    for alert in ALERT_RULES:
        value = "{{ $value | humanizePercentage }}" if alert.value_is_ratio else "{{ $value }}"
        rules.append(
            {
                "alert": alert.name,
                "expr": alert.condition(ALERTS),
                "for": alert.for_,
                "labels": {"severity": alert.severity},
                "annotations": _annotations(alert, runbook_base, value=value, **_label_slots()),
            }
        )
    return {"groups": [{"name": GROUP_NAME, "interval": GROUP_INTERVAL, "rules": rules}]}


# --- Grafana --------------------------------------------------------------------------------------
def _grafana_rule(alert: Alert) -> dict[str, object]:
    value = "{{ humanizePercentage $values.A.Value }}" if alert.value_is_ratio else "{{ $values.A.Value }}"
    query = {
        "refId": "A",
        "relativeTimeRange": {"from": promql.WINDOW_SECONDS, "to": 0},
        "datasourceUid": PROMETHEUS_UID,
        "model": {
            "refId": "A",
            "datasource": {"type": "prometheus", "uid": PROMETHEUS_UID},
            "expr": alert.condition(ALERTS),
            "instant": True,
            "range": False,
            "intervalMs": 1000,
            "maxDataPoints": 43200,
        },
    }
    # The PromQL already holds the comparison and returns only offending series; C fires on them.
    threshold = {
        "refId": "C",
        "relativeTimeRange": {"from": 0, "to": 0},
        "datasourceUid": "__expr__",
        "model": {
            "refId": "C",
            "datasource": {"type": "__expr__", "uid": "__expr__"},
            "type": "threshold",
            "expression": "A",
            "conditions": [{"evaluator": {"type": "gt", "params": [0]}}],
        },
    }
    return {
        "uid": alert.uid,
        "title": alert.name,
        "condition": "C",
        "data": [query, threshold],
        # An empty result means "no prompt type is failing", not missing data.
        "noDataState": "OK",
        "execErrState": "Error",
        "for": alert.for_,
        "dashboardUid": DASHBOARD_UID,
        "panelId": alert.panel_id,
        "annotations": _annotations(alert, GRAFANA_RUNBOOK_BASE_URL, value=value, **_label_slots()),
        "labels": {"severity": alert.severity},
        "isPaused": False,
    }


def grafana_rules() -> dict[str, object]:
    group = {
        "orgId": 1,
        "name": GROUP_NAME,
        "folder": GRAFANA_FOLDER,
        "interval": GROUP_INTERVAL,
        "rules": [_grafana_rule(alert) for alert in ALERT_RULES],
    }
    return {"apiVersion": 1, "groups": [group]}


# --- promtool unit tests ----------------------------------------------------------------------------
_SERVICE_NAME = "shop"
_MINUTES = 46  # input samples at 0m..45m


def _series(metric: str, prompt: str, values: Sequence[int | None], error_type: str = "") -> dict[str, str]:
    labels = f'{SERVICE}="{_SERVICE_NAME}", {PROMPT}="{prompt}"'
    if error_type:
        labels += f', {promql.ERROR_TYPE}="{error_type}"'
    text = " ".join("_" if v is None else str(v) for v in values)
    return {"series": f"{metric}{{{labels}}}", "values": text}


def _counter(events: list[int]) -> list[int | None]:
    """Cumulative count per minute of calls at `events`; absent until the first one, as exported."""
    first = min(events) if events else _MINUTES
    return [None if m < first else sum(1 for e in events if e <= m) for m in range(_MINUTES)]


def _consecutive(outcomes: dict[int, bool]) -> list[int]:
    """The consecutive-failures gauge per minute for calls at minute -> failed."""
    gauge, run = [], 0
    for minute in range(_MINUTES):
        if minute in outcomes:
            run = run + 1 if outcomes[minute] else 0
        gauge.append(run)
    return gauge


def _expected(alert: Alert, prompt: str, value: str, runbook_base: str) -> dict[str, object]:
    labels = {"severity": alert.severity, SERVICE: _SERVICE_NAME, PROMPT: prompt}
    annotations = _annotations(alert, runbook_base, value=value, prompt=prompt, service=_SERVICE_NAME)
    return {"exp_labels": labels, "exp_annotations": annotations}


def _alert_checks(eval_time: str, firing: dict[str, dict[str, object]]) -> list[dict[str, object]]:
    """Every alert at `eval_time`: the ones in `firing` with their expected instance, the rest none."""
    return [
        {
            "eval_time": eval_time,
            "alertname": alert.name,
            "exp_alerts": [firing[alert.name]] if alert.name in firing else [],
        }
        for alert in ALERT_RULES
    ]


def _by_name(name: str) -> Alert:
    return next(alert for alert in ALERT_RULES if alert.name == name)


def _flaky_case(runbook: str) -> dict[str, object]:
    # Every 5 minutes: 3 successes, then a RateLimitError and an APITimeoutError -> 6 of 15 fail.
    pattern = {m: m % 5 >= 3 for m in range(_MINUTES)}
    warning = _by_name("AITrackPromptFailureRateWarning")
    return {
        "name": "2 of 5 calls failing (40 %): warning fires, critical and consecutive do not",
        "interval": "1m",
        "input_series": [
            _series(promql.CALLS, "summarize", _counter([m for m, failed in pattern.items() if not failed])),
            _series(
                promql.CALLS, "summarize", _counter([m for m in pattern if m % 5 == 3]), "RateLimitError"
            ),
            _series(
                promql.CALLS, "summarize", _counter([m for m in pattern if m % 5 == 4]), "APITimeoutError"
            ),
            _series(promql.CONSECUTIVE_FAILURES, "summarize", _consecutive(pattern)),
        ],
        "promql_expr_test": [
            {
                "expr": promql.failure_ratio(ALERTS),
                "eval_time": "40m",
                "exp_samples": [{"labels": f'{{{SERVICE}="shop", {PROMPT}="summarize"}}', "value": 0.4}],
            }
        ],
        "alert_rule_test": _alert_checks(
            "40m", {warning.name: _expected(warning, "summarize", "40%", runbook)}
        ),
    }


def _consecutive_case(runbook: str) -> dict[str, object]:
    # Three failed calls at 2m, 3m, 4m, then silence: too few calls for a ratio alert.
    outcomes = {2: True, 3: True, 4: True}
    alert = _by_name("AITrackPromptConsecutiveFailures")
    return {
        "name": "3 consecutive failures: critical fires even below the minimum traffic of the ratio alerts",
        "interval": "1m",
        "input_series": [
            _series(promql.CALLS, "classify", _counter(list(outcomes)), "NotFoundError"),
            _series(promql.CONSECUTIVE_FAILURES, "classify", _consecutive(outcomes)),
        ],
        "promql_expr_test": [
            {  # all 3 failures, though the NotFoundError series only appeared at 2m, with value 1
                "expr": promql.failed_calls(ALERTS),
                "eval_time": "10m",
                "exp_samples": [{"labels": f'{{{SERVICE}="shop", {PROMPT}="classify"}}', "value": 3}],
            }
        ],
        "alert_rule_test": [
            *_alert_checks("4m", {}),  # pending: the gauge reached 3 at 4m, `for` is 1m
            *_alert_checks("10m", {alert.name: _expected(alert, "classify", "3", runbook)}),
        ],
    }


def _broken_case(runbook: str) -> dict[str, object]:
    # Every call fails from 0m on: critical ratio and consecutive alerts, not the warning band.
    outcomes = dict.fromkeys(range(31), True)
    critical = _by_name("AITrackPromptFailureRateCritical")
    consecutive = _by_name("AITrackPromptConsecutiveFailures")
    return {
        "name": "every call failing: critical ratio and consecutive alerts, no warning",
        "interval": "1m",
        "input_series": [
            _series(promql.CALLS, "classify", _counter(list(outcomes)), "NotFoundError"),
            _series(promql.CONSECUTIVE_FAILURES, "classify", _consecutive(outcomes)),
        ],
        "alert_rule_test": _alert_checks(
            "30m",
            {
                critical.name: _expected(critical, "classify", "100%", runbook),
                consecutive.name: _expected(consecutive, "classify", "31", runbook),
            },
        ),
    }


def _quiet_cases() -> list[dict[str, object]]:
    healthy = dict.fromkeys(range(_MINUTES), False)
    single = {5: True}
    return [
        {
            "name": "healthy prompt type: no alert",
            "interval": "1m",
            "input_series": [
                _series(promql.CALLS, "translate", _counter(list(healthy))),
                _series(promql.CONSECUTIVE_FAILURES, "translate", _consecutive(healthy)),
            ],
            "alert_rule_test": _alert_checks("30m", {}),
        },
        {
            "name": "1 failed call of 1: below the minimum traffic, no alert",
            "interval": "1m",
            "input_series": [
                _series(promql.CALLS, "rare", _counter(list(single)), "APIConnectionError"),
                _series(promql.CONSECUTIVE_FAILURES, "rare", _consecutive(single)),
            ],
            "alert_rule_test": _alert_checks("10m", {}),
        },
    ]


def promtool_tests(rules_file: str, runbook_base: str) -> dict[str, object]:
    cases = (_flaky_case, _consecutive_case, _broken_case)
    tests = [*(case(runbook_base) for case in cases), *_quiet_cases()]
    return {"rule_files": [rules_file], "evaluation_interval": "1m", "tests": tests}
