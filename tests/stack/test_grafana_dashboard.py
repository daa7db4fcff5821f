"""The dashboard JSON and the provisioning files, checked the way Grafana will read them.

Colours and ⚠ marks are checked by re-applying Grafana's own rules to the generated JSON: a value
takes the colour of the highest threshold step whose value is <= it, and the first value mapping
that matches replaces its text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "grafana"
DASHBOARD = json.loads((GRAFANA / "dashboards/ai-call-failures.json").read_text())
FIXED_UIDS = {"prometheus": "aitrack-prometheus", "tempo": "aitrack-tempo"}


def panel(title: str) -> dict[str, Any]:
    return next(p for p in DASHBOARD["panels"] if p["title"] == title)


def override(table: dict[str, Any], column: str) -> dict[str, Any]:
    found = next(o for o in table["fieldConfig"]["overrides"] if o["matcher"]["options"] == column)
    return {prop["id"]: prop["value"] for prop in found["properties"]}


def threshold_colour(steps: list[dict[str, Any]], value: float) -> str:
    """Grafana's getActiveThreshold: the last step (in ascending order) whose value is <= the value."""
    active = steps[0]
    for step in steps[1:]:
        if value >= step["value"]:
            active = step
    return active["color"]


def mapped_text(mappings: list[dict[str, Any]], value: float) -> str | None:
    """Grafana's getValueMappingResult for value and range mappings: first match wins."""
    for mapping in mappings:
        options = mapping["options"]
        if mapping["type"] == "value" and str(int(value) if value.is_integer() else value) in options:
            return options[str(int(value) if value.is_integer() else value)]["text"]
        if mapping["type"] == "range":
            low, high = options["from"], options["to"]
            if (low is None or value >= low) and (high is None or value <= high):
                return options["result"]["text"]
    return None


FAILURE_RATE = override(panel("Prompt types"), "Failure rate (15m)")
CONSECUTIVE = override(panel("Prompt types"), "Consecutive failures")


# --- Failure-rate colours ---------------------------------------------------------------------------
def expected_colour(failed: int, calls: int) -> str:
    """The designed colour, in exact integer arithmetic: red above 1/2, orange above 1/5."""
    return "red" if 2 * failed > calls else "orange" if 5 * failed > calls else "green"


def test_failure_rate_steps_are_strictly_above_20_and_50_percent() -> None:
    steps = FAILURE_RATE["thresholds"]["steps"]
    assert [s["color"] for s in steps] == ["green", "orange", "red"]
    assert FAILURE_RATE["unit"] == "percentunit"
    assert 0.2 < steps[1]["value"] <= 0.2 + 1e-6
    assert 0.5 < steps[2]["value"] <= 0.5 + 1e-6


@pytest.mark.parametrize(
    ("ratio", "colour"),
    [
        (0.0, "green"),
        (0.2, "green"),
        (0.2000001, "orange"),
        (0.4, "orange"),
        (0.5, "orange"),
        (0.5000001, "red"),
        (1.0, "red"),
    ],
)
def test_failure_rate_cell_colour(ratio: float, colour: str) -> None:
    assert threshold_colour(FAILURE_RATE["thresholds"]["steps"], ratio) == colour


def test_every_ratio_of_call_counts_gets_the_colour_of_its_exact_value() -> None:
    # 0.2 is not orange, the next ratio above it is: for every call count up to 100 000, checked
    # at the failure counts next to each threshold (the only places a step could land wrong).
    steps = FAILURE_RATE["thresholds"]["steps"]
    wrong = []
    for calls in range(1, 100_001):
        for edge in (calls // 5, calls // 2):
            for failed in range(max(edge - 1, 0), min(edge + 2, calls) + 1):
                if threshold_colour(steps, failed / calls) != expected_colour(failed, calls):
                    wrong.append((failed, calls))
    assert wrong == []


def test_failure_rate_cell_is_coloured_as_a_background() -> None:
    assert FAILURE_RATE["custom.cellOptions"]["type"] == "color-background"
    assert FAILURE_RATE["color"] == {"mode": "thresholds"}


def test_failure_rate_graph_uses_the_table_steps() -> None:
    graph = panel("Failure rate by prompt type (15m window)")["fieldConfig"]["defaults"]
    assert graph["thresholds"]["steps"] == FAILURE_RATE["thresholds"]["steps"]


# --- Consecutive failures: ⚠ from 3 on ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, None),
        (1, None),
        (2, None),
        (3, "⚠ 3"),
        (6, "⚠ 6"),
        (19, "⚠ 19"),
        (20, "⚠ 20+"),
        (75, "⚠ 50+"),
        (150, "⚠ 100+"),
        (12345, "⚠ 1000+"),
    ],
)
def test_consecutive_failures_show_a_warning_sign_from_3(count: int, text: str | None) -> None:
    assert mapped_text(CONSECUTIVE["mappings"], float(count)) == text


