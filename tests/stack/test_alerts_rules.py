"""The alert rules read as an on-call engineer needs them: labels, annotations, runbook sections.

Their behaviour on data is tested by promtool and a real Prometheus in test_grafana_prometheus.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_RULES = yaml.safe_load((REPO / "grafana/prometheus/aitrack-rules.yaml").read_text())["groups"][0]
GRAFANA_RULES = yaml.safe_load((REPO / "grafana/provisioning/alerting/aitrack-alerts.yaml").read_text())[
    "groups"
][0]
RUNBOOK = (REPO / "docs/runbook.md").read_text()
ALERTS = {
    "AITrackPromptFailureRateCritical": ("critical", "> 0.5"),
    "AITrackPromptFailureRateWarning": ("warning", "> 0.2 <= 0.5"),
    "AITrackPromptConsecutiveFailures": ("critical", ">= 3"),
}


def prometheus_rule(name: str) -> dict[str, Any]:
    return next(rule for rule in PROMETHEUS_RULES["rules"] if rule["alert"] == name)


def grafana_rule(name: str) -> dict[str, Any]:
    return next(rule for rule in GRAFANA_RULES["rules"] if rule["title"] == name)


def runbook_anchors() -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#{1,6} (.+)$", RUNBOOK, re.M)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_the_three_alerts_exist_in_both_files() -> None:
    assert [r["alert"] for r in PROMETHEUS_RULES["rules"]] == list(ALERTS)
    assert [r["title"] for r in GRAFANA_RULES["rules"]] == list(ALERTS)


@pytest.mark.parametrize("name", ALERTS)
def test_prometheus_rule_has_severity_for_summary_description_runbook(name: str) -> None:
    rule = prometheus_rule(name)
    severity, comparison = ALERTS[name]
    assert rule["labels"] == {"severity": severity}
    assert rule["for"] in ("1m", "5m", "10m")
    assert comparison in rule["expr"]
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    for text in (annotations["summary"], annotations["description"]):
        assert "{{ $labels.gen_ai_prompt_name }}" in text  # names the prompt type
    assert "{{ $labels.job }}" in annotations["description"]  # the service, as the collector labels it


@pytest.mark.parametrize("name", ALERTS)
def test_grafana_rule_mirrors_the_prometheus_rule(name: str) -> None:
    rule, twin = grafana_rule(name), prometheus_rule(name)
    assert (rule["for"], rule["labels"]) == (twin["for"], twin["labels"])
    assert rule["condition"] == "C" and rule["noDataState"] == "OK" and rule["execErrState"] == "Error"
    assert rule["dashboardUid"] == "aitrack-ai-call-failures"
    assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
    assert "{{ $labels.gen_ai_prompt_name }}" in rule["annotations"]["summary"]


@pytest.mark.parametrize("name", ALERTS)
def test_runbook_url_points_at_the_section_of_the_alert(name: str) -> None:
    anchor = name.lower()
    assert prometheus_rule(name)["annotations"]["runbook_url"] == f"docs/runbook.md#{anchor}"
    assert grafana_rule(name)["annotations"]["runbook_url"] == f"${{AITRACK_RUNBOOK_BASE_URL}}#{anchor}"
    assert anchor in runbook_anchors()


@pytest.mark.parametrize("name", ALERTS)
def test_alerts_group_by_the_labels_the_collector_writes(name: str) -> None:
    # The collector's Prometheus exporter puts service.name into `job`; no series has `service_name`.
    expr = prometheus_rule(name)["expr"]
    assert set(re.findall(r"\bby \(([^)]*)\)", expr)) == {"job, gen_ai_prompt_name"}
    assert "service_name" not in expr


def test_ratio_alerts_need_the_minimum_traffic() -> None:
    for name in ("AITrackPromptFailureRateCritical", "AITrackPromptFailureRateWarning"):
        assert re.search(r"\)\s*>= 5\n\)$", prometheus_rule(name)["expr"]), name


def test_runbook_documents_the_window_and_the_minimum_traffic() -> None:
    assert "15m" in RUNBOOK and "5 calls" in RUNBOOK
    assert "AITRACK_RUNBOOK_BASE_URL" in RUNBOOK and "--runbook-base-url" in RUNBOOK
