"""The alert rules and every dashboard query, run by the real Prometheus tools on known data.

promtool checks and unit-tests the rules file; a Prometheus started on a loopback port, its storage
backfilled from an OpenMetrics file (`promtool tsdb create-blocks-from openmetrics`), answers every
PromQL expression of the dashboard and of the alerts at one fixed evaluation time.

The expectations hold on Prometheus 2 and 3 alike, whose range selectors differ at the left edge
(closed, then open): no sample sits on a window's edge, and no call happens within a scrape of one.
What remains is increase()'s extrapolation to the edges, the same in both: at most a scrape interval
over 15 minutes (1.7 %). So a count is right within half a call, which a wrong query misses by at least
one call, and a ratio within RATIO_TOLERANCE, where a wrong one misses by more than 0.05.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.stack.stack_queries import (
    ALL,
    DASHBOARD,
    GRAFANA_RULES,
    REPO,
    RULES,
    dashboard_targets,
    grafana_lookups,
    prometheus_alert_exprs,
    substitute,
)
from tests.stack.stack_support import http_get, prometheus_query, prometheus_tool, running_prometheus

pytestmark = pytest.mark.stack

RULE_TESTS = REPO / "grafana/prometheus/aitrack-rules.test.yaml"
DATASOURCES = REPO / "grafana/provisioning/datasources/datasources.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    return prometheus_tool("promtool")


# --- promtool on the rules file -------------------------------------------------------------------
def test_promtool_check_rules_accepts_the_rules_file(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    groups = yaml.safe_load(RULES.read_text())["groups"]
    # 3 threshold alerts; the 5m calls and failed calls, 6 error ratios, the objectives, 6 burn rates
    # and 3 burn-rate alerts.
    assert [len(group["rules"]) for group in groups] == [3, 18]
    assert "SUCCESS: 21 rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_hosted_runbook_base_url_regenerates_rules_that_still_pass(promtool: str, tmp_path: Path) -> None:
    base = "https://docs.invalid/otel-aitrack/runbook.md"
    generated = subprocess.run(
        [sys.executable, "-m", "grafana.src.generate", "--root", str(tmp_path), "--runbook-base-url", base],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert generated.returncode == 0, generated.stderr
    folder = tmp_path / RULES.relative_to(REPO).parent
    rules = yaml.safe_load((folder / RULES.name).read_text())["groups"][0]["rules"]
    assert all(rule["annotations"]["runbook_url"].startswith(base + "#") for rule in rules)
    result = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name], cwd=folder, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_tests_cover_warning_critical_consecutive_and_healthy() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing = {
        (check["alertname"], alert["exp_labels"]["gen_ai_prompt_name"], check["eval_time"])
        for test in tests
        for check in test.get("alert_rule_test", [])
        for alert in check["exp_alerts"]
    }
    silent = {
        (check["alertname"], check["eval_time"], test["name"])
        for test in tests
        for check in test.get("alert_rule_test", [])
        if not check["exp_alerts"]
    }
    assert ("AITrackPromptFailureRateWarning", "summarize", "40m") in firing  # 2 of 5 failing
    assert any(name == "AITrackPromptFailureRateCritical" and "40 %" in t for name, _, t in silent)
    assert ("AITrackPromptConsecutiveFailures", "classify", "10m") in firing
    threshold_alerts = {"AITrackPromptFailureRateCritical", "AITrackPromptFailureRateWarning"}
    threshold_alerts.add("AITrackPromptConsecutiveFailures")
    # all three rules silent on a healthy feature
    assert sum("healthy" in t for name, _, t in silent if name in threshold_alerts) == 3


# --- A known world, written as OpenMetrics ----------------------------------------------------------
T = 1_700_000_000  # evaluation time of every query (unix seconds)
STEP = 15  # scrape interval of the backfilled samples
LAST_SCRAPE = T - 7  # samples at T - 7 - 15k: none on a window edge (T - 15m, T - 1h) nor at T
START = T - 60 * 60
CALL_TOLERANCE = 0.5  # calls: extrapolation adds at most 0.26 of a call here; a wrong query 1 or more
RATIO_TOLERANCE = 0.01
CATEGORIES = {
    "RateLimitError": "rate_limit",
    "APITimeoutError": "timeout",
    "NotFoundError": "not_found",
    "APIConnectionError": "connection",
}
SERVICE = "shop"
BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0)


def fingerprint(prompt: str, error: str) -> str:
    """aitrack.error.fingerprint of the fixture's failures: each prompt type fails from its own code."""
    return hashlib.sha256(f"{prompt}/{error}".encode()).hexdigest()[:16]


