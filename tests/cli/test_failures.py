"""`otel-aitrack failures` against fake Prometheus and Tempo APIs: output, empty windows, unreachable
backends.

The real Prometheus answers the same PromQL in test_failures_prometheus.py (stack tier). No Tempo binary
can be installed here: Tempo's side is its documented search API format (see tests/cli/support.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cli.support import (
    JsonServer,
    free_port,
    group_rows,
    one_line_error,
    run_cli,
    table_rows,
    tempo_trace,
    vector,
    wide_env,
)

JOB = {"job": "support-desk"}
NOW_NS = time.time_ns()
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/invoices.py", line 42, in extract\n'
    "    client.responses.create(model=model, input=text)\n"
    "openai.NotFoundError: Error code: 404 - {'error': {'message': 'The model `gpt-4.1-mini` does not "
    "exist'}}\n"
)


def prometheus_answer(path: str, params: dict[str, str]) -> tuple[int, Any]:
    """Canned instant vectors, told apart by the metric and the shape of the query."""
    query = params["query"]
    prompt = lambda name: {**JOB, "gen_ai_prompt_name": name}  # noqa: E731
    if "aitrack_consecutive_failures" in query:
        return 200, vector(
            (prompt("extract_invoice"), 6), (prompt("classify_email"), 1), (prompt("summarize"), 0)
        )
    if "aitrack_error_category" in query:
        return 200, vector(
            ({**prompt("extract_invoice"), "aitrack_error_category": "not_found"}, 6),
            ({**prompt("classify_email"), "aitrack_error_category": "rate_limit"}, 3.9),
        )
    if "topk" in query:
        return 200, vector(
            ({**prompt("extract_invoice"), "error_type": "NotFoundError"}, 1.7e9),
            ({**prompt("classify_email"), "error_type": "RateLimitError"}, 1.7e9),
        )
    if "aitrack_last_failure_timestamp_seconds" in query:
        return 200, vector(
            (prompt("extract_invoice"), NOW_NS / 1e6), (prompt("classify_email"), NOW_NS / 1e6 - 60000)
        )
    if 'error_type!=""' in query:
        return 200, vector((prompt("extract_invoice"), 6.0), (prompt("classify_email"), 3.9))
    return 200, vector(
        (prompt("extract_invoice"), 6.0), (prompt("classify_email"), 10.2), (prompt("summarize"), 12.0)
    )


def tempo_answer(path: str, params: dict[str, str]) -> tuple[int, Any]:
    if 'span.gen_ai.prompt.name = "extract_invoice"' in params["q"]:
        older = {
            "error.type": "NotFoundError",
            "http.response.status_code": 404,
            "aitrack.request.id": "req_older",
            "aitrack.error.message": "Error code: 404 - older",
            "aitrack.error.traceback": TRACEBACK,
            "aitrack.error.fingerprint": "a1b2c3d4e5f60718",
        }
        latest = {
            **older,
            "aitrack.request.id": "req_latest",
            "aitrack.error.message": "Error code: 404 - latest\nsecond line",
        }
        traces = [
            tempo_trace("1b1ba462b409200d", "8c367283c37587f9", NOW_NS - 120 * 10**9, older, legacy=True),
            tempo_trace("2f3e0cee77ae5dc9c17ade3689eb2e54", "563d623c76514f8e", NOW_NS - 10**9, latest),
        ]
        return 200, {"traces": traces, "metrics": {"inspectedTraces": 2}}
    return 200, {"traces": [], "metrics": {}}


@pytest.fixture
def prometheus() -> Iterator[JsonServer]:
    with JsonServer(prometheus_answer).running() as server:
        yield server


@pytest.fixture
def tempo() -> Iterator[JsonServer]:
    with JsonServer(tempo_answer).running() as server:
        yield server


def test_prompt_types_ranked_by_failure_rate_with_the_dashboards_figures(prometheus: JsonServer) -> None:
    done = run_cli("failures", "--prometheus", prometheus.url)
    assert done.returncode == 0, done.stderr
    assert f"in the last 15m, worst first (Prometheus at {prometheus.url})" in done.stdout
    table = table_rows(done.stdout, columns=9, key=1)
    assert {prompt: row[:7] for prompt, row in table.items()} == {
        "extract_invoice": ["support-desk", "6", "6", "100.0 %", "⚠ 6", "NotFoundError", "not_found"],
        "classify_email": ["support-desk", "10", "4", "38.2 %", "1", "RateLimitError", "rate_limit"],
        "summarize": ["support-desk", "12", "0", "0.0 %", "0", "—", "—"],
    }
    assert list(table) == ["extract_invoice", "classify_email", "summarize"]  # worst first
    assert "Add --tempo URL" in done.stdout
    queries = [params["query"] for _, params in prometheus.requests]
    assert len(queries) == 6 and all("[15m]" in q for q in (*queries[:2], queries[5]))


def test_the_latest_failed_calls_come_from_tempo(prometheus: JsonServer, tempo: JsonServer) -> None:
    done = run_cli(
        "failures", "--prometheus", prometheus.url, "--tempo", tempo.url, "--since", "1h", "--limit", "3"
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"Latest failed calls of extract_invoice (Tempo at {tempo.url})" in out
    latest, older = out.index("req_latest"), out.index("req_older")
    assert latest < older  # latest first, from both the documented and the legacy (spanSet) shape
    assert "Error code: 404 - latest" in out and "second line" not in out
    assert "404" in out and "2f3e0cee77ae5dc9c17ade3689eb2e54" in out
    assert f"Tempo at {tempo.url} has no failed call of classify_email in the last 1h" in out
    assert "Traceback" not in out  # only with --traceback
    searches = [params for path, params in tempo.requests if path == "/api/search"]
    assert [s["q"] for s in searches] == [
        '{ status = error && span.gen_ai.prompt.name = "extract_invoice" } | select(span.error.type, '
        "span.http.response.status_code, span.aitrack.request.id, span.aitrack.error.message, "
        "span.aitrack.error.fingerprint)",
        '{ status = error && span.gen_ai.prompt.name = "classify_email" } | select(span.error.type, '
        "span.http.response.status_code, span.aitrack.request.id, span.aitrack.error.message, "
        "span.aitrack.error.fingerprint)",
    ]
    start, end = int(searches[0]["start"]), int(searches[0]["end"])
    assert 3590 <= end - start <= 3610 and abs(end - time.time()) < 60
    # The latest 200 are read, to group them by fingerprint; the latest 3 are printed.
    assert searches[0]["limit"] == searches[0]["spss"] == "200"


def test_the_failure_groups_of_the_latest_failed_calls_come_from_tempo(
    prometheus: JsonServer, tempo: JsonServer
) -> None:
    done = run_cli(
        "failures", "--prometheus", prometheus.url, "--tempo", tempo.url, "--limit", "1", env=wide_env()
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"Failure groups of extract_invoice in its 2 latest failed calls (Tempo at {tempo.url})" in out
    (group,) = group_rows(out).items()
    fingerprint, (prompt_type, error, count, first_seen, last_seen, message) = group
    assert (fingerprint, prompt_type, error) == ("a1b2c3d4e5f60718", "extract_invoice", "NotFoundError")
    assert count == "2"
    assert first_seen != last_seen  # the older call two minutes before the latest
    assert message == "Error code: 404 - latest"
    assert "req_latest" in out and "req_older" not in out, "--limit 1: the latest call alone is printed"


def test_traceback_prints_each_failed_calls_traceback(prometheus: JsonServer, tempo: JsonServer) -> None:
    done = run_cli(
        "failures",
        "--prometheus",
        prometheus.url,
        "--tempo",
        tempo.url,
        "--prompt-type",
        "extract_invoice",
        "--traceback",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Traceback (most recent call last):") == 2
    assert 'File "/srv/app/invoices.py", line 42, in extract' in done.stdout
    assert "trace 2f3e0cee77ae5dc9c17ade3689eb2e54" in done.stdout
    first = prometheus.requests[0][1]["query"]
    assert 'gen_ai_prompt_name="extract_invoice"' in first
    assert tempo.requests[0][1]["q"].endswith("span.aitrack.error.fingerprint, span.aitrack.error.traceback)")


def test_an_empty_window_says_so_and_exits_0() -> None:
    with JsonServer(lambda path, params: (200, vector())).running() as empty:
        done = run_cli("failures", "--prometheus", empty.url, "--prompt-type", "nobody", "--since", "5m")
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip()
        == f"No AI calls of prompt type nobody in the last 5m (Prometheus at {empty.url})."
    )


def test_an_unreachable_prometheus_is_one_line_and_exit_code_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = run_cli("failures", "--prometheus", url)
    assert done.returncode == 1
    assert one_line_error(done.stderr).startswith(
        f"otel-aitrack failures: cannot reach Prometheus at {url}: "
    )
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            (400, {"status": "error", "errorType": "bad_data", "error": "1:12: parse error: unexpected"}),
            "Prometheus at {url} answered HTTP 400: 1:12: parse error: unexpected",
        ),
        (
            (200, "<html><body>Grafana</body></html>"),
            "Prometheus at {url} did not answer JSON: is it Prometheus?",
        ),
    ],
    ids=["query-error", "not-prometheus"],
)
def test_a_backend_error_is_one_line_and_exit_code_1(answer: tuple[int, Any], expected: str) -> None:
    with JsonServer(lambda path, params: answer).running() as broken:
        done = run_cli("failures", "--prometheus", broken.url)
    assert done.returncode == 1
    assert one_line_error(done.stderr) == "otel-aitrack failures: " + expected.format(url=broken.url)


def test_an_unreachable_tempo_comes_after_the_table_with_exit_code_1(prometheus: JsonServer) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = run_cli("failures", "--prometheus", prometheus.url, "--tempo", url)
    assert done.returncode == 1
    assert "extract_invoice" in done.stdout  # what Prometheus said is still shown
    assert one_line_error(done.stderr).startswith(f"otel-aitrack failures: cannot reach Tempo at {url}: ")
