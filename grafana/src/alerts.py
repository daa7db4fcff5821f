"""The alert rules, rendered three ways from one list: Prometheus rules, Grafana rules, promtool tests.

Each rule's condition is a function from `promql`, so the Prometheus rule, the Grafana rule and the
dashboard panel that shows the same number evaluate the same expression. The annotations name the
prompt type's dominant failure category and its last error with the dashboard's queries too:
Prometheus runs them from the annotation template (`query`), Grafana as extra queries of the rule.
The renderers here also render the error-budget alerts of `budget.py`, a group of their own.
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


# How an alert's value reads in its annotations, in each target's template syntax ({} is the value).
VALUE_FORMATS = {
    "percent": ("{{{{ {} | humanizePercentage }}}}", "{{{{ humanizePercentage {} }}}}"),
    "count": ("{{{{ {} }}}}", "{{{{ {} }}}}"),
    "times": ('{{{{ {} | printf "%.1f" }}}}', '{{{{ printf "%.1f" {} }}}}'),  # a burn rate: 14.4
}


@dataclass(frozen=True)
class Alert:
    name: str
    uid: str
    severity: str
    for_: str
    expr: str  # the condition, as the Prometheus rules file evaluates it
    # Templates with {prompt}, {service}, {value}, {category}, {last_error}; each target renders them
    # in its own syntax.
    summary: str
    description: str
    value_format: str  # a key of VALUE_FORMATS
    panel_id: int
    # Grafana's condition, where it cannot read the rules file's recording rules; else `expr`.
    grafana_expr: str = ""
    # How far back Grafana's queries look (the expressions hold their own windows).
    lookback_seconds: int = promql.WINDOW_SECONDS

    @property
    def anchor(self) -> str:
        return self.name.lower()

    def runbook_url(self, base: str) -> str:
        return f"{base}#{self.anchor}"

    def value(self, target: int, value: str) -> str:
        """The value's template: target 0 is Prometheus (`$value`), 1 Grafana (`$values.A.Value`)."""
        return VALUE_FORMATS[self.value_format][target].format(value)


_WINDOW_TEXT = f"the last {promql.WINDOW} (at least {promql.MIN_CALLS} calls)"
WHY_TEXT = f"Most failures of the last {promql.WINDOW}: {{category}}; the last error: {{last_error}}."
# What the annotations say when a lookup finds nothing (a process restarted since it failed).
UNKNOWN = "unknown"

