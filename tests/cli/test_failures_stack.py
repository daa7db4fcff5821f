"""`otel-aitrack failures` against a real Prometheus (stack tier: `-m stack`).

1. Known data: a Prometheus whose storage is backfilled (`promtool tsdb create-blocks-from openmetrics`)
   with AI calls of the last 40 minutes, as the collector's Prometheus exporter names them.
2. Fed by the instrumented app: `otel-aitrack demo` exports over OTLP/HTTP to the built collector,
   Prometheus scrapes the collector every second; `failures` must then show the demo's own figures.
   Tempo cannot be installed here: a stand-in keeps the spans the collector exports and answers
   `/api/search` in Tempo's documented format (traces[].spanSets[].spans[].attributes), matching
   the TraceQL of `failures` (status = error, the prompt type, the selected attributes) itself.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from otel_aitrack.cli.view import clock_time
from tests.cli.support import JsonServer, attribute, cli_env, run_cli, table_rows
from tests.stack.stack_support import (
    OtlpSink,
    poll,
    prometheus_query,
    prometheus_tool,
    running_collector,
    running_prometheus,
    running_sink,
)

pytestmark = pytest.mark.stack

STEP = 15  # seconds between backfilled samples
JOB = "support-desk"


# --- 1. Known data ---------------------------------------------------------------------------------
CATEGORIES = {
    "RateLimitError": "rate_limit",
    "APITimeoutError": "timeout",
    "NotFoundError": "not_found",
    "InternalServerError": "server",
}


def world(now: int) -> list[tuple[str, int, str | None]]:
    """(prompt type, unix time, error type or None) of every call.

    Every series is born inside the window it is read over (15m, or 1h for old_feature), so the
    queries count it whole: the same on Prometheus 2 and 3, whichever samples sit on the edge."""
    at = lambda minute: now + 60 * minute  # noqa: E731
    classify = [None, None, None, "RateLimitError", None, "RateLimitError", None, "RateLimitError", None]
    return [
        *[("summarize_ticket", at(m), None) for m in range(-11, -1)],  # 10 calls, all fine
        *[("classify_email", at(m), e) for m, e in zip(range(-12, -3), classify, strict=True)],
        ("classify_email", at(-3), "APITimeoutError"),  # 10 calls, 4 failed, the last one too
        *[("extract_invoice", at(m), "NotFoundError") for m in range(-8, -2)],  # 6 calls, 6 failed
        ("old_feature", at(-40), None),  # outside the default 15m window
        ("old_feature", at(-35), None),
        ("old_feature", at(-30), "InternalServerError"),
    ]


def labels(**extra: str) -> str:
    base = {"job": JOB, "instance": "desk-1", "service_name": JOB}
    return ",".join(f'{key}="{value}"' for key, value in {**base, **extra}.items())


def series(name: str, label_text: str, changes: list[tuple[int, float]], end: int) -> list[str]:
    """One sample every STEP seconds from the first change up to `end`: the latest value set."""
    first = changes[0][0]
    return [
        f"{name}{{{label_text}}} {[v for at, v in changes if at <= ts][-1]} {ts}"
        for ts in range(first, end + 1, STEP)
    ]


def openmetrics(now: int) -> str:
    calls: dict[str, list[tuple[int, float]]] = {}
    consecutive: dict[str, list[tuple[int, float]]] = {}
    last_failure: dict[str, list[tuple[int, float]]] = {}
    run: dict[str, int] = {}
    for prompt, at, error in sorted(world(now), key=lambda call: call[1]):
        call_labels = {
            "gen_ai_prompt_name": prompt,
            "gen_ai_provider_name": "openai",
            "gen_ai_operation_name": "chat",
        }
        failure = {"error_type": error, "aitrack_error_category": CATEGORIES[error]} if error else {}
        key = labels(**call_labels, **failure)
        calls.setdefault(key, []).append((at, len(calls.get(key, [])) + 1.0))
        run[prompt] = run.get(prompt, 0) + 1 if error else 0
        consecutive.setdefault(labels(gen_ai_prompt_name=prompt), []).append((at, float(run[prompt])))
        if error:  # one series per prompt type and error type, as exported
            last_failure.setdefault(labels(gen_ai_prompt_name=prompt, error_type=error), []).append(
                (at, float(at))
            )
    lines = ["# TYPE aitrack_calls_total unknown"]
    lines += [
        line for key, changes in calls.items() for line in series("aitrack_calls_total", key, changes, now)
    ]
    lines.append("# TYPE aitrack_consecutive_failures gauge")
    for key, changes in consecutive.items():
        lines += series("aitrack_consecutive_failures", key, changes, now)
    lines.append("# TYPE aitrack_last_failure_timestamp_seconds gauge")
    for key, changes in last_failure.items():
        lines += series("aitrack_last_failure_timestamp_seconds", key, changes, now)
    return "\n".join([*lines, "# EOF"]) + "\n"


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real Prometheus holding `world()`; yields its URL and the `now` the world was written for."""
    promtool = prometheus_tool("promtool")
    workdir = tmp_path_factory.mktemp("prometheus-backfilled")
    now = int(time.time()) // STEP * STEP
    (workdir / "world.om").write_text(openmetrics(now))
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
        yield base, now


