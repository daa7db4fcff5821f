"""The error-budget rules evaluated by a real Prometheus 3: the rules file loaded as docker-compose.yml
loads it (its groups' interval shortened to 1s), scraping a loopback exporter of known counters.

The counters are born at the first scrape, so every window holds their whole value and each error
ratio, objective and burn rate has one exact answer. Grafana's rules and the dashboard's Error budget
row, which write out what the rules file records, are asked the same questions of the same Prometheus.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml

from grafana.src import traceql
from tests.stack import grafana_frames
from tests.stack.stack_queries import ALL, DASHBOARD, GRAFANA_RULES, RULES, dashboard_targets, substitute
from tests.stack.stack_support import http_get, poll, prometheus_query, running_prometheus

pytestmark = pytest.mark.stack

WINDOWS = ("5m", "30m", "1h", "6h", "1d", "3d")
RECORDED_WITHIN_SECONDS = 60
# (service, prompt type): (successful calls, failed calls). Objectives of grafana/slo.yaml:
# extract_invoice 99.5 %, summarize_ticket 98 %, the rest 99 %.
CALLS = {
    ("shop", "answer_question"): (0, 50),  # every call failing: 100x
    ("shop", "extract_invoice"): (98, 2),  # 2 % at 99.5 %: 4x
    ("billing", "extract_invoice"): (40, 0),  # the same prompt type in another service: healthy
    ("shop", "summarize_ticket"): (100, 0),
    ("shop", "classify_email"): (95, 5),  # 5 % at 99 %: 5x, a ticket's burn rate but no page's
}
OBJECTIVES = {
    "answer_question": 0.99,
    "extract_invoice": 0.995,
    "summarize_ticket": 0.98,
    "classify_email": 0.99,
}
# The burn rate of each, as Prometheus divides: failed / calls / (1 - objective).
BURN_RATES = {key: failed / (ok + failed) / (1 - OBJECTIVES[key[1]]) for key, (ok, failed) in CALLS.items()}
# aitrack.error.fingerprint of the failures: answer_question and classify_email fail in one shared helper.
SHARED, INVOICE, SPANS_ONLY = "a1c4e2f09b3d5867", "b2d5f3a1c0e46978", "c3e6a4b2d1f05789"
FINGERPRINTS = {"answer_question": SHARED, "classify_email": SHARED, "extract_invoice": INVOICE}
PENDING = {  # every burn-rate alert has a `for`, longer than this test
    "AITrackErrorBudgetBurnFast": {("shop", "answer_question")},
    "AITrackErrorBudgetBurnSustained": {("shop", "answer_question")},
    "AITrackErrorBudgetBurnSlow": {
        ("shop", "answer_question"),
        ("shop", "extract_invoice"),
        ("shop", "classify_email"),
    },
}


def exposition() -> str:
    lines = ["# TYPE aitrack_calls_total counter"]
    for (service, prompt), (ok, failed) in CALLS.items():
        base = f'job="{service}",instance="{service}-1",gen_ai_prompt_name="{prompt}"'
        if ok:
            lines.append(f"aitrack_calls_total{{{base}}} {ok}")
        if failed:
            error = 'error_type="RateLimitError",aitrack_error_category="rate_limit"'
            group = f'aitrack_error_fingerprint="{FINGERPRINTS[prompt]}"'
            lines.append(f"aitrack_calls_total{{{base},{error},{group}}} {failed}")
    return "\n".join(lines) + "\n"


class _Exporter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = exposition().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("slo-prometheus")
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
    (workdir / "aitrack-rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    exporter = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    threading.Thread(target=exporter.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["aitrack-rules.yaml"],
        "scrape_configs": [
            {
                "job_name": "aitrack",
                "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{exporter.server_address[1]}"]}],
            }
        ],
    }
    try:
        with running_prometheus(
            workdir, "# the error-budget rules on a loopback exporter\n" + yaml.safe_dump(config)
        ) as base:
            recorded = poll(
                lambda: len(query(base, "aitrack:burn_rate:rate3d")) == len(CALLS), RECORDED_WITHIN_SECONDS
            )
            everything = query(base, '{__name__=~"aitrack:.*"}')
            assert recorded, f"no burn rates within {RECORDED_WITHIN_SECONDS}s: {everything}"
            yield base
    finally:
        exporter.shutdown()
        exporter.server_close()


def query(base: str, expr: str) -> list[dict[str, Any]]:
    return prometheus_query(base, expr)


def by_key(result: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    return {(s["metric"]["job"], s["metric"]["gen_ai_prompt_name"]): float(s["value"][1]) for s in result}


def test_every_rule_of_the_file_evaluates_without_error(prometheus: str) -> None:
    groups = json.loads(http_get(f"{prometheus}/api/v1/rules"))["data"]["groups"]
    rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert len(rules) == 21
    assert {name: rule["health"] for name, rule in rules.items() if rule["health"] != "ok"} == {}


def test_the_objective_of_each_prompt_type_is_its_own_or_the_default(prometheus: str) -> None:
    objectives = {
        s["metric"]["gen_ai_prompt_name"]: float(s["value"][1])
        for s in query(prometheus, "aitrack:slo_objective:ratio")
    }
    assert objectives == OBJECTIVES
    # One series per prompt type, whatever the services: the join of the burn rates needs it so.
    assert all(
        set(s["metric"]) == {"__name__", "gen_ai_prompt_name"}
        for s in query(prometheus, "aitrack:slo_objective:ratio")
    )


@pytest.mark.parametrize("window", WINDOWS)
def test_error_ratio_and_burn_rate_over_each_window(prometheus: str, window: str) -> None:
    ratios = by_key(query(prometheus, f"aitrack:error_ratio:rate{window}"))
    assert ratios == pytest.approx({key: failed / (ok + failed) for key, (ok, failed) in CALLS.items()})
    assert by_key(query(prometheus, f"aitrack:burn_rate:rate{window}")) == pytest.approx(BURN_RATES)


def test_burn_rate_alerts_are_pending_for_exactly_the_prompt_types_burning_fast_enough(
    prometheus: str,
) -> None:
    def pending() -> dict[str, set[tuple[str, str]]] | None:
        alerts = json.loads(http_get(f"{prometheus}/api/v1/alerts"))["data"]["alerts"]
        found: dict[str, set[tuple[str, str]]] = {name: set() for name in PENDING}
        for alert in alerts:
            if alert["labels"]["alertname"] in PENDING:
                assert alert["state"] == "pending", alert
                found[alert["labels"]["alertname"]].add(
                    (alert["labels"]["job"], alert["labels"]["gen_ai_prompt_name"])
                )
        return found if found == PENDING else None

    assert poll(pending, RECORDED_WITHIN_SECONDS), json.loads(http_get(f"{prometheus}/api/v1/alerts"))


def test_grafanas_rules_compute_what_prometheus_records(prometheus: str) -> None:
    grafana = yaml.safe_load(GRAFANA_RULES.read_text())["groups"]
    budget = next(group for group in grafana if group["name"] == "aitrack-error-budget")
    prometheus_rules = next(
        g for g in yaml.safe_load(RULES.read_text())["groups"] if g["name"] == "aitrack-error-budget"
    )
    recorded = {rule["alert"]: rule["expr"] for rule in prometheus_rules["rules"] if "alert" in rule}
    for rule in budget["rules"]:
        inline = next(q["model"]["expr"] for q in rule["data"] if q["refId"] == "A")
        expected = {key for key in CALLS if key in PENDING[rule["title"]]}
        assert set(by_key(query(prometheus, inline))) == expected, rule["title"]
        assert by_key(query(prometheus, inline)) == pytest.approx(
            by_key(query(prometheus, recorded[rule["title"]]))
        )


def dashboard(base: str, title: str, ref: str) -> list[dict[str, Any]]:
    """A Prometheus target of the dashboard, its variables on All, answered by `base`."""
    expr = next(e for t, r, e in dashboard_targets() if t == title and r == ref)
    return query(base, substitute(expr, ALL))


def test_the_dashboards_error_budget_row_agrees_with_the_recordings(prometheus: str) -> None:
    table = "Error budget by prompt type"
    assert by_key(dashboard(prometheus, table, "A")) == {key: OBJECTIVES[key[1]] for key in CALLS}
    # Budget remaining over 30 days: every counter is younger, so it is 1 - the burn rate.
    remaining = {key: 1 - rate for key, rate in BURN_RATES.items()}
    assert by_key(dashboard(prometheus, table, "B")) == pytest.approx(remaining)
    for ref, window in (("C", "1h"), ("D", "6h"), ("E", "3d")):
        recorded = by_key(query(prometheus, f"aitrack:burn_rate:rate{window}"))
        assert by_key(dashboard(prometheus, table, ref)) == pytest.approx(recorded)
    graph = dashboard(prometheus, "Burn rate by prompt type (1h window)", "A")
    assert by_key(graph) == pytest.approx(BURN_RATES)


def test_failure_groups_count_the_failures_of_each_fingerprint(prometheus: str) -> None:
    result = dashboard(prometheus, "Failure groups", "A")
    counts = {s["metric"]["gen_ai_prompt_name"]: float(s["value"][1]) for s in result}
    assert counts == {"answer_question": 50, "extract_invoice": 2, "classify_email": 5}
    assert {s["metric"]["gen_ai_prompt_name"]: s["metric"]["aitrack_error_fingerprint"] for s in result} == (
        FINGERPRINTS
    )


# Tempo's newest failed spans of the groups: none of extract_invoice's (its traces were sampled out),
# one group that Prometheus does not count here (another service's).
SPANS = [
    grafana_frames.Span(
        "7f0c", "s1", 1_000, {traceql.FINGERPRINT: SHARED, traceql.MESSAGE: "Rate limit reached (old)"}
    ),
    grafana_frames.Span(
        "9a3e", "s2", 3_000, {traceql.FINGERPRINT: SHARED, traceql.MESSAGE: "Rate limit reached"}
    ),
    grafana_frames.Span(
        "5d21", "s3", 2_000, {traceql.FINGERPRINT: SPANS_ONLY, traceql.MESSAGE: "Model not found"}
    ),
]


def failure_groups_panel() -> dict[str, Any]:
    board = json.loads(DASHBOARD.read_text())
    return next(panel for panel in board["panels"] if panel["title"] == "Failure groups")


@pytest.mark.parametrize("tempo_first", [False, True], ids=["prometheus-first", "tempo-first"])
def test_failure_groups_table_joins_each_groups_count_with_its_newest_span(
    prometheus: str, tempo_first: bool
) -> None:
    # The frames reach the panel in the order the datasources answer.
    panel = failure_groups_panel()
    frames = [
        grafana_frames.prometheus_table("A", dashboard(prometheus, "Failure groups", "A")),
        grafana_frames.tempo_spans_table(SPANS),
    ]
    frames = frames[::-1] if tempo_first else frames
    (table,) = grafana_frames.transform(frames, panel["transformations"])
    columns = [
        "Fingerprint",
        "Prompt type",
        "error.type",
        "Count",
        "Last message",
        "Last seen",
        "Latest trace",
    ]
    assert [f.display_name for f in table.fields] == columns
    rows = sorted((tuple(row.values()) for row in table.rows()), key=lambda r: (r[0], str(r[1])))
    assert rows == [
        (SHARED, "answer_question", "RateLimitError", 50, "Rate limit reached", 3_000, "9a3e"),
        (SHARED, "classify_email", "RateLimitError", 5, "Rate limit reached", 3_000, "9a3e"),
        (INVOICE, "extract_invoice", "RateLimitError", 2, None, None, None),
        (SPANS_ONLY, None, None, None, "Model not found", 2_000, "5d21"),
    ]


def test_failure_groups_table_shows_the_counts_when_tempo_has_no_span(prometheus: str) -> None:
    # No span matched: Grafana's frame has no attribute fields at all, and the join has one frame.
    frames = [
        grafana_frames.prometheus_table("A", dashboard(prometheus, "Failure groups", "A")),
        grafana_frames.tempo_spans_table([]),
    ]
    (table,) = grafana_frames.transform(frames, failure_groups_panel()["transformations"])
    assert [f.display_name for f in table.fields] == ["Fingerprint", "Prompt type", "error.type", "Count"]
    assert sorted(table.column("Count")) == [2, 5, 50]


def test_latest_trace_link_opens_the_trace_in_explore() -> None:
    overrides = failure_groups_panel()["fieldConfig"]["overrides"]
    (link,) = next(o for o in overrides if o["matcher"]["options"] == "Latest trace")["properties"][0][
        "value"
    ]
    # Grafana fills in the data link's variables: the cell's value, the dashboard's, the time range.
    filled = {"__value.raw": "9a3e", "tempo_datasource": "aitrack-tempo"}
    filled |= {"__from": "1700000000000", "__to": "1700003600000"}
    url = re.sub(r"\$\{([\w.]+)\}", lambda m: filled[m.group(1)], link["url"])
    parsed = urllib.parse.urlsplit(url)
    assert parsed.path == "/explore"
    (left,) = urllib.parse.parse_qs(parsed.query)["left"]
    query = {"refId": "A", "datasource": {"type": "tempo", "uid": "aitrack-tempo"}, "queryType": "traceql"}
    assert json.loads(left) == {
        "datasource": "aitrack-tempo",
        "queries": [{**query, "query": "9a3e"}],
        "range": {"from": "1700000000000", "to": "1700003600000"},
    }
