"""Grafana's dashboard-linter on every dashboard: the real binary, and a port of its rules in Python.

The binary (`dashboard-linter lint --strict`) is the reference; the port re-states the rules of its
default rule set from the linter's documentation, so the dashboards are linted even where the binary
cannot be installed, and it honours the same `.lint` exclusions. The binary's test is skipped when
DASHBOARD_LINTER_BIN is unset and nothing is at the default path, and fails when DASHBOARD_LINTER_BIN
names a missing file. PromQL validity itself (the linter's
target-promql-rule) is proven stronger in test_grafana_prometheus.py: a real Prometheus runs each query.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.stack

DASHBOARDS = Path(__file__).resolve().parents[2] / "grafana/dashboards"
LINTER_INSTALL = (
    "Install Grafana's dashboard-linter (`go install github.com/grafana/dashboard-linter@<version>` where "
    "the Go module proxy serves the module, which the proxy this project's machines reach refuses; else "
    "`go build` in a checkout of the linter) and point DASHBOARD_LINTER_BIN at it."
)


@dataclass(frozen=True)
class Violation:
    rule: str
    panel: str = ""
    target: int | None = None
    message: str = ""


# --- A small PromQL reader: enough to find selectors and what encloses them -------------------------
_TOKEN = re.compile(
    r"""\s*(?:
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<var>\$\{[^}]+\}|\$\w+|\[\[\w+\]\])
  | (?P<number>\d[\w.]*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>==|!=|=~|!~|>=|<=|[-+*/%^<>=@:,(){}\[\]])
)""",
    re.VERBOSE,
)
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS = _GROUPING | {"bool", "offset", "and", "or", "unless", "inf", "nan", "atan2"}


def tokenize(expr: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(expr.rstrip()):
        match = _TOKEN.match(expr, position)
        assert match and match.end() > position, f"cannot read PromQL at {expr[position : position + 30]!r}"
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[tuple[str, str, str], ...]
    range: str | None  # the `[...]` right after it, if any
    enclosing_call: str | None  # the function whose `(` directly precedes it


def _closing(tokens: list[tuple[str, str]], start: int, opening: str, closing: str) -> int:
    depth = 0
    for index in range(start, len(tokens)):
        depth += tokens[index][1] == opening
        depth -= tokens[index][1] == closing
        if depth == 0:
            return index
    raise AssertionError(f"unbalanced {opening}{closing}")


def selectors(expr: str) -> list[Selector]:
    tokens = tokenize(expr)
    found, calls, index = [], [], 0  # calls: the function name (or None) of each open `(`
    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if text == "(":
            previous = tokens[index - 1] if index else ("", "")
            calls.append(previous[1] if previous[0] == "ident" else None)
        elif text == ")":
            calls.pop()
        elif kind == "ident" and text in _GROUPING and following == "(":
            index = _closing(tokens, index + 1, "(", ")")  # a label list, not selectors
        elif (
            kind == "ident" and text not in _KEYWORDS and following not in ("(", "by", "without")
        ) or text == "{":
            start = index
            metric = text if kind == "ident" else ""
            matchers: list[tuple[str, str, str]] = []
            if text == "{" or following == "{":
                opening = index if text == "{" else index + 1
                end = _closing(tokens, opening, "{", "}")
                body = [t for t in tokens[opening + 1 : end] if t[1] != ","]
                matchers = [(body[i][1], body[i + 1][1], body[i + 2][1]) for i in range(0, len(body) - 2, 3)]
                index = end
            selector_range = None
            if index + 1 < len(tokens) and tokens[index + 1][1] == "[":
                end = _closing(tokens, index + 1, "[", "]")
                selector_range = "".join(t[1] for t in tokens[index + 2 : end])
                index = end
            before = tokens[start - 1][1] if start else ""
            enclosing = calls[-1] if calls and before == "(" else None
            found.append(Selector(metric, tuple(matchers), selector_range, enclosing))
        index += 1
    assert not calls, f"unbalanced parentheses in {expr!r}"
    return found


# --- The rules --------------------------------------------------------------------------------------
PANEL_TYPES_WITH_UNITS = {"stat", "singlestat", "graph", "table", "timeseries", "gauge"}
PANEL_TYPES_WITH_DATASOURCE = {"singlestat", "graph", "table", "timeseries"}
VALID_UNITS = {
    "none", "string", "short", "percent", "percentunit", "s", "ms", "µs", "ns", "m", "h", "d", "cps", "ops",
    "reqps", "rps", "cpm", "opm", "rpm", "bytes", "decbytes", "bits", "dateTimeAsIso", "dateTimeFromNow",
    "dateTimeAsLocal", "dtdurations", "dtdurationms", "locale", "sci", "bool",
}  # fmt: skip


def _uid(datasource: Any) -> str:
    return datasource.get("uid", "") if isinstance(datasource, dict) else str(datasource or "")


def _variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return dashboard.get("templating", {}).get("list", [])


def _datasource_variables(dashboard: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["query"] for v in _variables(dashboard) if v.get("type") == "datasource"}


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def _is_prometheus(dashboard: dict[str, Any], target: dict[str, Any]) -> bool:
    """A target queries Prometheus when its datasource variable is of type prometheus."""
    name = _uid(target.get("datasource")).strip("${}").split(":")[0]
    kinds = _datasource_variables(dashboard)
    if name in kinds:
        return kinds[name] == "prometheus"
    first = next(iter(kinds.values()), None)
    return first == "prometheus"


def _query_text(variable: dict[str, Any]) -> str:
    query = variable.get("query", "")
    return query.get("query", "") if isinstance(query, dict) else query


def datasource_variable_rules(dashboard: dict[str, Any]) -> Iterator[Violation]:
    datasource_vars = [v for v in _variables(dashboard) if v.get("type") == "datasource"]
    if not datasource_vars:
        yield Violation("template-datasource-rule", message="no templated datasource")
    only_one = len(datasource_vars) == 1
    for var in datasource_vars:
        plugin = var.get("query", "")
        allowed = {f"{plugin.lower()}_datasource"} | ({"datasource"} if only_one else set())
        if var["name"] not in allowed:
            yield Violation("template-datasource-rule", message=f"{var['name']} should be one of {allowed}")
        labels = {f"{plugin.title()} data source"} | ({"Data source"} if only_one else set())
        if var.get("label") not in labels:
            yield Violation("template-datasource-rule", message=f"{var['name']} label should be in {labels}")


def query_variable_rules(var: dict[str, Any]) -> Iterator[Violation]:
    if var.get("refresh") != 2:
        yield Violation("template-on-time-change-reload", message=f"{var['name']} refresh is not 2")
    functions = "label_names|label_values|metrics|query_result"
    call = re.fullmatch(rf"({functions})\((.*)\)", _query_text(var), re.S)
    if not call:
        yield Violation("template-label-promql-rule", message=f"{var['name']}: {_query_text(var)!r}")
        return
    argument = call.group(2)
    if call.group(1) == "label_values" and "," in argument:
        argument, label = argument.rsplit(",", 1)
        if not re.fullmatch(r"\s*[A-Za-z_]\w*\s*", label):
            yield Violation("template-label-promql-rule", message=f"{var['name']}: bad label {label!r}")
    if call.group(1) != "label_names" and not selectors(argument):
        yield Violation("template-label-promql-rule", message=f"{var['name']}: no selector")


def dashboard_rules(dashboard: dict[str, Any]) -> Iterator[Violation]:
    if dashboard.get("editable", True):
        yield Violation("uneditable-dashboard-rule", message="dashboard is editable")
    yield from datasource_variable_rules(dashboard)
    if next(iter(_datasource_variables(dashboard).values()), None) != "prometheus":
        return
    names = {v.get("name") for v in _variables(dashboard)}
    for required in ("job", "instance"):
        if required not in names:
            yield Violation(f"template-{required}-rule", message=f"no {required} variable")
    for var in _variables(dashboard):
        if var.get("type") == "query":
            yield from query_variable_rules(var)


def panel_rules(dashboard: dict[str, Any], panel: dict[str, Any]) -> Iterator[Violation]:
    title, kind = panel.get("title", ""), panel.get("type")
    if kind in PANEL_TYPES_WITH_DATASOURCE:
        allowed = {f"${name}" for name in _datasource_variables(dashboard)}
        allowed |= {f"${{{name}}}" for name in _datasource_variables(dashboard)}
        if _uid(panel.get("datasource")) not in allowed:
            yield Violation("panel-datasource-rule", title, message=f"uses {panel.get('datasource')}")
    if kind in PANEL_TYPES_WITH_UNITS:
        if not (panel.get("title") and panel.get("description")):
            yield Violation("panel-title-description-rule", title)
        if panel.get("targets") is None:
            yield Violation("panel-no-targets-rule", title)
        field_config = panel.get("fieldConfig", {})
        overrides = [p for o in field_config.get("overrides", []) for p in o.get("properties", [])]
        has_mappings = field_config.get("defaults", {}).get("mappings") or any(
            p["id"] == "mappings" and p.get("value") for p in overrides
        )
        unit_overrides = [p["value"] for p in overrides if p["id"] == "unit"]
        unit = unit_overrides[-1] if unit_overrides else field_config.get("defaults", {}).get("unit", "")
        if not has_mappings and unit not in VALID_UNITS:
            yield Violation("panel-units-rule", title, message=f"unit {unit!r}")


def target_rules(
    dashboard: dict[str, Any], panel: dict[str, Any], index: int, target: dict[str, Any]
) -> Iterator[Violation]:
    if not _is_prometheus(dashboard, target):
        return
    title = panel.get("title", "")
    for found in selectors(target.get("expr", "")):
        if (
            found.range is not None
            and found.enclosing_call in ("rate", "irate")
            and found.range != "$__rate_interval"
        ):
            yield Violation("target-rate-interval-rule", title, index, f"{found.metric}[{found.range}]")
        if found.metric.endswith("_total") and not (
            found.range is not None
            and ":" not in found.range
            and found.enclosing_call in ("rate", "irate", "increase")
        ):
            yield Violation("target-counter-agg-rule", title, index, f"{found.metric} used raw")
        for label in ("job", "instance"):
            if (label, "=~", f'"${label}"') not in found.matchers:
                yield Violation(
                    f"target-{label}-rule", title, index, f'{found.metric} lacks {label}=~"${label}"'
                )


def lint(dashboard: dict[str, Any]) -> list[Violation]:
    violations = list(dashboard_rules(dashboard))
    for panel in _panels(dashboard):
        violations += panel_rules(dashboard, panel)
        for index, target in enumerate(panel.get("targets", []) or []):
            violations += target_rules(dashboard, panel, index, target)
    return violations


def _excluded(violation: Violation, dashboard: str, exclusions: dict[str, Any]) -> bool:
    if violation.rule not in exclusions:
        return False
    entries = (exclusions[violation.rule] or {}).get("entries")
    if not entries:
        return True
    return any(
        entry.get("dashboard", dashboard) == dashboard
        and entry.get("panel", violation.panel) == violation.panel
        and entry.get("targetIdx", violation.target) == violation.target
        for entry in entries
    )


def lint_config() -> dict[str, Any]:
    return yaml.safe_load((DASHBOARDS / ".lint").read_text()) or {}


DASHBOARD_FILES = sorted(DASHBOARDS.glob("*.json"))


# --- The tests ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_passes_the_linter_rules(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    exclusions = lint_config().get("exclusions", {})
    remaining = [v for v in lint(dashboard) if not _excluded(v, dashboard["title"], exclusions)]
    assert remaining == []


def test_every_exclusion_has_a_reason_and_is_still_needed() -> None:
    exclusions = lint_config()["exclusions"]
    dashboards = [json.loads(path.read_text()) for path in DASHBOARD_FILES]
    violations = [(v, d["title"]) for d in dashboards for v in lint(d)]
    for rule, config in exclusions.items():
        assert len(config.get("reason", "")) > 40, f"{rule}: give the reason"
        for entry in config.get("entries", []):
            matches = [v for v, title in violations if _excluded(v, title, {rule: {"entries": [entry]}})]
            assert matches, f"stale exclusion {rule}: {entry}"


def test_the_rules_catch_what_they_are_for() -> None:
    def prometheus_target(expr: str) -> dict[str, Any]:
        return {"datasource": {"uid": "$datasource"}, "expr": expr}

    bad = {
        "title": "bad",
        "editable": True,
        "templating": {
            "list": [
                {"name": "ds", "label": "DS", "type": "datasource", "query": "prometheus"},
                {"name": "pod", "type": "query", "query": "up", "refresh": 1},
            ]
        },
        "panels": [
            {
                "type": "timeseries",
                "title": "no description",
                "datasource": {"uid": "fixed-uid"},
                "fieldConfig": {"defaults": {"unit": "furlongs"}},
                "targets": [
                    prometheus_target('sum(rate(x_total{job=~"$job", instance=~"$instance"}[5m]))'),
                    prometheus_target('x_total{job=~"$job", instance=~"$instance"}'),
                    prometheus_target("sum by (le) (y)"),
                ],
            }
        ],
    }
    assert {v.rule for v in lint(bad)} == {
        "uneditable-dashboard-rule",
        "template-datasource-rule",
        "template-job-rule",
        "template-instance-rule",
        "template-on-time-change-reload",
        "template-label-promql-rule",
        "panel-datasource-rule",
        "panel-title-description-rule",
        "panel-units-rule",
        "target-rate-interval-rule",
        "target-counter-agg-rule",
        "target-job-rule",
        "target-instance-rule",
    }


def test_selector_reader_sees_ranges_calls_and_label_lists() -> None:
    found = selectors(
        'topk by (a, le) (1, increase(m_total{a="x"}[5m]) and m_total offset 5m) / sum by (b) (g)'
    )
    assert found == [
        Selector("m_total", (("a", "=", '"x"'),), "5m", "increase"),
        Selector("m_total", (), None, None),
        Selector("g", (), None, None),  # an aggregation, not a function call
    ]


def _default_linter() -> str:
    """Where `go install` puts the linter, else the name looked up on PATH."""
    go = shutil.which("go")
    if not go:
        return "dashboard-linter"
    gopath = subprocess.run([go, "env", "GOPATH"], capture_output=True, text=True, check=False)
    return str(Path(gopath.stdout.strip()) / "bin/dashboard-linter")


def _installed(path: str) -> bool:
    return bool(shutil.which(path)) or Path(path).is_file()


def linter_binary(environ: Mapping[str, str], default: str) -> str:
    """The linter to run. Absent at its default place: skip (the port above still lints); absent where
    DASHBOARD_LINTER_BIN points: fail, since someone asked for that binary."""
    configured = environ.get("DASHBOARD_LINTER_BIN")
    if configured:
        if not _installed(configured):
            pytest.fail(f"DASHBOARD_LINTER_BIN={configured} not found. {LINTER_INSTALL}")
        return configured
    if not _installed(default):
        pytest.skip(
            f"dashboard-linter not installed: DASHBOARD_LINTER_BIN is unset and {default} is missing "
            "(test_dashboard_passes_the_linter_rules ran the Python port of its rules)"
        )
    return default


def test_linter_is_skipped_only_when_neither_configured_nor_installed(tmp_path: Path) -> None:
    missing = str(tmp_path / "dashboard-linter")
    with pytest.raises(pytest.skip.Exception, match="DASHBOARD_LINTER_BIN is unset"):
        linter_binary({}, missing)
    with pytest.raises(pytest.fail.Exception, match=f"DASHBOARD_LINTER_BIN={missing} not found"):
        linter_binary({"DASHBOARD_LINTER_BIN": missing}, default=sys.executable)
    assert linter_binary({}, sys.executable) == sys.executable
    assert linter_binary({"DASHBOARD_LINTER_BIN": sys.executable}, missing) == sys.executable


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_linter_binary_passes(path: Path) -> None:
    result = subprocess.run(
        [linter_binary(os.environ, _default_linter()), "lint", "--strict", path.name],
        cwd=path.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