def rows(output: str) -> dict[str, list[str]]:
    """The table's rows by prompt type: [service, calls, failed, rate, consecutive, last error, top
    category, time]."""
    return table_rows(output, columns=9, key=1)


def clock(unix: int) -> str:
    return clock_time(datetime.fromtimestamp(unix, tz=timezone.utc))


def test_prompt_types_ranked_with_their_figures_over_the_window(backfilled: tuple[str, int]) -> None:
    url, now = backfilled
    done = run_cli("failures", "--prometheus", url)
    assert done.returncode == 0, done.stderr
    table = rows(done.stdout)
    assert list(table) == ["extract_invoice", "classify_email", "summarize_ticket"]  # worst first
    extract = [JOB, "6", "6", "100.0 %", "⚠ 6", "NotFoundError", "not_found", clock(now - 180)]
    assert table["extract_invoice"] == extract
    # 3 rate limits and the last call's timeout: the top category is not the last error's
    classify = [JOB, "10", "4", "40.0 %", "1", "APITimeoutError", "rate_limit", clock(now - 180)]
    assert table["classify_email"] == classify
    assert table["summarize_ticket"] == [JOB, "10", "0", "0.0 %", "0", "—", "—", "—"]


def test_a_wider_window_brings_older_calls_in(backfilled: tuple[str, int]) -> None:
    url, _ = backfilled
    done = run_cli("failures", "--prometheus", url, "--since", "1h")
    assert done.returncode == 0, done.stderr
    assert rows(done.stdout)["old_feature"][1:4] == ["3", "1", "33.3 %"]


def test_one_prompt_type_and_an_empty_window(backfilled: tuple[str, int]) -> None:
    url, _ = backfilled
    one = run_cli("failures", "--prometheus", url, "--prompt-type", "classify_email")
    assert one.returncode == 0, one.stderr
    assert list(rows(one.stdout)) == ["classify_email"]
    empty = run_cli("failures", "--prometheus", url, "--prompt-type", "old_feature", "--since", "10m")
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.startswith("No AI calls of prompt type old_feature in the last 10m")


