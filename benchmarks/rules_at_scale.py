"""How long Prometheus takes to evaluate the shipped rule groups over days of history, at a given count
of `aitrack_calls_total` series: the figure that says whether the error-budget rules keep up with their
1m interval on a fleet.

    python -m benchmarks.rules_at_scale --series 1000 --days 3
    python -m benchmarks.rules_at_scale --rules other-rules.yaml   # another rules file, same data

Backfills `--days` of samples every `--step` seconds (promtool tsdb create-blocks-from openmetrics),
starts the Prometheus 3 release backends/build-prometheus.sh builds on that storage with the rules file,
and prints each group's and each rule's evaluation time from /api/v1/rules: the median over
`--evaluations` evaluations (wall time, on a shared machine: compare rules files in one run, not runs).
The series are prompt types x providers x models x outcomes of several services; each outcome fails
at its own steady rate.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

from otel_aitrack.stack import promql, slo
from tests.stack.stack_support import prometheus_tool, running_prometheus

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "grafana" / "prometheus" / "aitrack-rules.yaml"
_OUTCOMES = (
    ("", "", ""),
    ("RateLimitError", "rate_limit", "9d4a27e6b0c3f815"),
    ("APITimeoutError", "timeout", "5b1f0c9e2d7a4836"),
    ("InternalServerError", "server", "71e8b5d2c9f04a3b"),
)
_MODELS = ("gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash")


def series_labels(count: int) -> Iterator[tuple[dict[str, str], float]]:
    """`count` label sets of aitrack_calls_total, each with its calls per second."""
    made = 0
    prompt = 0
    while True:
        for job in ("checkout", "support", "search"):
            for model in _MODELS:
                for index, (error_type, category, fingerprint) in enumerate(_OUTCOMES):
                    if made == count:
                        return
                    labels = {
                        "job": job,
                        "instance": f"{job}-{prompt % 7}:9464",
                        "gen_ai_prompt_name": f"prompt_{prompt}",
                        "gen_ai_provider_name": "openai",
                        "gen_ai_operation_name": "chat",
                        "gen_ai_request_model": model,
                    }
                    if error_type:
                        labels |= {
                            "error_type": error_type,
                            "aitrack_error_category": category,
                            "aitrack_error_fingerprint": fingerprint,
                        }
                    yield labels, 2.0 if index == 0 else 0.01 * index
                    made += 1
        prompt += 1


def _series(metric: str, labels: dict[str, str]) -> str:
    # Not promql.selector: OpenMetrics takes no space after a label's comma, PromQL's ", " is refused.
    return metric + "{" + ",".join(f'{name}="{value}"' for name, value in labels.items()) + "}"


def write_openmetrics(path: Path, count: int, days: float, step: int, end: int) -> int:
    """The counters, and the 5m increments the error-budget group records every minute (as days of
    evaluations would have left them), so that each rules file reads what it reads in production."""
    start = end - int(days * 86400)
    samples = 0
    per_prompt: dict[tuple[str, str], list[float]] = {}  # (job, prompt type): [calls, failed] a second
    with path.open("w") as out:
        out.write("# TYPE aitrack_calls counter\n")
        for labels, per_second in series_labels(count):
            series = _series(promql.CALLS, labels)
            lines = [f"{series} {int(per_second * (t - start))} {t}\n" for t in range(start, end + 1, step)]
            out.writelines(lines)
            samples += len(lines)
            rates = per_prompt.setdefault((labels["job"], labels[promql.PROMPT]), [0.0, 0.0])
            rates[0] += per_second
            rates[1] += per_second if promql.ERROR_TYPE in labels else 0.0
        for index, record in enumerate((slo.CALLS_RECORD, slo.FAILED_RECORD)):
            out.write(f"# TYPE {record} gauge\n")
            for (job, prompt), rates in per_prompt.items():
                series = _series(record, {"job": job, promql.PROMPT: prompt})
                value = rates[index] * slo.seconds(slo.STEP)
                lines = [f"{series} {value} {t}\n" for t in range(start, end + 1, 60)]
                out.writelines(lines)
                samples += len(lines)
        out.write("# EOF\n")
    return samples


def rule_times(base_url: str) -> dict[str, tuple[float, int, dict[str, float]]]:
    with urllib.request.urlopen(f"{base_url}/api/v1/rules", timeout=30) as answer:
        groups = json.load(answer)["data"]["groups"]
    return {
        g["name"]: (
            g["evaluationTime"],
            len(g["rules"]),
            {r.get("name", ""): r["evaluationTime"] for r in g["rules"]},
        )
        for g in groups
    }


def fast_copy(rules: Path, work: Path) -> Path:
    """The rules file with every group evaluated every 15s: the same work per evaluation, sooner."""
    loaded = yaml.safe_load(rules.read_text())
    for group in loaded["groups"]:
        group["interval"] = "15s"
    copy = work / "rules.yaml"
    copy.write_text(yaml.safe_dump(loaded, sort_keys=False))
    return copy


def measure(rules: Path, data: Path, work: Path, evaluations: int) -> dict[str, list[dict[str, float]]]:
    shutil.copytree(data, work / "data")
    config = (
        "# The benchmark's Prometheus: the rules file only, no scrape.\n"
        f"rule_files:\n  - {fast_copy(rules, work)}\n"
    )
    seen: dict[str, list[dict[str, float]]] = {}
    with running_prometheus(work, config) as base_url:
        last: dict[str, float] = {}
        while min((len(v) for v in seen.values()), default=0) < evaluations:
            time.sleep(1)
            for name, (total, _, per_rule) in rule_times(base_url).items():
                if total and last.get(name) != total:
                    last[name] = total
                    seen.setdefault(name, []).append({"": total, **per_rule})
    return seen


def report(seen: dict[str, list[dict[str, float]]]) -> None:
    for group, runs in seen.items():
        median = statistics.median(run[""] for run in runs)
        print(f"\n{group}: {median * 1000:.1f} ms per evaluation (median of {len(runs)})")
        for rule in runs[0]:
            if rule:
                print(f"  {statistics.median(run[rule] for run in runs) * 1000:8.1f} ms  {rule}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--step", type=int, default=60, help="seconds between samples (a scrape interval)")
    parser.add_argument("--rules", type=Path, action="append", help="rules files (default: the shipped one)")
    parser.add_argument("--evaluations", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aitrack-rules-") as tmp:
        work = Path(tmp)
        end = int(time.time()) // args.step * args.step
        samples = write_openmetrics(work / "history.om", args.series, args.days, args.step, end)
        data = work / "data"
        promtool = prometheus_tool("promtool")
        subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(work / "history.om"), str(data)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (work / "history.om").unlink()
        print(f"{args.series} series x {args.days:g} days every {args.step}s = {samples:,} samples")
        for rules in args.rules or [RULES]:
            print(f"\n== {rules}")
            run = work / f"run-{rules.stem}"
            run.mkdir()
            report(measure(rules.resolve(), data, run, args.evaluations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
