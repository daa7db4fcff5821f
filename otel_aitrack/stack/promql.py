"""Every PromQL expression of the dashboard, the alert rules and the Tempo links, each written once.

An expression is a function of `Filters`: the dashboard passes template-variable matchers, the alert
rules pass none, the Tempo datasource passes `$__tags`. Thresholds live here too, so the colours of
the dashboard and the conditions of the alerts cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- Metric and label names (produced by the collector's Prometheus exporter) -------------------
CALLS = "aitrack_calls_total"
CONSECUTIVE_FAILURES = "aitrack_consecutive_failures"
LAST_FAILURE_TIMESTAMP = "aitrack_last_failure_timestamp_seconds"
DURATION_BUCKET = "gen_ai_client_operation_duration_seconds_bucket"
TIME_TO_FIRST_CHUNK_BUCKET = "gen_ai_client_operation_time_to_first_chunk_seconds_bucket"
TOKEN_USAGE_SUM = "gen_ai_client_token_usage_sum"

# The collector's Prometheus exporter writes the resource's service.name into `job`
# (`service.namespace/service.name` when a namespace is set) and Prometheus keeps it (honor_labels);
# there is no `service_name` label on the application's series.
SERVICE = "job"
PROMPT = "gen_ai_prompt_name"
PROVIDER = "gen_ai_provider_name"
MODEL = "gen_ai_request_model"
ERROR_TYPE = "error_type"
CATEGORY = "aitrack_error_category"  # aitrack.error.category: on failed calls only, one of 11 values
# aitrack.error.fingerprint: on failed calls only, 16 hex digits, at most 20 per prompt type, then `_overflow`
FINGERPRINT = "aitrack_error_fingerprint"
TOKEN_TYPE = "gen_ai_token_type"
FAILED = f'{ERROR_TYPE}!=""'
CATEGORIZED = f'{CATEGORY}!=""'
FINGERPRINTED = f'{FINGERPRINT}!=""'
# The semconv histograms are also written by other OpenAI instrumentations running beside ours
# (docs/coexistence.md); only ours carry a prompt type, so this keeps their series out.
OURS = f'{PROMPT}!=""'

# One row of the admin table, one alert instance: a prompt type of a service.
PROMPT_KEY = (SERVICE, PROMPT)

# --- The failure-rate contract ------------------------------------------------------------------
# 15 minutes: long enough that a feature called a few times a minute has a meaningful ratio, short
# enough that a broken deploy pages within 20 minutes (window + `for`). See docs/runbook.md.
WINDOW = "15m"
WINDOW_SECONDS = 15 * 60
# Below this many calls in the window a ratio is noise (1 failed call of 1 is "100 %").
MIN_CALLS = 5
WARNING_RATIO = 0.2
CRITICAL_RATIO = 0.5
CONSECUTIVE_FAILURES_THRESHOLD = 3


@dataclass(frozen=True)
class Filters:
    """Label matchers added to every selector: `calls` for per-call series, `prompt` for gauges."""

    calls: tuple[str, ...] = ()
    prompt: tuple[str, ...] = ()


ALERTS = Filters()
DASHBOARD = Filters(
    calls=(
        f'{SERVICE}=~"$service"',
        f'{PROVIDER}=~"$provider"',
        f'{MODEL}=~"$model"',
        f'{PROMPT}=~"$prompt_type"',
    ),
    # The per-prompt gauges carry no provider or model label: only service and prompt type filter them.
    prompt=(f'{SERVICE}=~"$service"', f'{PROMPT}=~"$prompt_type"'),
)
TEMPO_LINK = Filters(calls=("$__tags",), prompt=("$__tags",))


def selector(metric: str, *matchers: str) -> str:
    inner = ", ".join(matchers)
    return f"{metric}{{{inner}}}" if inner else metric


def by(*labels: str) -> str:
    return ", ".join(labels)


def indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def group(head: str, body: str) -> str:
    """`head (` + the indented body + `)`: multi-line PromQL that reads like the code it is."""
    return f"{head}(\n{indent(body)}\n)"


def window_increase(series: str, window: str) -> str:
    """How much each counter series grew in `window`, counting series born inside it from zero.

    `increase()` starts at a series' first sample, so the first failure of a new `error_type` (its
    series appears with value 1) would be invisible; failures are sparse, so that is most of them.
    Series that existed `window` ago use increase(); series that did not count their whole value,
    the highest they reached in the window, so a series whose process has exited since (the series of
    an `instance` that is gone) still counts: that matters for windows of hours and days.
    """
    existed = f"{series} offset {window}"
    born = f"max_over_time({series}[{window}]) unless {existed}"
    return f"(increase({series}[{window}]) and {existed})\nor ({born})"


def sum_by_prompt(body: str) -> str:
    return group(f"sum by ({by(*PROMPT_KEY)}) ", body)


# --- Per prompt type, over WINDOW: the table, the failure-rate panel and the alerts --------------
# (The error-budget rules, otel_aitrack/stack/slo.py, take the same expressions over longer windows.)
def calls(f: Filters, window: str = WINDOW) -> str:
    return sum_by_prompt(window_increase(selector(CALLS, *f.calls), window))


def failed_calls(f: Filters, window: str = WINDOW) -> str:
    return sum_by_prompt(window_increase(selector(CALLS, *f.calls, FAILED), window))


def failure_ratio(f: Filters, window: str = WINDOW) -> str:
    """Failed / all calls; 0 for prompt types without failures, nothing for those without calls."""
    failed_or_zero = f"{failed_calls(f, window)}\nor\n{calls(f, window)} * 0"
    return f"{group('', failed_or_zero)}\n/\n{group('', f'{calls(f, window)} > 0')}"


def consecutive_failures(f: Filters) -> str:
    # max over instances: one replica failing in a row is enough to look.
    return f"max by ({by(*PROMPT_KEY)}) ({selector(CONSECUTIVE_FAILURES, *f.prompt)})"


def last_failure_time_ms(f: Filters) -> str:
    # Grafana's date units take milliseconds; 0 means "never failed" and is dropped.
    latest = f"max by ({by(*PROMPT_KEY)}) ({selector(LAST_FAILURE_TIMESTAMP, *f.prompt)})"
    return f"({latest} > 0) * 1000"


def last_error_type(f: Filters) -> str:
    """The error type that failed last, one series per prompt type: its `error_type` label is the last
    error code, its value when (unix seconds).

    The last-failure gauge has one series per prompt type and error type, so this is an instant read:
    `max` joins the instances of a service, `topk` keeps the latest error type (a tie picks either).
    """
    latest_per_type = (
        f"max by ({by(*PROMPT_KEY, ERROR_TYPE)}) ({selector(LAST_FAILURE_TIMESTAMP, *f.prompt)})"
    )
    return group(f"topk by ({by(*PROMPT_KEY)}) ", f"1,\n{latest_per_type}")


def top_category(f: Filters, window: str = WINDOW) -> str:
    """The failure category with the most failed calls over the window, one series per prompt type: its
    `aitrack_error_category` label names it (rate_limit, auth, timeout, ...), its value is their count."""
    per_category = group(
        f"sum by ({by(*PROMPT_KEY, CATEGORY)}) ",
        window_increase(selector(CALLS, *f.calls, CATEGORIZED), window),
    )
    return group(f"topk by ({by(*PROMPT_KEY)}) ", f"1,\n{per_category}")


# --- Alert conditions ---------------------------------------------------------------------------
def _with_enough_calls(condition: str, f: Filters) -> str:
    return f"{group('', condition)}\nand\n{group('', f'{calls(f)} >= {MIN_CALLS}')}"


def failure_ratio_critical(f: Filters) -> str:
    return _with_enough_calls(f"{failure_ratio(f)} > {CRITICAL_RATIO}", f)


def failure_ratio_warning(f: Filters) -> str:
    # A band: a prompt type above CRITICAL_RATIO raises the critical alert only.
    return _with_enough_calls(f"{failure_ratio(f)} > {WARNING_RATIO} <= {CRITICAL_RATIO}", f)


def consecutive_failures_alert(f: Filters) -> str:
    return f"{consecutive_failures(f)} >= {CONSECUTIVE_FAILURES_THRESHOLD}"


# --- Breakdowns and trends for the dashboard ----------------------------------------------------
def failures_by_error_type(f: Filters) -> str:
    """Failures per prompt type and error_type over the dashboard's time range."""
    failed = selector(CALLS, *f.calls, FAILED)
    return group(f"sum by ({by(PROMPT, ERROR_TYPE)}) ", window_increase(failed, "$__range"))