INPUT_TOKENS, OUTPUT_TOKENS = 100, 40


@dataclass(frozen=True)
class Call:
    minute: int  # relative to T
    prompt: str
    error: str = ""
    model: str = "gpt-4o-mini"
    seconds: float = 0.8
    first_chunk: float | None = None  # a streamed call: seconds to its first chunk

    @property
    def at(self) -> int:
        return T + 60 * self.minute


def _world() -> list[Call]:
    # Calls at whole minutes before T, none at -15m or -60m (the windows' edges) nor at T.
    summarize = [Call(-50, "summarize", first_chunk=1.2)]  # streamed
    summarize += [Call(m, "summarize") for m in (-45, -40, -35, -14, -13, -10, -9, -6, -5)]
    rate_limited = (-38, -36, -33, -12, -11, -8)
    summarize += [Call(m, "summarize", "RateLimitError", seconds=0.2) for m in rate_limited]
    # A stream whose first chunk came after 1.2 s, and then the client timed out.
    summarize += [Call(-3, "summarize", "APITimeoutError", seconds=30.0, first_chunk=1.2)]
    classify = [Call(m, "classify", "NotFoundError", model="gpt-5-nonexistent") for m in range(-12, 0, 2)]
    translate = [Call(m, "translate", first_chunk=0.3) for m in range(-59, 0)]  # streamed
    rare = [Call(-7, "rare", "APIConnectionError", seconds=2.0)]
    return sorted(summarize + classify + translate + rare, key=lambda call: call.at)


WORLD = _world()
# What the fixture means over the 15m window ending at T, per prompt type.
EXPECTED = {
    #            calls failed ratio consecutive last error            last failure (minutes)
    "summarize": (10, 4, 0.4, 1, "APITimeoutError", -3),
    "classify": (6, 6, 1.0, 6, "NotFoundError", -2),
    "translate": (14, 0, 0.0, 0, None, None),
    "rare": (1, 1, 1.0, 1, "APIConnectionError", -7),
}
# The failure category with the most failed calls in the window: the alerts' annotations name it.
TOP_CATEGORY = {"summarize": "rate_limit", "classify": "not_found", "rare": "connection"}


PEER = {
    "gen_ai_provider_name": "openai",
    "gen_ai_operation_name": "chat",
    "gen_ai_request_model": "gpt-4o-mini",
}


def _labels(**labels: str) -> str:
    # As the collector's exporter writes them: job = service.name, instance = service.instance.id.
    base = {"job": SERVICE, "instance": "3f2b8c1e-5d4a-4e7b-9c61-0a8d2f4b7e19"}
    return ",".join(f'{k}="{v}"' for k, v in {**base, **labels}.items())


def _call_labels(call: Call) -> dict[str, str]:
    labels = {
        "gen_ai_prompt_name": call.prompt,
        "gen_ai_provider_name": "openai",
        "gen_ai_operation_name": "chat",
        "gen_ai_request_model": call.model,
    }
    if not call.error:
        return labels
    return {
        **labels,
        "error_type": call.error,
        "aitrack_error_category": CATEGORIES[call.error],
        "aitrack_error_fingerprint": fingerprint(call.prompt, call.error),
    }


