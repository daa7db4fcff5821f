"""The error-budget rules as the generator writes them from grafana/slo.yaml: the SLO file's checks,
the recording rules (public names, order), the burn-rate alerts in both rule files, and another SLO
file generating rules whose promtool tests still pass.

Their behaviour on data: promtool (the cases in aitrack-rules.test.yaml, run by
test_grafana_prometheus.py) and a real Prometheus evaluating the rules file (test_slo_prometheus.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.stack.stack_support import prometheus_tool

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "grafana/prometheus/aitrack-rules.yaml"
GRAFANA_RULES = REPO / "grafana/provisioning/alerting/aitrack-alerts.yaml"
SLO_FILE = REPO / "grafana/slo.yaml"
RUNBOOK = (REPO / "docs/runbook.md").read_text()
TELEMETRY = (REPO / "docs/telemetry.md").read_text()
BUDGET_GROUP = "aitrack-error-budget"
WINDOWS = ("5m", "30m", "1h", "6h", "1d", "3d")
RAW_WINDOWS = ("30m", "1h")  # read every counter's samples; 5m and the long ones read the 5m records
SUMMED_WINDOWS = ("6h", "1d", "3d")
INCREMENTS = ("aitrack:calls:increase5m", "aitrack:failed_calls:increase5m")
# name: (severity, long window, short window, burn rate, for)
BURN_RATE_ALERTS = {
    "AITrackErrorBudgetBurnFast": ("critical", "1h", "5m", "14.4", "2m"),
    "AITrackErrorBudgetBurnSustained": ("critical", "6h", "30m", "6", "15m"),
    "AITrackErrorBudgetBurnSlow": ("warning", "3d", "6h", "1", "3h"),
}


def group(path: Path, name: str = BUDGET_GROUP) -> dict[str, Any]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return next(g for g in groups if g["name"] == name)


def records(path: Path = RULES) -> dict[str, str]:
    return {rule["record"]: rule["expr"] for rule in group(path)["rules"] if "record" in rule}


def generate(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grafana.src.generate", "--root", str(tmp_path), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


# --- The SLO file ---------------------------------------------------------------------------------
def test_slo_file_opens_with_what_it_is_for_and_sets_a_default_and_per_prompt_objectives() -> None:
    text = SLO_FILE.read_text()
    assert text.startswith("# Service-level objectives of otel-aitrack's error-budget (burn-rate) alerts")
    config = yaml.safe_load(text)
    assert config["default_objective"] == 0.99
    assert config["prompt_types"] and all(0 < v < 1 for v in config["prompt_types"].values())


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("default_objective: 99\n", "between 0 and 1, got 99"),
        (
            "default_objective: 0.99\nprompt_types:\n  a: 1.5\n",
            "objective of 'a' must be a number between 0 and 1",
        ),
        ("default_objective: 0.99\nprompt_types:\n  a: 0.9\n  a: 0.95\n", "listed twice: a"),
        ("default_objective: 0.99\nobjectives:\n  a: 0.9\n", "unknown key objectives"),
        ("prompt_types:\n  a: 0.9\n", "expected a mapping with default_objective"),
        ("default_objective: 0.99\nprompt_types: [a, b]\n", "prompt_types must map prompt type names"),
        ("default_objective: '99 %'\n", "between 0 and 1"),
    ],
    ids=["percent-not-ratio", "above-1", "listed-twice", "misspelt-key", "no-default", "a-list", "a-string"],
)
def test_a_mistaken_slo_file_stops_the_generator_and_says_where(
    tmp_path: Path, text: str, complaint: str
) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text("# objectives for a test\n" + text)
    result = generate(tmp_path, "--slo", str(slo))
    assert result.returncode == 2
    assert str(slo) in result.stderr and complaint in result.stderr, result.stderr
    assert not (tmp_path / "grafana").exists()  # nothing half-written


def test_another_slo_file_generates_its_objectives_and_rules_whose_tests_pass(tmp_path: Path) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text("# objectives for a test\ndefault_objective: 0.999\nprompt_types:\n  checkout: 0.95\n")
    assert generate(tmp_path, "--slo", str(slo)).returncode == 0
    rules = tmp_path / RULES.relative_to(REPO)
    objective = records(rules)["aitrack:slo_objective:ratio"]
    assert 'label_replace(vector(0.95), "gen_ai_prompt_name", "checkout", "", "")' in objective
    assert objective.endswith("* 0 + 0.999")  # every other prompt type
    grafana = yaml.safe_load((tmp_path / GRAFANA_RULES.relative_to(REPO)).read_text())
    assert "vector(0.95)" in yaml.safe_dump(grafana) and "vector(0.995)" not in yaml.safe_dump(grafana)
    promtool = prometheus_tool("promtool")
    result = subprocess.run(
        [promtool, "test", "rules", "aitrack-rules.test.yaml"],
        cwd=rules.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The generated cases used this file's objectives: checkout's own, and the default for another.
    names = [
        test["name"]
        for test in yaml.safe_load((rules.parent / "aitrack-rules.test.yaml").read_text())["tests"]
    ]
    own = (
        "checkout's own objective (95.00%) decides its alerts, the default (99.90%) those of answer_question"
    )
    assert any(name.startswith(own) for name in names), names


def test_an_slo_file_without_per_prompt_objectives_gives_every_prompt_type_the_default(
    tmp_path: Path,
) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text("# objectives for a test\ndefault_objective: 0.99\n")
    assert generate(tmp_path, "--slo", str(slo)).returncode == 0
    objective = records(tmp_path / RULES.relative_to(REPO))["aitrack:slo_objective:ratio"]
    assert objective == "group by (gen_ai_prompt_name) (aitrack_calls_total) * 0 + 0.99"


# --- The recording rules ------------------------------------------------------------------------------
def test_the_recording_rules_are_the_documented_ones() -> None:
    expected = [*INCREMENTS, *(f"aitrack:error_ratio:rate{w}" for w in WINDOWS)]
    expected += ["aitrack:slo_objective:ratio", *(f"aitrack:burn_rate:rate{w}" for w in WINDOWS)]
    assert list(records()) == expected
    for name in expected:
        assert f"`{name}`" in TELEMETRY, f"{name} is public API: document it in docs/telemetry.md"
    assert "grafana/slo.yaml" in TELEMETRY


def test_each_rule_reads_only_recordings_above_it_in_its_group() -> None:
    # Rules of a group run in order at one evaluation time: a recording read above its rule is stale.
    seen: set[str] = set()
    for rule in group(RULES)["rules"]:
        read = set(re.findall(r"aitrack:[a-z_]+:[a-z0-9_]+", rule["expr"]))
        assert read <= seen, (rule.get("record") or rule["alert"], read - seen)
        if "record" in rule:
            seen.add(rule["record"])


def _over_the_raw_counters(expr: str, window: str) -> None:
    assert set(re.findall(r"\[(\w+)\]", expr)) == {window}
    assert set(re.findall(r"offset (\w+)", expr)) == {window}
    assert set(re.findall(r"by \(([^)]*)\)", expr)) == {"job, gen_ai_prompt_name"}


def test_the_5m_records_count_all_and_failed_calls_per_service_and_prompt_type() -> None:
    calls, failed = (records()[name] for name in INCREMENTS)
    for expr in (calls, failed):
        _over_the_raw_counters(expr, "5m")
    assert 'error_type!=""' not in calls
    assert 'aitrack_calls_total{error_type!=""}' in failed
    assert failed.endswith("or\naitrack:calls:increase5m * 0")  # 0, not nothing, where none failed


def test_error_ratios_count_failed_and_all_calls_over_their_window_only() -> None:
    for window in RAW_WINDOWS:
        expr = records()[f"aitrack:error_ratio:rate{window}"]
        _over_the_raw_counters(expr, window)
        assert 'aitrack_calls_total{error_type!=""}' in expr  # failed calls over all calls
    assert records()["aitrack:error_ratio:rate5m"] == (
        "aitrack:failed_calls:increase5m\n/\n(\n  aitrack:calls:increase5m > 0\n)"
    )


def test_the_long_error_ratios_sum_the_5m_records_and_read_no_raw_sample() -> None:
    # Over days, the raw counters' every sample is too much to read each minute at fleet scale.
    for window in SUMMED_WINDOWS:
        expr = records()[f"aitrack:error_ratio:rate{window}"]
        assert "aitrack_calls_total" not in expr
        assert expr == (
            f"sum_over_time(aitrack:failed_calls:increase5m[{window}])\n/\n"
            f"(\n  sum_over_time(aitrack:calls:increase5m[{window}]) > 0\n)"
        )


def test_burn_rates_divide_by_one_minus_the_objective_of_the_prompt_type() -> None:
    for window in WINDOWS:
        assert records()[f"aitrack:burn_rate:rate{window}"] == (
            f"aitrack:error_ratio:rate{window}\n/ on (gen_ai_prompt_name) group_left ()\n"
            "(\n  1 - aitrack:slo_objective:ratio\n)"
        )


# --- The alerts ----------------------------------------------------------------------------------------
def burn_alerts(path: Path, key: str) -> dict[str, dict[str, Any]]:
    return {rule[key]: rule for rule in group(path)["rules"] if key in rule}


def test_the_three_burn_rate_alerts_exist_in_both_files_beside_the_threshold_alerts() -> None:
    assert list(burn_alerts(RULES, "alert")) == list(BURN_RATE_ALERTS)
    assert list(burn_alerts(GRAFANA_RULES, "title")) == list(BURN_RATE_ALERTS)
    for path, key in ((RULES, "alert"), (GRAFANA_RULES, "title")):
        threshold = [rule[key] for rule in group(path, "aitrack-ai-call-failures")["rules"]]
        assert threshold == [
            "AITrackPromptFailureRateCritical",
            "AITrackPromptFailureRateWarning",
            "AITrackPromptConsecutiveFailures",
        ]


@pytest.mark.parametrize("name", BURN_RATE_ALERTS)
def test_prometheus_alert_needs_both_windows_above_the_burn_rate(name: str) -> None:
    severity, long, short, factor, for_ = BURN_RATE_ALERTS[name]
    rule = burn_alerts(RULES, "alert")[name]
    both = (f"(\n  aitrack:burn_rate:rate{window} > {factor}\n)" for window in (long, short))
    assert rule["expr"] == "\nand\n".join(both)
    assert (rule["labels"], rule["for"]) == ({"severity": severity}, for_)
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert '{{ $value | printf "%.1f" }}x' in annotations["summary"]
    assert f"over the last {long} and the last {short}" in annotations["description"]
    assert "{{ $labels.job }}" in annotations["description"]
    assert annotations["runbook_url"] == f"docs/runbook.md#{name.lower()}"


@pytest.mark.parametrize("name", BURN_RATE_ALERTS)
def test_grafana_alert_writes_out_what_prometheus_records(name: str) -> None:
    _, long, short, factor, _ = BURN_RATE_ALERTS[name]
    rule, twin = burn_alerts(GRAFANA_RULES, "title")[name], burn_alerts(RULES, "alert")[name]
    assert (rule["for"], rule["labels"]) == (twin["for"], twin["labels"])
    assert rule["condition"] == "C" and rule["noDataState"] == "OK" and rule["execErrState"] == "Error"
    queries = {q["refId"]: q for q in rule["data"]}
    assert set(queries) == {"A", "C", "TopCategory", "LastError"}
    expr = queries["A"]["model"]["expr"]
    assert "aitrack:" not in expr  # Grafana's Prometheus need not load the rules file
    assert f"[{long}]" in expr and f"[{short}]" in expr and f") > {factor}\n" in expr
    assert "vector(0.995)" in expr  # the SLO file's objectives, inline
    assert '{{ printf "%.1f" $values.A.Value }}x' in rule["annotations"]["summary"]
    assert rule["annotations"]["runbook_url"] == f"${{AITRACK_RUNBOOK_BASE_URL}}#{name.lower()}"


# --- What the promtool cases show with the shipped objectives ------------------------------------------
def promtool_case(words: str) -> dict[str, Any]:
    tests = yaml.safe_load((RULES.parent / "aitrack-rules.test.yaml").read_text())["tests"]
    return next(test for test in tests if test["name"].startswith(words))


def firing(case: dict[str, Any]) -> dict[int, dict[str, set[str]]]:
    """minute -> alert -> the prompt types it fires for, of the burn-rate alerts."""
    found: dict[int, dict[str, set[str]]] = {}
    for check in case["alert_rule_test"]:
        if check["alertname"] in BURN_RATE_ALERTS:
            prompts = {a["exp_labels"]["gen_ai_prompt_name"] for a in check["exp_alerts"]}
            found.setdefault(int(check["eval_time"][:-1]), {})[check["alertname"]] = prompts
    return found


def names_firing(case: dict[str, Any]) -> dict[int, list[str]]:
    return {
        m: [name.removeprefix("AITrackErrorBudgetBurn") for name, p in a.items() if p]
        for m, a in firing(case).items()
    }


def test_a_sudden_outage_pages_within_minutes_and_the_page_stops_soon_after_it_ends() -> None:
    # Every call failing from 30m to 50m, on a prompt type with the default objective (99 %).
    seen = names_firing(promtool_case("sudden outage"))
    first_page = min(m for m, names in seen.items() if names)
    assert first_page <= 38 and seen[first_page] == ["Fast"]  # 8 minutes in, the 1h/5m page only
    # The 6h/30m page 15m (its `for`) after its 6h ratio, summed from the 5m records, passes 6x:
    # between 47m and 50m (48m: a minute later than an increase() over the raw counters would).
    sustained = min(m for m, names in seen.items() if "Sustained" in names)
    assert 47 < sustained <= 50 and seen[sustained] == ["Fast", "Sustained"]
    assert seen[54] == ["Sustained"]  # 4 minutes after: the 5m window is clean, the 1h one is not
    assert seen[80] == [] and seen[85] == []  # the 30m window too; no ticket (it would need 3h)


def test_a_slow_trickle_raises_a_ticket_and_never_a_page() -> None:
    seen = names_firing(promtool_case("slow trickle"))
    assert seen == {120: [], 240: ["Slow"]}


def test_a_steady_8x_burn_pages_on_6h_30m_only() -> None:
    assert names_firing(promtool_case("steady burn at 8x")) == {10: [], 20: ["Sustained"]}


def test_a_healthy_prompt_type_never_fires() -> None:
    assert names_firing(promtool_case("healthy: failing")) == {30: [], 240: []}


def test_the_same_failures_page_for_a_stricter_objective_and_not_for_the_default() -> None:
    # 10 % failing: 20x the budget of extract_invoice (99.5 %), 10x the default's (99 %).
    seen = firing(promtool_case("extract_invoice's own objective"))[20]
    assert seen["AITrackErrorBudgetBurnFast"] == {"extract_invoice"}
    assert seen["AITrackErrorBudgetBurnSustained"] == {"extract_invoice", "answer_question"}


def runbook_anchors() -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", RUNBOOK, re.M)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


@pytest.mark.parametrize("name", BURN_RATE_ALERTS)
def test_runbook_says_what_each_burn_rate_alert_means_and_what_to_do_first(name: str) -> None:
    assert name.lower() in runbook_anchors()
    section = RUNBOOK.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
    _, long, short, factor, _ = BURN_RATE_ALERTS[name]
    assert f"{factor}" in section and long in section and short in section
    assert re.search(r"^1\. ", section, re.M), "a first step"