def failures_by_category(f: Filters) -> str:
    """Failures per prompt type and failure category over the dashboard's time range: rate limits,
    bad keys and timeouts told apart whatever the SDK names its exceptions (google-genai's 4xx are
    all `ClientError`)."""
    failed = selector(CALLS, *f.calls, CATEGORIZED)
    return group(f"sum by ({by(PROMPT, CATEGORY)}) ", window_increase(failed, "$__range"))


def failure_groups(f: Filters) -> str:
    """Failed calls over the dashboard's time range per fingerprint (one kind of failure from one place
    in the code), prompt type and error_type; `_overflow` holds the groups past the bound."""
    failed = selector(CALLS, *f.calls, FINGERPRINTED)
    return group(f"sum by ({by(PROMPT, ERROR_TYPE, FINGERPRINT)}) ", window_increase(failed, "$__range"))


def latency_quantile(quantile: float, f: Filters, histogram: str = DURATION_BUCKET) -> str:
    buckets = f"rate({selector(histogram, OURS, *f.calls)}[$__rate_interval])"
    return f"histogram_quantile({quantile}, sum by ({by('le', PROMPT)}) ({buckets}))"


def time_to_first_chunk_quantile(quantile: float, f: Filters) -> str:
    """Streamed calls only: how long users wait for the first token, by prompt type."""
    return latency_quantile(quantile, f, TIME_TO_FIRST_CHUNK_BUCKET)


def tokens_per_minute(f: Filters) -> str:
    tokens = f"rate({selector(TOKEN_USAGE_SUM, OURS, *f.calls)}[$__rate_interval])"
    return f"60 * sum by ({by(PROMPT, TOKEN_TYPE)}) ({tokens})"


def calls_per_minute(f: Filters) -> str:
    return f"60 * sum by ({by(*PROMPT_KEY)}) (rate({selector(CALLS, *f.calls)}[5m]))"