def _grid(first: int) -> range:
    """Scrape timestamps from the first one at or after `first` up to LAST_SCRAPE (series appear
    when born)."""
    return range(LAST_SCRAPE - (LAST_SCRAPE - first) // STEP * STEP, LAST_SCRAPE + 1, STEP)


def _counter_lines(name: str, series: dict[str, list[tuple[int, float]]]) -> list[str]:
    lines = [f"# TYPE {name} unknown"]
    for labels, events in series.items():
        for ts in _grid(min(at for at, _ in events)):
            lines.append(f"{name}{{{labels}}} {sum(v for at, v in events if at <= ts)} {ts}")
    return lines


def _group(calls: list[Call], extra: dict[str, str] | None = None) -> dict[str, list[Call]]:
    groups: dict[str, list[Call]] = {}
    for call in calls:
        groups.setdefault(_labels(**_call_labels(call), **(extra or {})), []).append(call)
    return groups


def _histogram_lines(name: str, observations: dict[str, list[tuple[int, float]]]) -> list[str]:
    buckets = {}
    for labels, obs in observations.items():
        for le in (*BUCKETS, float("inf")):
            bound = "+Inf" if le == float("inf") else repr(le)
            buckets[f'{labels},le="{bound}"'] = [(at, 1.0 if value <= le else 0.0) for at, value in obs]
    counts = {labels: [(at, 1.0) for at, _ in obs] for labels, obs in observations.items()}
    return [
        *_counter_lines(f"{name}_bucket", buckets),
        *_counter_lines(f"{name}_sum", observations),
        *_counter_lines(f"{name}_count", counts),
    ]


def _gauge_lines(name: str, values: dict[str, list[tuple[int, float]]]) -> list[str]:
    """Gauges that change at event times; `values` lists (time, new value) per series."""
    lines = [f"# TYPE {name} unknown"]
    for labels, changes in values.items():
        for ts in _grid(changes[0][0]):
            current = [v for at, v in changes if at <= ts][-1]
            lines.append(f"{name}{{{labels}}} {current} {ts}")
    return lines


# Labels a stream's chunk measurements never have: only the end of a call knows them.
END_ONLY = ("error_type", "aitrack_error_category", "aitrack_error_fingerprint")


def openmetrics() -> str:
    calls = {k: [(c.at, 1.0) for c in v] for k, v in _group(WORLD).items()}
    durations = {k: [(c.at, c.seconds) for c in v] for k, v in _group(WORLD).items()}
    successes = [c for c in WORLD if not c.error]
    tokens = {}
    for token_type, count in (("input", INPUT_TOKENS), ("output", OUTPUT_TOKENS)):
        for labels, group in _group(successes, {"gen_ai_token_type": token_type}).items():
            tokens[labels] = [(c.at, float(count)) for c in group]
    # Another OpenAI instrumentation beside ours writes the same semconv histograms, without a prompt
    # type (docs/coexistence.md): slow calls, many tokens, which must not reach the dashboard.
    durations[_labels(**PEER)] = [(c.at, 60.0) for c in successes]
    tokens[_labels(**PEER, gen_ai_token_type="input")] = [(c.at, 99_999.0) for c in successes]
    streamed = [c for c in WORLD if c.first_chunk is not None]
    first_chunks: dict[str, list[tuple[int, float]]] = {}
    for call in streamed:  # the duration's labels but error.type, which only the end of a call knows
        labels = {k: v for k, v in _call_labels(call).items() if k not in END_ONLY}
        first_chunks.setdefault(_labels(**labels), []).append((call.at, call.first_chunk or 0.0))
    first_chunks[_labels(**PEER)] = [(c.at, 9.0) for c in streamed]
    consecutive: dict[str, list[tuple[int, float]]] = {}
    last_failure: dict[str, list[tuple[int, float]]] = {}
    runs: dict[str, int] = {}
    for call in WORLD:
        key = _labels(gen_ai_prompt_name=call.prompt)
        runs[call.prompt] = runs.get(call.prompt, 0) + 1 if call.error else 0
        consecutive.setdefault(key, []).append((call.at, float(runs[call.prompt])))
        if call.error:  # one series per prompt type and error type, from its first failure on
            failed = _labels(gen_ai_prompt_name=call.prompt, error_type=call.error)
            last_failure.setdefault(failed, []).append((call.at, float(call.at)))
    lines = [
        *_counter_lines("aitrack_calls_total", calls),
        *_gauge_lines("aitrack_consecutive_failures", consecutive),
        *_gauge_lines("aitrack_last_failure_timestamp_seconds", last_failure),
        *_histogram_lines("gen_ai_client_operation_duration_seconds", durations),
        *_histogram_lines("gen_ai_client_token_usage", tokens),
        *_histogram_lines("gen_ai_client_operation_time_to_first_chunk_seconds", first_chunks),
        "# EOF",
    ]
    return "\n".join(lines) + "\n"


# --- A real Prometheus ------------------------------------------------------------------------------
def _get(url: str) -> Any:
    return json.loads(http_get(url))


@pytest.fixture(scope="module")
def prometheus(promtool: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("prometheus")
    (workdir / "world.om").write_text(openmetrics())
    backfill = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "world.om", "data"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert backfill.returncode == 0, backfill.stdout + backfill.stderr
    config = "# no scrape targets: the data is backfilled\nglobal: {}\n"
    with running_prometheus(workdir, config, "--storage.tsdb.retention.time=100y") as base:
        yield base


def query(base: str, expr: str) -> list[dict]:
    return prometheus_query(base, expr, at=T)


def by_prompt(result: list[dict]) -> dict[str, float]:
    return {s["metric"]["gen_ai_prompt_name"]: float(s["value"][1]) for s in result}


# --- The dashboard's queries ------------------------------------------------------------------------
ONE = {"service": "shop", "provider": "openai", "model": "gpt-4o-mini", "prompt_type": "summarize"}
# What Grafana sends for a multi-value selection: a regex group.
SOME = {**ALL, "model": "(gpt-4o-mini|gpt-5-nonexistent)", "prompt_type": "(summarize|classify)"}


def target(title: str, ref: str) -> str:
    return next(expr for t, r, expr in dashboard_targets() if t == title and r == ref)


TABLE = "Prompt types"


@pytest.mark.parametrize("values", [ALL, ONE, SOME], ids=["all", "one-value-each", "multi-value"])
def test_every_dashboard_query_runs_and_returns_data(prometheus: str, values: dict[str, str]) -> None:
    targets = dashboard_targets()
    assert len(targets) == 21
    for title, ref, expr in targets:
        assert query(prometheus, substitute(expr, values)), f"no data: {title} / {ref}"


def test_variable_queries_list_the_fixture_labels(prometheus: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    found = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        inner = re.fullmatch(r"label_values\((.*), (\w+)\)", variable["query"]["query"])
        assert inner, variable["query"]
        selector = substitute(inner.group(1), ALL)
        params = urllib.parse.urlencode({"match[]": selector, "start": START, "end": T})
        body = _get(f"{prometheus}/api/v1/label/{inner.group(2)}/values?{params}")
        found[variable["name"]] = set(body["data"])
    assert found == {
        "service": {"shop"},
        "provider": {"openai"},
        "model": {"gpt-4o-mini", "gpt-5-nonexistent"},
        "prompt_type": {"summarize", "classify", "translate", "rare"},
    }


def test_table_counts_calls_failures_and_failure_rate_per_prompt_type(prometheus: str) -> None:
    calls = by_prompt(query(prometheus, substitute(target(TABLE, "A"), ALL)))
    failed = by_prompt(query(prometheus, substitute(target(TABLE, "B"), ALL)))
    ratio = by_prompt(query(prometheus, substitute(target(TABLE, "C"), ALL)))
    for prompt, (n_calls, n_failed, expected_ratio, *_rest) in EXPECTED.items():
        assert calls[prompt] == pytest.approx(n_calls, abs=CALL_TOLERANCE), prompt
        assert failed.get(prompt, 0) == pytest.approx(n_failed, abs=CALL_TOLERANCE), prompt
        assert ratio[prompt] == pytest.approx(expected_ratio, abs=RATIO_TOLERANCE), prompt


def test_first_failure_of_a_new_error_type_is_counted(prometheus: str) -> None:
    # APITimeoutError of summarize exists only since T-3m, with value 1: increase() alone would say 0.
    result = query(prometheus, substitute(target("Failures by error.type", "A"), ALL))
    failures = {
        (s["metric"]["gen_ai_prompt_name"], s["metric"]["error_type"]): float(s["value"][1]) for s in result
    }
    # Every series of the fixture was born inside the hour: counted whole, exactly.
    assert failures == {
        ("summarize", "RateLimitError"): 6,
        ("summarize", "APITimeoutError"): 1,
        ("classify", "NotFoundError"): 6,
        ("rare", "APIConnectionError"): 1,
    }


def test_failure_groups_count_each_fingerprint(prometheus: str) -> None:
    result = query(prometheus, substitute(target("Failure groups", "A"), ALL))
    groups = {
        (
            s["metric"]["gen_ai_prompt_name"],
            s["metric"]["error_type"],
            s["metric"]["aitrack_error_fingerprint"],
        ): (float(s["value"][1]))
        for s in result
    }
    counts = {("summarize", "RateLimitError"): 6, ("summarize", "APITimeoutError"): 1}
    counts |= {("classify", "NotFoundError"): 6, ("rare", "APIConnectionError"): 1}
    assert groups == {(p, e, fingerprint(p, e)): n for (p, e), n in counts.items()}


def test_failures_by_category_tell_the_causes_apart(prometheus: str) -> None:
    result = query(prometheus, substitute(target("Failures by category", "A"), ALL))
    failures = {
        (s["metric"]["gen_ai_prompt_name"], s["metric"]["aitrack_error_category"]): float(s["value"][1])
        for s in result
    }
    assert failures == {
        ("summarize", "rate_limit"): 6,
        ("summarize", "timeout"): 1,
        ("classify", "not_found"): 6,
        ("rare", "connection"): 1,
    }


def test_table_consecutive_failures_last_error_code_and_last_failure(prometheus: str) -> None:
    consecutive = by_prompt(query(prometheus, substitute(target(TABLE, "D"), ALL)))
    last_error = {
        s["metric"]["gen_ai_prompt_name"]: s["metric"]["error_type"]
        for s in query(prometheus, substitute(target(TABLE, "E"), ALL))
    }
    last_failure = by_prompt(query(prometheus, substitute(target(TABLE, "F"), ALL)))
    for prompt, (*_counts, run, error, failed_at) in EXPECTED.items():
        assert consecutive[prompt] == run, prompt
        assert last_error.get(prompt) == error, prompt
        expected_ms = None if failed_at is None else (T + 60 * failed_at) * 1000
        assert last_failure.get(prompt) == expected_ms, prompt


def test_last_error_code_is_the_most_recent_not_the_most_frequent(prometheus: str) -> None:
    # summarize failed 4 times with RateLimitError, then once (last) with APITimeoutError.
    result = query(prometheus, substitute(target(TABLE, "E"), ONE))
    assert [s["metric"]["error_type"] for s in result] == ["APITimeoutError"]


def test_failure_rate_panel_uses_the_tables_expression(prometheus: str) -> None:
    assert target("Failure rate by prompt type (15m window)", "A") == target(TABLE, "C")
    params = urllib.parse.urlencode(
        {"query": substitute(target(TABLE, "C"), ALL), "start": T - 1800, "end": T, "step": 60}
    )
    series = _get(f"{prometheus}/api/v1/query_range?{params}")["data"]["result"]
    last = {s["metric"]["gen_ai_prompt_name"]: float(s["values"][-1][1]) for s in series}
    assert last == pytest.approx({p: e[2] for p, e in EXPECTED.items()}, abs=RATIO_TOLERANCE)


def test_latency_percentiles_and_token_usage(prometheus: str) -> None:
    p50 = by_prompt(query(prometheus, substitute(target("Latency p50 / p95 / p99 by prompt type", "A"), ALL)))
    assert 0.5 < p50["translate"] <= 1.0  # every translate call took 0.8 s
    tokens = query(prometheus, substitute(target("Token usage by prompt type", "A"), ALL))
    per_minute = {
        (s["metric"]["gen_ai_prompt_name"], s["metric"]["gen_ai_token_type"]): float(s["value"][1])
        for s in tokens
    }
    # translate's calls at -4m..-1m are in the 5m rate window (-5m is its edge): 4 calls in 5 minutes,
    # extrapolated by at most a scrape interval (5 %).
    assert per_minute[("translate", "input")] == pytest.approx(4 * INPUT_TOKENS / 5, rel=0.06)
    assert per_minute[("translate", "output")] == pytest.approx(4 * OUTPUT_TOKENS / 5, rel=0.06)


def test_time_to_first_chunk_p95_is_the_streamed_calls_only(prometheus: str) -> None:
    series = query(prometheus, substitute(target("Time to first chunk p95 by prompt type", "A"), ALL))
    p95 = by_prompt(series)
    assert set(p95) == {"translate", "summarize"}, "only streamed calls have a time to first chunk"
    assert 0.1 < p95["translate"] <= 0.5  # every first chunk took 0.3 s: the (0.1, 0.5] bucket
    assert 1.0 < p95["summarize"] <= 2.5  # its one stream in the window: 1.2 s, a failed call's too


def test_latency_and_tokens_leave_out_another_instrumentations_histograms(prometheus: str) -> None:
    for panel in (
        "Latency p50 / p95 / p99 by prompt type",
        "Token usage by prompt type",
        "Time to first chunk p95 by prompt type",
    ):
        series = query(prometheus, substitute(target(panel, "A"), ALL))
        assert series, panel
        assert all(s["metric"].get("gen_ai_prompt_name") for s in series), (panel, series)


# --- The alert rules ----------------------------------------------------------------------------------
def test_grafana_and_prometheus_rules_evaluate_the_same_expressions() -> None:
    grafana = yaml.safe_load(GRAFANA_RULES.read_text())["groups"][0]["rules"]
    exprs = {
        rule["title"]: next(q["model"]["expr"] for q in rule["data"] if q["refId"] == "A") for rule in grafana
    }
    assert exprs == prometheus_alert_exprs()


def test_grafana_alert_lookups_name_the_top_category_and_the_last_error(prometheus: str) -> None:
    last_errors = {prompt: row[4] for prompt, row in EXPECTED.items() if row[4]}
    for name, lookups in grafana_lookups().items():
        assert set(lookups) == {"TopCategory", "LastError"}, name
        top = query(prometheus, lookups["TopCategory"])
        assert {s["metric"]["gen_ai_prompt_name"]: s["metric"]["aitrack_error_category"] for s in top} == (
            TOP_CATEGORY
        )
        last = query(prometheus, lookups["LastError"])
        assert {s["metric"]["gen_ai_prompt_name"]: s["metric"]["error_type"] for s in last} == last_errors


def test_grafana_alert_lookups_answer_a_label_less_zero_when_nothing_failed(prometheus: str) -> None:
    # Before the fixture's first call: an empty lookup would make Grafana call the whole rule
    # "no data" (resolved, with noDataState OK) while its condition may hold.
    for lookups in grafana_lookups().values():
        for expr in lookups.values():
            answer = prometheus_query(prometheus, expr, at=START - 3600)
            assert [(s["metric"], s["value"][1]) for s in answer] == [({}, "0")]


def test_grafana_annotations_read_only_the_rules_own_queries() -> None:
    for rule in yaml.safe_load(GRAFANA_RULES.read_text())["groups"][0]["rules"]:
        refs = {query["refId"] for query in rule["data"]}
        read = set(re.findall(r"\$values\.(\w+)", json.dumps(rule["annotations"])))
        assert read == refs - {"C"}, rule["title"]


def test_every_alert_fires_for_exactly_the_expected_prompt_types(prometheus: str) -> None:
    fired = {name: by_prompt(query(prometheus, expr)) for name, expr in prometheus_alert_exprs().items()}
    assert fired == {
        # rare (1 failed call of 1) stays below the minimum traffic
        "AITrackPromptFailureRateCritical": {"classify": 1.0},
        "AITrackPromptFailureRateWarning": {"summarize": pytest.approx(0.4, abs=RATIO_TOLERANCE)},
        "AITrackPromptConsecutiveFailures": {"classify": 6.0},
    }


def test_alert_expression_matches_the_table_for_the_same_prompt_type(prometheus: str) -> None:
    # The dashboard's ratio for one prompt type equals the value the warning alert reports.
    table = by_prompt(query(prometheus, substitute(target(TABLE, "C"), ONE)))
    alert = by_prompt(query(prometheus, prometheus_alert_exprs()["AITrackPromptFailureRateWarning"]))
    assert table == alert == pytest.approx({"summarize": 0.4}, abs=RATIO_TOLERANCE)


def test_tempo_trace_to_metrics_queries_run(prometheus: str) -> None:
    tempo = yaml.safe_load(DATASOURCES.read_text())["datasources"][1]
    # A span of the fixture's service and prompt type; Grafana maps its attributes to labels.
    span = {"service.name": SERVICE, "gen_ai.prompt.name": "summarize"}
    mapping = tempo["jsonData"]["tracesToMetrics"]["tags"]
    tags = ", ".join(f'{tag["value"]}="{span[tag["key"]]}"' for tag in mapping)
    assert tags == 'job="shop", gen_ai_prompt_name="summarize"'
    results = {}
    for link in tempo["jsonData"]["tracesToMetrics"]["queries"]:
        # Grafana's provisioning turns `$$` into `$`; the Tempo link then fills $__tags.
        expr = link["query"].replace("$$", "$").replace("$__tags", tags)
        results[link["name"]] = query(prometheus, substitute(expr, {}))
        assert results[link["name"]], link["name"]
    failure_rate = by_prompt(results["Failure rate of this prompt type (15m)"])
    assert failure_rate == pytest.approx({"summarize": 0.4}, abs=RATIO_TOLERANCE)