def test_every_count_from_3_maps_to_a_warning_and_no_count_below_does() -> None:
    for count in range(0, 5000):
        text = mapped_text(CONSECUTIVE["mappings"], float(count))
        assert (text is not None and text.startswith("⚠")) == (count >= 3), count


def test_consecutive_failures_turn_red_from_3() -> None:
    steps = CONSECUTIVE["thresholds"]["steps"]
    assert [threshold_colour(steps, v) for v in (0, 2, 3, 40)] == ["green", "green", "red", "red"]
    colours = {m["options"]["result"]["color"] for m in CONSECUTIVE["mappings"] if m["type"] == "range"}
    colours |= {
        o["color"] for m in CONSECUTIVE["mappings"] if m["type"] == "value" for o in m["options"].values()
    }
    assert colours == {"red"}


# --- Table layout -------------------------------------------------------------------------------------
def test_table_has_the_admin_columns_in_order() -> None:
    organize = next(t for t in panel("Prompt types")["transformations"] if t["id"] == "organize")["options"]
    columns = sorted(organize["renameByName"], key=organize["indexByName"].get)
    assert [organize["renameByName"][c] for c in columns] == [
        "Service",
        "Prompt type",
        "Calls (15m)",
        "Failed (15m)",
        "Failure rate (15m)",
        "Consecutive failures",
        "Last error code",
        "Last failure",
    ]
    assert organize["excludeByName"] == {"Time": True, "Value #E": True}


def test_last_failure_is_shown_as_a_time() -> None:
    assert override(panel("Prompt types"), "Last failure")["unit"] == "dateTimeAsIso"
    expr = next(t["expr"] for t in panel("Prompt types")["targets"] if t["refId"] == "F")
    assert "aitrack_last_failure_timestamp_seconds" in expr and expr.endswith("* 1000")


def test_latency_and_token_panels_request_exemplars() -> None:
    for title in ("Latency p50 / p95 / p99 by prompt type", "Token usage by prompt type"):
        assert all(t["exemplar"] for t in panel(title)["targets"]), title


def test_recent_failures_table_is_a_traceql_search_with_the_failure_columns() -> None:
    target = panel("Recent failed calls (Tempo)")["targets"][0]
    assert target["queryType"] == "traceql" and target["tableType"] == "spans"
    assert target["query"].startswith("{ status = error && ")
    assert 'span.gen_ai.prompt.name =~ "${prompt_type:regex}"' in target["query"]
    selected = re.search(r"\| select\((.*)\)$", target["query"]).group(1).split(", ")
    assert {"span.gen_ai.prompt.name", "span.error.type", "span.aitrack.error.message"} <= set(selected)
    assert {"span.http.response.status_code", "span.aitrack.request.id"} <= set(selected)


def test_provider_error_codes_come_from_tempo_and_error_types_from_prometheus() -> None:
    tempo = panel("Failures by provider error code (Tempo)")
    assert tempo["datasource"]["uid"] == "${tempo_datasource}"
    assert "by (span.gen_ai.prompt.name, span.aitrack.error.provider_code)" in tempo["targets"][0]["query"]
    prometheus = panel("Failures by error.type")
    assert "sum by (gen_ai_prompt_name, error_type)" in prometheus["targets"][0]["expr"]


# --- Datasources: variables in the dashboard, fixed uids in provisioning -------------------------------
def _datasource_refs(node: Any) -> list[Any]:
    if isinstance(node, dict):
        refs = [node["datasource"]] if "datasource" in node else []
        return refs + [r for v in node.values() for r in _datasource_refs(v)]
    if isinstance(node, list):
        return [r for item in node for r in _datasource_refs(item)]
    return []


MIXED = {"type": "datasource", "uid": "-- Mixed --"}


def test_every_datasource_reference_is_a_datasource_variable() -> None:
    # Failure groups joins Prometheus and Tempo: Grafana's -- Mixed -- panel, each target its own.
    mixed = [p for p in DASHBOARD["panels"] if p.get("datasource") == MIXED]
    assert [p["title"] for p in mixed] == ["Failure groups"]
    refs = [r for r in _datasource_refs(DASHBOARD) if r != MIXED]
    assert len(refs) > 20
    assert {(r["type"], r["uid"]) for r in refs} == {
        ("prometheus", "${prometheus_datasource}"),
        ("tempo", "${tempo_datasource}"),
    }
    assert [t["datasource"]["type"] for t in mixed[0]["targets"]] == ["prometheus", "tempo"]