ALERT_RULES = (
    Alert(
        name="AITrackPromptFailureRateCritical",
        uid="aitrack-failure-rate-critical",
        severity="critical",
        for_="5m",
        expr=promql.failure_ratio_critical(ALERTS),
        summary="AI feature {prompt} fails {value} of its calls",
        description=(
            "{value} of the calls of prompt type {prompt} (service {service}) failed over "
            f"{_WINDOW_TEXT}: above {promql.CRITICAL_RATIO:.0%}. {WHY_TEXT} "
            "The dashboard's recent failed calls show the error and its traceback."
        ),
        value_format="percent",
        panel_id=2,
    ),
    Alert(
        name="AITrackPromptFailureRateWarning",
        uid="aitrack-failure-rate-warning",
        severity="warning",
        for_="10m",
        expr=promql.failure_ratio_warning(ALERTS),
        summary="AI feature {prompt} fails {value} of its calls",
        description=(
            "{value} of the calls of prompt type {prompt} (service {service}) failed over "
            f"{_WINDOW_TEXT}: above {promql.WARNING_RATIO:.0%}, "
            f"up to {promql.CRITICAL_RATIO:.0%}. {WHY_TEXT}"
        ),
        value_format="percent",
        panel_id=2,
    ),
    Alert(
        name="AITrackPromptConsecutiveFailures",
        uid="aitrack-consecutive-failures",
        severity="critical",
        for_="1m",
        expr=promql.consecutive_failures_alert(ALERTS),
        summary="AI feature {prompt} failed its last {value} calls in a row",
        description=(
            "The last {value} calls of prompt type {prompt} (service {service}) all failed and none "
            f"succeeded since; the count resets on the next successful call. {WHY_TEXT}"
        ),
        value_format="count",
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


# The lookups behind {category} and {last_error}: a promql function, and the label that names the answer.
LOOKUPS: dict[str, tuple[Callable[[promql.Filters], str], str]] = {
    "category": (promql.top_category, promql.CATEGORY),
    "last_error": (promql.last_error_type, promql.ERROR_TYPE),
}
# The alert instance's own prompt type, as printf arguments 1 and 2 of the Prometheus template.
_THIS_PROMPT_TYPE = (f"{SERVICE}=%[1]q", f"{PROMPT}=%[2]q")


def _prometheus_lookup(slot: str) -> str:
    """A template that runs the slot's query for this alert's prompt type and prints its label."""
    expression, label = LOOKUPS[slot]
    one_prompt_type = promql.Filters(calls=_THIS_PROMPT_TYPE, prompt=_THIS_PROMPT_TYPE)
    query = " ".join(expression(one_prompt_type).split())  # one line; no PromQL string holds spaces
    return (
        f"{{{{ with query (printf `{query}` $labels.{SERVICE} $labels.{PROMPT}) }}}}"
        f'{{{{ . | first | label "{label}" }}}}{{{{ else }}}}{UNKNOWN}{{{{ end }}}}'
    )


# --- Prometheus -----------------------------------------------------------------------------------
def prometheus_alert(alert: Alert, runbook_base: str) -> dict[str, object]:
    return {
        "alert": alert.name,
        "expr": alert.expr,
        "for": alert.for_,
        "labels": {"severity": alert.severity},
        "annotations": _annotations(
            alert,
            runbook_base,
            value=alert.value(0, "$value"),
            **_label_slots(),
            **{slot: _prometheus_lookup(slot) for slot in LOOKUPS},
        ),
    }


def prometheus_group(runbook_base: str) -> dict[str, object]:
    rules = [prometheus_alert(alert, runbook_base) for alert in ALERT_RULES]
    return {"name": GROUP_NAME, "interval": GROUP_INTERVAL, "rules": rules}


# --- Grafana --------------------------------------------------------------------------------------
# The refIds of the lookups in each Grafana rule; the annotations read their labels from $values.
GRAFANA_LOOKUP_REFS = {"category": "TopCategory", "last_error": "LastError"}


def _grafana_query(ref: str, expr: str, lookback_seconds: int = promql.WINDOW_SECONDS) -> dict[str, object]:
    return {
        "refId": ref,
        "relativeTimeRange": {"from": lookback_seconds, "to": 0},
        "datasourceUid": PROMETHEUS_UID,
        "model": {
            "refId": ref,
            "datasource": {"type": "prometheus", "uid": PROMETHEUS_UID},
            "expr": expr,
            "instant": True,
            "range": False,
            "intervalMs": 1000,
            "maxDataPoints": 43200,
        },
    }


def _grafana_lookup(slot: str) -> tuple[dict[str, object], str]:
    """The extra query of a slot and the template that prints its label for the alert instance.

    Grafana hands each instance the lookup series whose labels include the instance's (job and prompt
    type). A query that returns nothing makes the whole rule "no data", which noDataState OK would
    resolve: `or on() vector(0)` answers a label-less 0 instead, and the template prints UNKNOWN.
    """
    expression, label = LOOKUPS[slot]
    ref = GRAFANA_LOOKUP_REFS[slot]
    query = _grafana_query(ref, f"{promql.group('', expression(ALERTS))}\nor on () vector(0)")
    return query, f'{{{{ or (index $values.{ref}.Labels "{label}") "{UNKNOWN}" }}}}'


def grafana_rule(alert: Alert) -> dict[str, object]:
    value = alert.value(1, "$values.A.Value")
    lookups = {slot: _grafana_lookup(slot) for slot in LOOKUPS}
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
    slots = {slot: template for slot, (_, template) in lookups.items()}
    return {
        "uid": alert.uid,
        "title": alert.name,
        "condition": "C",
        "data": [
            _grafana_query("A", alert.grafana_expr or alert.expr, alert.lookback_seconds),
            threshold,
            *(query for query, _ in lookups.values()),
        ],
        # An empty result means "no prompt type is failing", not missing data.
        "noDataState": "OK",
        "execErrState": "Error",
        "for": alert.for_,
        "dashboardUid": DASHBOARD_UID,
        "panelId": alert.panel_id,
        "annotations": _annotations(alert, GRAFANA_RUNBOOK_BASE_URL, value=value, **_label_slots(), **slots),
        "labels": {"severity": alert.severity},
        "isPaused": False,
    }


def grafana_group(name: str = GROUP_NAME, rules: Sequence[Alert] = ALERT_RULES) -> dict[str, object]:
    return {
        "orgId": 1,
        "name": name,
        "folder": GRAFANA_FOLDER,
        "interval": GROUP_INTERVAL,
        "rules": [grafana_rule(alert) for alert in rules],
    }


# --- promtool unit tests ----------------------------------------------------------------------------
# Every expected value holds whichever samples a range selector keeps at its left edge (Prometheus 2
# closed it, 3 opens it): counters grow at a steady rate around the evaluation times, so increase()
# comes out the same exact number, and sparse series are born inside the window (counted whole) or
# change far from its edges.
SERVICE_NAME = "shop"
_MINUTES = 46  # input samples at 0m..45m, one a minute


def _series(
    metric: str, prompt: str, values: Sequence[int | None], error_type: str = "", category: str = ""
) -> dict[str, str]:
    labels = f'{SERVICE}="{SERVICE_NAME}", {PROMPT}="{prompt}"'
    if error_type:
        labels += f', {promql.ERROR_TYPE}="{error_type}"'
    if category:
        labels += f', {promql.CATEGORY}="{category}"'
    text = " ".join("_" if v is None else str(v) for v in values)
    return {"series": f"{metric}{{{labels}}}", "values": text}


def _failed(prompt: str, values: Sequence[int | None], error_type: str, category: str) -> dict[str, str]:
    """The failure counter of one error type, labelled as the instrumentation labels it."""
    return _series(promql.CALLS, prompt, values, error_type, category)


def _counter(events: list[int]) -> list[int | None]:
    """Cumulative count per minute of calls at `events`; absent until the first one, as exported."""
    first = min(events) if events else _MINUTES
    return [None if m < first else sum(1 for e in events if e <= m) for m in range(_MINUTES)]


def _steady(per_minute: int) -> list[int | None]:
    """A counter of `per_minute` calls in every minute from 0m on."""
    return _counter([m for m in range(_MINUTES) for _ in range(per_minute)])


def _last_failure(minutes: list[int], seconds_before: int) -> list[int | None]:
    """The last-failure gauge of one error type that failed `seconds_before` each sample of `minutes`."""
    return [
        max((60 * f - seconds_before for f in minutes if f <= m), default=None)  # type: ignore[type-var]
        for m in range(_MINUTES)
    ]


def _consecutive(outcomes: dict[int, bool]) -> list[int]:
    """The consecutive-failures gauge per minute for calls at minute -> failed."""
    gauge, run = [], 0
    for minute in range(_MINUTES):
        if minute in outcomes:
            run = run + 1 if outcomes[minute] else 0
        gauge.append(run)
    return gauge


def expected_alert(
    alert: Alert, prompt: str, value: str, runbook_base: str, why: tuple[str, str]
) -> dict[str, object]:
    """The alert instance of `prompt` (of service SERVICE_NAME); `why` is its (dominant category, last
    error)."""
    labels = {"severity": alert.severity, SERVICE: SERVICE_NAME, PROMPT: prompt}
    category, last_error = why
    annotations = _annotations(
        alert,
        runbook_base,
        value=value,
        prompt=prompt,
        service=SERVICE_NAME,
        category=category,
        last_error=last_error,
    )
    return {"exp_labels": labels, "exp_annotations": annotations}


def alert_checks(
    eval_time: str, firing: dict[str, list[dict[str, object]]], rules: Sequence[Alert] = ALERT_RULES
) -> list[dict[str, object]]:
    """Every alert of `rules` at `eval_time`: the ones in `firing` with their expected instances, the
    rest none."""
    return [
        {"eval_time": eval_time, "alertname": alert.name, "exp_alerts": firing.get(alert.name, [])}
        for alert in rules
    ]


def _by_name(name: str) -> Alert:
    return next(alert for alert in ALERT_RULES if alert.name == name)


def _sample(value: float, **labels: str) -> dict[str, object]:
    inner = ", ".join(f'{name}="{text}"' for name, text in {SERVICE: SERVICE_NAME, **labels}.items())
    return {"labels": f"{{{inner}}}", "value": value}


def _flaky_case(runbook: str) -> dict[str, object]:
    # Every minute 6 successes and 4 failures, each failure followed by a success: 3 RateLimitError,
    # then an APITimeoutError 10 s before the sample. 40 % fail; mostly rate limits, the last a timeout.
    every_minute = list(range(_MINUTES))
    warning = _by_name("AITrackPromptFailureRateWarning")
    why = ("rate_limit", "APITimeoutError")
    return {
        "name": "40 % of the calls failing: warning fires naming the rate limits and the last timeout",
        "interval": "1m",
        "input_series": [
            _series(promql.CALLS, "summarize", _steady(6)),
            _failed("summarize", _steady(3), "RateLimitError", "rate_limit"),
            _failed("summarize", _steady(1), "APITimeoutError", "timeout"),
            _series(promql.CONSECUTIVE_FAILURES, "summarize", [0] * _MINUTES),
            _series(
                promql.LAST_FAILURE_TIMESTAMP, "summarize", _last_failure(every_minute, 35), "RateLimitError"
            ),
            _series(
                promql.LAST_FAILURE_TIMESTAMP, "summarize", _last_failure(every_minute, 10), "APITimeoutError"
            ),
        ],
        "promql_expr_test": [
            {
                "expr": promql.failure_ratio(ALERTS),
                "eval_time": "40m",
                "exp_samples": [_sample(0.4, **{PROMPT: "summarize"})],
            },
            {  # 3 a minute over the 15m window, exactly: the rate is steady across both edges
                "expr": promql.top_category(ALERTS),
                "eval_time": "40m",
                "exp_samples": [_sample(45, **{PROMPT: "summarize", promql.CATEGORY: "rate_limit"})],
            },
            {  # the latest error type, and when: the timeout 10 s before 40m
                "expr": promql.last_error_type(ALERTS),
                "eval_time": "40m",
                "exp_samples": [
                    _sample(60 * 40 - 10, **{PROMPT: "summarize", promql.ERROR_TYPE: "APITimeoutError"})
                ],
            },
        ],
        "alert_rule_test": alert_checks(
            "40m", {warning.name: [expected_alert(warning, "summarize", "40%", runbook, why)]}
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
            _failed("classify", _counter(list(outcomes)), "NotFoundError", "not_found"),
            _series(promql.CONSECUTIVE_FAILURES, "classify", _consecutive(outcomes)),
            _series(
                promql.LAST_FAILURE_TIMESTAMP, "classify", _last_failure(list(outcomes), 30), "NotFoundError"
            ),
        ],
        "promql_expr_test": [
            {  # all 3 failures, though the NotFoundError series only appeared at 2m, with value 1
                "expr": promql.failed_calls(ALERTS),
                "eval_time": "10m",
                "exp_samples": [_sample(3, **{PROMPT: "classify"})],
            }
        ],
        "alert_rule_test": [
            *alert_checks("4m", {}),  # pending: the gauge reached 3 at 4m, `for` is 1m
            *alert_checks(
                "10m",
                {
                    alert.name: [
                        expected_alert(alert, "classify", "3", runbook, ("not_found", "NotFoundError"))
                    ]
                },
            ),
        ],
    }


def _broken_case(runbook: str) -> dict[str, object]:
    # Every call fails from 0m on: critical ratio and consecutive alerts, not the warning band.
    outcomes = dict.fromkeys(range(31), True)
    critical = _by_name("AITrackPromptFailureRateCritical")
    consecutive = _by_name("AITrackPromptConsecutiveFailures")
    why = ("not_found", "NotFoundError")
    return {
        "name": "every call failing: critical ratio and consecutive alerts, no warning",
        "interval": "1m",
        "input_series": [
            _failed("classify", _counter(list(outcomes)), "NotFoundError", "not_found"),
            _series(promql.CONSECUTIVE_FAILURES, "classify", _consecutive(outcomes)),
            _series(
                promql.LAST_FAILURE_TIMESTAMP, "classify", _last_failure(list(outcomes), 30), "NotFoundError"
            ),
        ],
        "alert_rule_test": alert_checks(
            "30m",
            {
                critical.name: [expected_alert(critical, "classify", "100%", runbook, why)],
                consecutive.name: [expected_alert(consecutive, "classify", "31", runbook, why)],
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
            "alert_rule_test": alert_checks("30m", {}),
        },
        {
            "name": "1 failed call of 1: below the minimum traffic, no alert",
            "interval": "1m",
            "input_series": [
                _failed("rare", _counter(list(single)), "APIConnectionError", "connection"),
                _series(promql.CONSECUTIVE_FAILURES, "rare", _consecutive(single)),
                _series(
                    promql.LAST_FAILURE_TIMESTAMP,
                    "rare",
                    _last_failure(list(single), 30),
                    "APIConnectionError",
                ),
            ],
            "alert_rule_test": alert_checks("10m", {}),
        },
    ]


def promtool_cases(runbook_base: str) -> list[dict[str, object]]:
    cases = (_flaky_case, _consecutive_case, _broken_case)
    return [*(case(runbook_base) for case in cases), *_quiet_cases()]
