"""Every dashboard decodes with Grafana's schema types and loses nothing; a misspelt key or a bad enum
in a copy makes the check fail (tests/stack/grafana_schema.py does the reading)."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

if sys.version_info < (3, 11):  # the SDK's own floor; on 3.11+ a missing SDK (the test extra) fails
    pytest.skip("grafana-foundation-sdk needs Python 3.11", allow_module_level=True)

from tests.stack import grafana_schema  # after the skip: it imports the SDK

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "grafana/dashboards").glob("*.json"))
Dashboard = dict[str, Any]


def load(path: Path) -> Dashboard:
    return dict(json.loads(path.read_text()))


def panel(dashboard: Dashboard, title: str) -> dict[str, Any]:
    return next(p for p in dashboard["panels"] if p["title"] == title)


def override(dashboard: Dashboard, column: str) -> dict[str, Any]:
    table = panel(dashboard, "Prompt types")
    return next(o for o in table["fieldConfig"]["overrides"] if o["matcher"]["options"] == column)


def rate_thresholds(dashboard: Dashboard) -> dict[str, Any]:
    """The thresholds of the failure-rate graph: a base step and two rising ones."""
    graph = panel(dashboard, "Failure rate by prompt type (15m window)")
    thresholds: dict[str, Any] = graph["fieldConfig"]["defaults"]["thresholds"]
    return thresholds  # the dashboard's own: mutations change the dashboard


def variable(dashboard: Dashboard, name: str) -> dict[str, Any]:
    return next(v for v in dashboard["templating"]["list"] if v["name"] == name)


def rename(mapping: dict[str, Any], key: str, new: str) -> None:
    mapping[new] = mapping.pop(key)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_what_grafanas_schema_reads(path: Path) -> None:
    assert grafana_schema.problems(load(path)) == []


# Each mutation breaks one thing a real dashboard could get wrong; `expected` is in the problem found.
MUTATIONS: dict[str, tuple[Callable[[Dashboard], None], str]] = {
    "misspelt top-level key": (lambda d: rename(d, "refresh", "refersh"), "dashboard.refersh"),
    "misspelt panel key": (lambda d: rename(d["panels"][1], "gridPos", "gridpos"), "gridpos"),
    "misspelt field config key": (
        lambda d: rename(
            panel(d, "Failure rate by prompt type (15m window)")["fieldConfig"]["defaults"], "unit", "unti"
        ),
        "unti",
    ),
    "misspelt key of a panel's options": (
        lambda d: rename(panel(d, "Prompt types")["options"], "showHeader", "showHeadr"),
        "showHeadr",
    ),
    "misspelt key of a Prometheus query": (
        lambda d: rename(panel(d, "Prompt types")["targets"][0], "legendFormat", "legendFromat"),
        "legendFromat",
    ),
    "misspelt key of a Tempo query": (
        lambda d: rename(panel(d, "Recent failed calls (Tempo)")["targets"][0], "tableType", "tabletype"),
        "tabletype",
    ),
    "misspelt variable field": (
        lambda d: rename(variable(d, "service"), "includeAll", "includeALL"),
        "includeALL",
    ),
    "misspelt override property id": (
        lambda d: override(d, "Calls (15m)")["properties"][0].update(id="decimal"),
        "decimal",
    ),
    "misspelt transformation key": (
        lambda d: rename(panel(d, "Prompt types")["transformations"][1], "options", "option"),
        "option",
    ),
    "unknown panel type": (lambda d: d["panels"][0].update(type="tabel"), "'tabel' is no panel type"),
    "bad value mapping type": (
        lambda d: override(d, "Consecutive failures")["properties"][-2]["value"][0].update(type="valu"),
        "does not decode",
    ),
    "bad threshold mode": (
        lambda d: rate_thresholds(d).update(mode="absolut"),
        "'absolut' is none of",
    ),
    "bad threshold mode in an override": (
        lambda d: override(d, "Failure rate (15m)")["properties"][4]["value"].update(mode="percent"),
        "'percent' is none of",
    ),
    "thresholds out of order": (
        lambda d: rate_thresholds(d)["steps"].reverse(),
        "base",
    ),
    "threshold steps not rising": (
        lambda d: rate_thresholds(d)["steps"][2].update(value=0.1),
        "must rise",
    ),
    "bad colour mode": (
        lambda d: panel(d, "Latency p50 / p95 / p99 by prompt type")["fieldConfig"]["defaults"][
            "color"
        ].update(mode="pallete-classic"),
        "'pallete-classic' is none of",
    ),
    "bad table cell type": (
        lambda d: override(d, "Consecutive failures")["properties"][-1]["value"].update(type="colour-text"),
        "does not decode",
    ),
    "bad variable type": (lambda d: variable(d, "service").update(type="qurey"), "'qurey' is none of"),
    "bad variable refresh": (lambda d: variable(d, "service").update(refresh=5), "5 is none of"),
    "bad variable hide": (lambda d: variable(d, "model").update(hide=3), "3 is none of"),
    "bad variable sort": (lambda d: variable(d, "provider").update(sort=9), "9 is none of"),
    "bad tooltip mode": (lambda d: d.update(graphTooltip=4), "4 is none of"),
    "bad legend placement": (
        lambda d: panel(d, "Token usage by prompt type")["options"]["legend"].update(placement="botom"),
        "'botom' is none of",
    ),
    "misspelt key of a Prometheus query in a mixed panel": (
        lambda d: rename(panel(d, "Failure groups")["targets"][0], "legendFormat", "legendFromat"),
        "legendFromat",
    ),
    "misspelt key of a Tempo query in a mixed panel": (
        lambda d: rename(panel(d, "Failure groups")["targets"][1], "tableType", "tabletype"),
        "tabletype",
    ),
    "query of an unknown datasource type in a mixed panel": (
        lambda d: panel(d, "Failure groups")["targets"][1]["datasource"].update(type="tempoo"),
        "datasource type 'tempoo' unknown",
    ),
    "misspelt key of a row": (
        lambda d: rename(panel(d, "Error budget"), "collapsed", "colapsed"),
        "colapsed",
    ),
    "query of an unknown datasource type": (
        lambda d: panel(d, "Prompt types")["datasource"].update(type="prometeus"),
        "datasource type 'prometeus' unknown",
    ),
}


@pytest.mark.parametrize("name", MUTATIONS)
def test_a_mutated_copy_fails_the_schema_check(name: str) -> None:
    mutate, expected = MUTATIONS[name]
    dashboard = copy.deepcopy(load(DASHBOARDS[0]))
    mutate(dashboard)
    found = grafana_schema.problems(dashboard)
    assert any(expected in problem for problem in found), found