def test_datasource_variables_default_to_the_provisioned_uids() -> None:
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"] if v["type"] == "datasource"}
    assert {name: (v["query"], v["current"]["value"]) for name, v in variables.items()} == {
        "prometheus_datasource": ("prometheus", FIXED_UIDS["prometheus"]),
        "tempo_datasource": ("tempo", FIXED_UIDS["tempo"]),
    }


def test_filter_variables_are_label_values_queries_with_all() -> None:
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"] if v["type"] == "query"}
    assert list(variables) == ["service", "provider", "model", "prompt_type"]
    for name, variable in variables.items():
        assert variable["query"]["query"].startswith("label_values(aitrack_calls_total"), name
        assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".*", name


def test_dashboard_uid_and_title_are_fixed() -> None:
    assert (DASHBOARD["uid"], DASHBOARD["title"]) == ("aitrack-ai-call-failures", "AI call failures")


def test_provisioned_datasources_have_the_fixed_uids_and_link_exemplars_to_tempo() -> None:
    config = yaml.safe_load((GRAFANA / "provisioning/datasources/datasources.yaml").read_text())
    by_type = {ds["type"]: ds for ds in config["datasources"]}
    assert {t: ds["uid"] for t, ds in by_type.items()} == FIXED_UIDS
    assert by_type["prometheus"]["jsonData"]["exemplarTraceIdDestinations"] == [
        {"name": "trace_id", "datasourceUid": FIXED_UIDS["tempo"]}
    ]
    tempo = by_type["tempo"]["jsonData"]
    assert tempo["tracesToMetrics"]["datasourceUid"] == FIXED_UIDS["prometheus"]
    assert tempo["serviceMap"]["datasourceUid"] == FIXED_UIDS["prometheus"]


def test_alert_queries_use_the_fixed_prometheus_uid() -> None:
    config = yaml.safe_load((GRAFANA / "provisioning/alerting/aitrack-alerts.yaml").read_text())
    uids = {q["datasourceUid"] for rule in config["groups"][0]["rules"] for q in rule["data"]}
    assert uids == {FIXED_UIDS["prometheus"], "__expr__"}


# --- Provisioning files: environment with defaults, a comment on top ------------------------------------
def _env_defaults() -> dict[str, str]:
    lines = (GRAFANA / "grafana.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _expand(text: str, env: dict[str, str]) -> str:
    """Grafana's provisioning expansion: $VAR and ${VAR} from the environment, `$$` is a literal `$`."""
    return re.sub(
        r"\$\$|\$\{(\w+)\}|\$(\w+)",
        lambda m: "$" if m.group(0) == "$$" else env[m.group(1) or m.group(2)],
        text,
    )


@pytest.mark.parametrize(
    "name",
    ["datasources/datasources.yaml", "dashboards/dashboards.yaml", "alerting/contact-points.yaml"],
)
def test_every_environment_variable_of_provisioning_has_a_default(name: str) -> None:
    text = (GRAFANA / "provisioning" / name).read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    expanded = yaml.safe_load(_expand(body, _env_defaults()))  # KeyError: a variable without default
    assert expanded


def test_datasource_urls_default_to_the_compose_service_names() -> None:
    text = (GRAFANA / "provisioning/datasources/datasources.yaml").read_text()
    config = yaml.safe_load(_expand(text, _env_defaults()))
    assert {ds["uid"]: ds["url"] for ds in config["datasources"]} == {
        "aitrack-prometheus": "http://prometheus:9090",
        "aitrack-tempo": "http://tempo:3200",
    }
    links = config["datasources"][1]["jsonData"]["tracesToMetrics"]["queries"]
    # `$$` survived as one `$`.
    assert all("$__tags}" in link["query"] and "$$" not in link["query"] for link in links)


def test_grafana_alert_annotations_only_use_braced_environment_variables() -> None:
    # Grafana expands only ${VAR} in rule annotations; {{ $labels.x }} must reach the template engine.
    config = yaml.safe_load((GRAFANA / "provisioning/alerting/aitrack-alerts.yaml").read_text())
    for rule in config["groups"][0]["rules"]:
        for text in rule["annotations"].values():
            assert set(re.findall(r"\$\{(\w+)\}", text)) <= set(_env_defaults()), text


def test_dashboard_provider_points_at_the_mounted_dashboards_folder() -> None:
    config = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yaml").read_text())
    provider = config["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/aitrack"
    assert "/var/lib/grafana/dashboards/aitrack" in (GRAFANA / "README.md").read_text()


@pytest.mark.parametrize(
    "path",
    sorted(p for p in GRAFANA.rglob("*") if p.suffix in (".yaml", ".env") or p.name == ".lint"),
    ids=lambda p: str(p.relative_to(GRAFANA)),
)
def test_every_config_file_opens_with_a_comment(path: Path) -> None:
    assert path.read_text().startswith("# "), path