# --- 2. Fed by the instrumented app: demo -> collector -> Prometheus; spans -> Tempo stand-in ---------
class TempoStandIn:
    """Keeps the spans the collector exports (an OtlpSink) and answers Tempo's search API over them."""

    SELECT = re.compile(r"\|\s*select\((?P<columns>[^)]*)\)")
    PROMPT = re.compile(r'span\.gen_ai\.prompt\.name = "(?P<name>[^"]+)"')

    def __init__(self, sink: OtlpSink) -> None:
        self.sink = sink
        self.queries: list[str] = []
        self.server = JsonServer(self.answer)

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        assert path == "/api/search", path
        query = params["q"]
        self.queries.append(query)
        assert query.startswith("{ status = error && "), query
        prompt = self.PROMPT.search(query)
        select = self.SELECT.search(query)
        assert prompt and select, query
        columns = [c.strip().removeprefix("span.") for c in select["columns"].split(",")]
        start, end = int(params["start"]) * 10**9, int(params["end"]) * 10**9
        traces = []
        for span in self.sink.spans():
            values = {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in span.attributes}
            if span.status.code != 2 or values.get("gen_ai.prompt.name") != prompt["name"]:
                continue
            if not start <= span.start_time_unix_nano <= end:
                continue
            selected = [attribute("status", "error")] + [
                attribute(c, values[c]) for c in columns if c in values
            ]
            found = {"spanID": span.span_id.hex(), "startTimeUnixNano": str(span.start_time_unix_nano)}
            traces.append(
                {
                    "traceID": span.trace_id.hex(),
                    "rootServiceName": "support-desk-e2e",
                    "startTimeUnixNano": str(span.start_time_unix_nano),
                    "spanSets": [{"spans": [{**found, "attributes": selected}], "matched": 1}],
                }
            )
        return 200, {"traces": traces[: int(params["limit"])], "metrics": {"inspectedTraces": len(traces)}}


def scrape_config(port: int) -> str:
    # As backends/prometheus/prometheus.yml scrapes the collector (honor_labels keeps `job`), every second.
    return (
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: aitrack\n"
        "    honor_labels: true\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    )


def test_failures_shows_what_the_demo_recorded(tmp_path: Path) -> None:
    with (
        running_sink() as sink,
        running_collector(
            sink, tmp_path, AITRACK_TRACE_SAMPLE_PERCENT="0", AITRACK_TRACE_DECISION_WAIT="1s"
        ) as c,
        running_prometheus(tmp_path, scrape_config(c.ports["prometheus"])) as prometheus,
    ):
        env = cli_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=c.url("otlp_http"),
            OTEL_SERVICE_NAME="support-desk-e2e",
            OTEL_METRIC_EXPORT_INTERVAL="1000",
        )
        demo = run_cli("demo", "--duration", "4", "--rate", "10", "--seed", "11", env=env)
        assert demo.returncode == 0, demo.stderr
        recorded = table_rows(demo.stdout)
        total = sum(int(row[0]) for row in recorded.values())
        failed = sum(int(row[1]) for row in recorded.values())

        def arrived() -> bool:
            result = prometheus_query(prometheus, 'sum(aitrack_calls_total{job="support-desk-e2e"})')
            return bool(result) and float(result[0]["value"][1]) == total and len(sink.spans()) >= failed

        assert poll(arrived, 30), "the demo's calls and failed spans did not all arrive"
        tempo = TempoStandIn(sink)
        with tempo.server.running():
            done = run_cli(
                "failures", "--prometheus", prometheus, "--tempo", tempo.server.url, "--limit", "2"
            )
    assert done.returncode == 0, done.stderr
    shown = rows(done.stdout)
    assert set(shown) == set(recorded)
    for prompt, (calls, failed_calls, rate, consecutive, *_) in recorded.items():
        assert shown[prompt][:5] == ["support-desk-e2e", calls, failed_calls, rate, consecutive], prompt
    # The latest failed calls: real request ids of the demo's failed spans, through the collector.
    request_ids = {
        kv.value.string_value
        for span in sink.spans()
        for kv in span.attributes
        if kv.key == "aitrack.request.id"
    }
    listed = set(re.findall(r"req_[0-9a-f]{32}", done.stdout))
    assert listed and listed <= request_ids, done.stdout
    assert "Latest failed calls of extract_invoice" in done.stdout
    assert len(tempo.queries) == sum(1 for row in recorded.values() if row[1] != "0")


def test_unreachable_after_the_stack_stops(tmp_path: Path) -> None:
    with running_prometheus(tmp_path, "global: {}\n") as prometheus:
        pass
    done = run_cli("failures", "--prometheus", prometheus)
    assert done.returncode == 1
    assert done.stderr.startswith(f"otel-aitrack failures: cannot reach Prometheus at {prometheus}: ")
    assert len(done.stderr.strip().splitlines()) == 1
