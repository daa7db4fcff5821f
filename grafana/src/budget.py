"""The error-budget rules: burn-rate recording rules and the SRE Workbook's multi-window alerts.

The Prometheus group records the error ratio, objective and burn rate of every prompt type
(`otel_aitrack/stack/slo.py` holds the PromQL) and alerts on the recorded burn rates; Grafana's group
holds the same alerts written out in full (`slo.Inline`), so they need no recording rules. The
objectives come from grafana/slo.yaml (`slo_config.py`). Rendered by `alerts.py`'s renderers, beside
the threshold alerts, which stay.
"""

from __future__ import annotations

from otel_aitrack.stack import slo
from otel_aitrack.stack.slo import PERIOD, BurnRateAlert, Objectives

from . import alerts
from .alerts import WHY_TEXT, Alert
from .dashboard import BURN_RATE_PANEL_ID

GROUP_NAME = "aitrack-error-budget"
GROUP_INTERVAL = "1m"

# What each alert means for the budget, after "At this rate".
_AT_THIS_RATE = {
    "AITrackErrorBudgetBurnFast": "the whole budget is gone in about two days: page",
    "AITrackErrorBudgetBurnSustained": "the whole budget is gone in five days: page",
    "AITrackErrorBudgetBurnSlow": f"the budget runs out before the {PERIOD} end: a ticket, not a page",
}


def _description(burn: BurnRateAlert) -> str:
    return (
        f"Prompt type {{prompt}} (service {{service}}) failed so often over the last {burn.long_window} "
        f"and the last {burn.short_window} that it spends its error budget {{value}}x as fast as its "
        f"objective allows (more than {burn.factor:g}x on both windows: {burn.budget_spent:.0%} of the "
        f"{PERIOD} budget in {burn.long_window}). At this rate {_AT_THIS_RATE[burn.name]}. "
        f"The objective comes from grafana/slo.yaml ({slo.OBJECTIVE_RECORD}). {WHY_TEXT}"
    )


def _alert(burn: BurnRateAlert, objectives: Objectives) -> Alert:
    return Alert(
        name=burn.name,
        uid=burn.uid,
        severity=burn.severity,
        for_=burn.for_,
        expr=slo.burn_rate_condition(burn, slo.RECORDED),
        summary="AI feature {prompt} burns its error budget {value}x as fast as its objective allows",
        description=_description(burn),
        value_format="times",
        panel_id=BURN_RATE_PANEL_ID,
        grafana_expr=slo.burn_rate_condition(burn, slo.Inline(objectives)),
        lookback_seconds=slo.seconds(burn.long_window),
    )


def budget_alerts(objectives: Objectives) -> tuple[Alert, ...]:
    return tuple(_alert(burn, objectives) for burn in slo.BURN_RATE_ALERTS)


def prometheus_group(objectives: Objectives, runbook_base: str) -> dict[str, object]:
    """Recording rules first: rules of a group run in order, so each alert reads this evaluation's."""
    records = [{"record": name, "expr": expr} for name, expr in slo.recording_rules(objectives)]
    rules = [alerts.prometheus_alert(alert, runbook_base) for alert in budget_alerts(objectives)]
    return {"name": GROUP_NAME, "interval": GROUP_INTERVAL, "rules": [*records, *rules]}


def grafana_group(objectives: Objectives) -> dict[str, object]:
    return alerts.grafana_group(GROUP_NAME, budget_alerts(objectives))
