"""What the Prometheus tests of the stack read from the project's files: the dashboard's and the alert
rules' PromQL as Grafana and Prometheus send it, and backends/prometheus/prometheus.yml pointed at a
collector on loopback ports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "grafana/dashboards/ai-call-failures.json"
RULES = REPO / "grafana/prometheus/aitrack-rules.yaml"
GRAFANA_RULES = REPO / "grafana/provisioning/alerting/aitrack-alerts.yaml"
PROMETHEUS_CONFIG = REPO / "backends/prometheus/prometheus.yml"

# Every template variable on "All", as Grafana sends it.
ALL = {"service": ".*", "provider": ".*", "model": ".*", "prompt_type": ".*"}
# $__rate_interval is at least four scrape intervals and grows with the time range; 5m holds several
# calls of a feature called once a minute.
GLOBALS = {"__rate_interval": "5m", "__interval": "15s", "__range": "1h"}


def substitute(expr: str, values: dict[str, str]) -> str:
    """A panel's PromQL with Grafana's variables filled in."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return {**GLOBALS, **values}[name]

    expanded = re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)
    assert "$" not in expanded, expanded
    return expanded


def dashboard_targets() -> list[tuple[str, str, str]]:
    """(panel title, refId, PromQL) of every Prometheus query of the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["refId"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])  # a row has none
        if target["datasource"]["uid"] == "${prometheus_datasource}"
    ]


def prometheus_alert_exprs() -> dict[str, str]:
    """The threshold alerts (the first group; the error-budget group has tests of its own)."""
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    return {rule["alert"]: rule["expr"] for rule in rules}


def rule_names() -> list[str]:
    """Every rule of the rules file, alerts and recording rules, of every group."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule.get("alert") or rule["record"] for group in groups for rule in group["rules"]]


def grafana_lookups() -> dict[str, dict[str, str]]:
    """Each Grafana rule's queries besides its condition (A) and threshold (C), by refId."""
    rules = yaml.safe_load(GRAFANA_RULES.read_text())["groups"][0]["rules"]
    return {
        rule["title"]: {q["refId"]: q["model"]["expr"] for q in rule["data"] if q["refId"] not in "AC"}
        for rule in rules
    }


def project_prometheus_config(
    targets: dict[str, str], interval: str, rule_files: list[str] | None = None
) -> str:
    """backends/prometheus/prometheus.yml with each job's targets replaced (`job name -> host:port`),
    scraping and evaluating every `interval`, loading `rule_files` if given; the rest as the file has it."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"] = {"scrape_interval": interval, "evaluation_interval": interval}
    if rule_files is not None:
        config["rule_files"] = rule_files
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    return "# generated from backends/prometheus/prometheus.yml by the stack tests\n" + str(
        yaml.safe_dump(config, sort_keys=False)
    )
