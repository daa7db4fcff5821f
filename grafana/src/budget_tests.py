"""promtool unit tests of the error-budget rules: each burn-rate alert firing and not firing.

Each case is minute-by-minute traffic of one or two prompt types (`Traffic`) and the times to look at.
What every alert should say at those times is worked out here the way Prometheus 3 works it out
(`_Model`: increase() with its extrapolation, series born inside a window counted whole, `for`), from
grafana/slo.yaml's objectives, so the cases hold whatever objectives the file sets, and promtool
checks the rules against that arithmetic. What the cases show with the shipped objectives (an outage
pages within minutes, a trickle raises a ticket and no page, ...) is asserted on the generated file
by tests/stack/test_slo_rules.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from otel_aitrack.stack import promql, slo
from otel_aitrack.stack.promql import PROMPT, SERVICE
from otel_aitrack.stack.slo import BurnRateAlert, Objectives

from . import budget
from .alerts import SERVICE_NAME, Alert, alert_checks, expected_alert

# (error_type, aitrack.error.category, aitrack.error.fingerprint) of the failures of these cases.
Failure = tuple[str, str, str]
TIMEOUT = ("APITimeoutError", "timeout", "5b1f0c9e2d7a4836")
CONNECTION = ("APIConnectionError", "connection", "c03e9a51f7d2b684")
RATE_LIMIT = ("RateLimitError", "rate_limit", "9d4a27e6b0c3f815")
SERVER = ("InternalServerError", "server", "71e8b5d2c9f04a3b")
# Prompt types the default objective applies to: the first the SLO file does not name is used.
_UNNAMED = ("answer_question", "draft_reply", "translate_text", "aitrack_test_prompt")
_LOOKBACK_MINUTES = 5  # Prometheus' lookback delta: how long an instant selector sees a sample


@dataclass(frozen=True)
class Minutes:
    """`count` minutes of `calls` calls each, of which a share `failing` fails with `failure`."""

    count: int
    calls: int
    failing: float
    failure: Failure = TIMEOUT

    @property
    def failed(self) -> int:
        failed = self.calls * self.failing
        if abs(failed - round(failed)) > 1e-6:
            raise ValueError(f"{self}: not a whole number of failures a minute")
        return round(failed)


@dataclass(frozen=True)
class Traffic:
    """One prompt type's calls from 0m on: minute m holds the calls of (m-1m, m], then it goes quiet."""

    prompt: str
    spans: tuple[Minutes, ...]

    def per_minute(self, horizon: int) -> list[Minutes | None]:
        """Index m: the calls of minute m (None at 0m and after the traffic)."""
        minutes: list[Minutes | None] = [None]
        for span in self.spans:
            minutes += [span] * span.count
        return (minutes + [None] * horizon)[: horizon + 1]


@dataclass
class Counter:
    """A series sampled every minute from 0m to the horizon: None where it does not exist yet."""

    labels: dict[str, str]
    values: list[int | None]
    failure: Failure | None = None


def counters(traffic: Traffic, horizon: int) -> list[Counter]:
    """The counters as the instrumentation exports them: the successes from 0m, each failure's series
    from its first failure on; flat once the traffic ends."""
    minutes = traffic.per_minute(horizon)
    ok, total = [0], 0
    for minute in minutes[1:]:
        total += minute.calls - minute.failed if minute else 0
        ok.append(total)
    found = [Counter({SERVICE: SERVICE_NAME, PROMPT: traffic.prompt}, list(ok))]
    failures = sorted({m.failure for m in minutes if m and m.failed})
    for failure in failures:
        values: list[int | None] = []
        count: int | None = None
        for minute in minutes:
            if minute and minute.failed and minute.failure == failure:
                count = (count or 0) + minute.failed
            values.append(count)
        error_type, category, fingerprint = failure
        labels = {
            SERVICE: SERVICE_NAME,
            PROMPT: traffic.prompt,
            promql.ERROR_TYPE: error_type,
            promql.CATEGORY: category,
            promql.FINGERPRINT: fingerprint,
        }
        found.append(Counter(labels, values, failure))
    return found


def last_failures(traffic: Traffic, horizon: int) -> dict[str, list[int | None]]:
    """The last-failure gauge per error type: the time of its latest failure (mid-minute), in seconds."""
    gauges: dict[str, list[int | None]] = {}
    for index, minute in enumerate(traffic.per_minute(horizon)):
        for gauge in gauges.values():
            gauge.append(gauge[-1])
        if minute and minute.failed:
            gauge = gauges.setdefault(minute.failure[0], [None] * (index + 1))
            gauge[index] = 60 * index - 30
    return gauges


def _notation(values: Sequence[int | None]) -> str:
    """promtool's input notation: `_xN` for N missing samples, `a+bxN` for a, a+b, ... a+N*b."""
    parts: list[str] = []
    index = 0
    while index < len(values):
        first = values[index]
        end = index + 1
        if first is None:
            while end < len(values) and values[end] is None:
                end += 1
            parts.append(f"_x{end - index}")
        else:
            following = values[end] if end < len(values) else None
            step = following - first if following is not None else 0
            while end < len(values) and _step(values, end) == step:
                end += 1
            parts.append(f"{first}+{step}x{end - index - 1}")
        index = end
    return " ".join(parts)


def _step(values: Sequence[int | None], index: int) -> int | None:
    current, previous = values[index], values[index - 1]
    return None if current is None or previous is None else current - previous


def _selector(metric: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{name}="{value}"' for name, value in labels.items())
    return f"{metric}{{{inner}}}"


def input_series(traffic: Sequence[Traffic], horizon: int) -> list[dict[str, str]]:
    series = []
    for t in traffic:
        series += [
            {"series": _selector(promql.CALLS, c.labels), "values": _notation(c.values)}
            for c in counters(t, horizon)
        ]
        for error_type, values in last_failures(t, horizon).items():
            labels = {SERVICE: SERVICE_NAME, PROMPT: t.prompt, promql.ERROR_TYPE: error_type}
            series.append(
                {"series": _selector(promql.LAST_FAILURE_TIMESTAMP, labels), "values": _notation(values)}
            )
    return series


# --- What Prometheus 3 computes from these samples ---------------------------------------------------
def increase(values: Sequence[int | None], minute: int, window: int) -> float | None:
    """increase(x[window]) at `minute` for samples every minute: Prometheus 3's extrapolatedRate."""
    samples = [(m, v) for m in range(max(0, minute - window + 1), minute + 1) if (v := values[m]) is not None]
    if len(samples) < 2:
        return None
    (first_t, first), (last_t, last) = samples[0], samples[-1]
    result = float(last - first)
    sampled = float(last_t - first_t)
    average = sampled / (len(samples) - 1)
    threshold = average * 1.1
    to_start, to_end = float(first_t - (minute - window)), float(minute - last_t)
    if to_start >= threshold:
        to_start = average / 2
    if result > 0 and first >= 0:
        to_start = min(to_start, sampled * (first / result))
    if to_end >= threshold:
        to_end = average / 2
    return result * ((sampled + to_start + to_end) / sampled)


def window_increase(values: Sequence[int | None], minute: int, window: int) -> float | None:
    """promql.window_increase: increase() for a series that existed `window` ago, its highest value
    in the window for one born inside it."""
    before = minute - window
    existed = any(values[m] is not None for m in range(max(0, before - _LOOKBACK_MINUTES + 1), before + 1))
    if existed:
        return increase(values, minute, window)
    inside = [v for v in values[max(0, before + 1) : minute + 1] if v is not None]
    return float(max(inside)) if inside else None


def kahan_sum(values: Sequence[float]) -> float:
    """A sum as Prometheus 3 adds (`sum`, `sum_over_time`): Kahan-Neumaier, the compensation added last."""
    total, compensation = 0.0, 0.0
    for value in values:
        moved = total + value
        if math.isinf(moved):
            compensation = 0.0
        elif abs(total) >= abs(value):
            compensation += (total - moved) + value
        else:
            compensation += (value - moved) + total
        total = moved
    return total if math.isinf(total) else total + compensation


def _divided(counted: tuple[float, float] | None) -> float | None:
    """failed / all calls, where there were calls."""
    return counted[0] / counted[1] if counted is not None and counted[1] > 0 else None


@dataclass(frozen=True)
class _Model:
    objectives: Objectives
    horizon: int

    def increments(self, traffic: Traffic, minute: int, window: int) -> tuple[float, float] | None:
        """(failed, all) calls of the window, as promql.failed_calls and promql.calls add them; None
        where no series has a sample in the window."""
        parts = [
            (c.failure, window_increase(c.values, minute, window)) for c in counters(traffic, self.horizon)
        ]
        calls = [v for _, v in parts if v is not None]
        failed = [v for failure, v in parts if failure and v is not None]
        return (kahan_sum(failed) if failed else 0.0, kahan_sum(calls)) if calls else None

    def ratio(self, traffic: Traffic, minute: int, window: str) -> float | None:
        """The recorded error ratio: failed / all calls of the window; None where there were no calls.
        Over slo.SUMMED_WINDOWS, the sums of the STEP records of the window's evaluations (one a minute,
        from 0m: promtool evaluates the rules every minute of the test)."""
        minutes = slo.seconds(window) // 60
        if window not in slo.SUMMED_WINDOWS:
            return _divided(self.increments(traffic, minute, minutes))
        step = slo.seconds(slo.STEP) // 60
        records = [self.increments(traffic, m, step) for m in range(max(0, minute - minutes + 1), minute + 1)]
        kept = [r for r in records if r is not None]
        if not kept:
            return None
        return _divided((kahan_sum([f for f, _ in kept]), kahan_sum([c for _, c in kept])))

    def burn_rate(self, traffic: Traffic, minute: int, window: str) -> float | None:
        ratio = self.ratio(traffic, minute, window)
        return None if ratio is None else ratio / self.objectives.budget(traffic.prompt)

    def condition(self, alert: BurnRateAlert, traffic: Traffic, minute: int) -> bool:
        rates = [self.burn_rate(traffic, minute, w) for w in (alert.long_window, alert.short_window)]
        return all(rate is not None and rate > alert.factor for rate in rates)

    def firing(self, alert: BurnRateAlert, traffic: Traffic, minute: int) -> bool:
        """True from `for` after the condition started holding, every minute since (promtool evaluates
        the rules every minute from 0m)."""
        held = 0
        for m in range(minute + 1):
            held = held + 1 if self.condition(alert, traffic, m) else 0
        return held > 0 and held - 1 >= slo.seconds(alert.for_) // 60

    def why(self, traffic: Traffic, minute: int) -> tuple[str, str]:
        """(the category with the most failures of the last 15m, the error type that failed last)."""
        window = promql.WINDOW_SECONDS // 60
        per_category: dict[str, float] = {}
        for c in counters(traffic, self.horizon):
            counted = window_increase(c.values, minute, window) if c.failure else None
            if c.failure and counted is not None:
                per_category[c.failure[1]] = per_category.get(c.failure[1], 0.0) + counted
        gauges: dict[str, int] = {}
        for error_type, values in last_failures(traffic, self.horizon).items():
            if (at := values[minute]) is not None:
                gauges[error_type] = at
        category = max(per_category, key=per_category.__getitem__) if per_category else "unknown"
        return category, max(gauges, key=gauges.__getitem__) if gauges else "unknown"


# --- The cases -------------------------------------------------------------------------------------------
FAST, SUSTAINED, SLOW = slo.BURN_RATE_ALERTS


@dataclass(frozen=True)
class _Cases:
    objectives: Objectives
    runbook: str

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return budget.budget_alerts(self.objectives)

    def _rendered(self, burn: BurnRateAlert) -> Alert:
        return next(alert for alert in self.alerts if alert.name == burn.name)

    def test(
        self, name: str, traffic: Sequence[Traffic], minutes: Sequence[int], **more: object
    ) -> dict[str, object]:
        """A promtool test of `traffic`: every alert at each of `minutes`, as `_Model` works it out."""
        horizon = max(minutes)
        model = _Model(self.objectives, horizon)
        checks = []
        for minute in minutes:
            firing = {
                burn.name: [
                    self._instance(model, burn, t, minute) for t in traffic if model.firing(burn, t, minute)
                ]
                for burn in slo.BURN_RATE_ALERTS
            }
            checks += alert_checks(f"{minute}m", firing, self.alerts)
        series = input_series(traffic, horizon)
        return {"name": name, "interval": "1m", "input_series": series, "alert_rule_test": checks, **more}

    def _instance(
        self, model: _Model, burn: BurnRateAlert, traffic: Traffic, minute: int
    ) -> dict[str, object]:
        value = f"{model.burn_rate(traffic, minute, burn.long_window):.1f}"
        return expected_alert(
            self._rendered(burn), traffic.prompt, value, self.runbook, model.why(traffic, minute)
        )

    def burn_rate_samples(
        self, traffic: Sequence[Traffic], minute: int, window: str, name: str = ""
    ) -> list[object]:
        """Exact: only for `minute` shorter than `window`, which then holds every series' whole life."""
        if minute >= slo.seconds(window) // 60:
            raise ValueError("an exact burn rate needs a window longer than the traffic so far")
        model = _Model(self.objectives, minute)
        return [
            _sample(model.burn_rate(t, minute, window), {SERVICE: SERVICE_NAME, PROMPT: t.prompt}, name)
            for t in traffic
        ]


def _sample(value: float | None, labels: dict[str, str], name: str = "") -> dict[str, object]:
    inner = {"__name__": name, **labels} if name else labels
    return {"labels": "{" + ", ".join(f'{k}="{v}"' for k, v in inner.items()) + "}", "value": value}


def _unnamed(objectives: Objectives) -> str:
    named = dict(objectives.by_prompt)
    return next(prompt for prompt in _UNNAMED if prompt not in named)


def _steady(prompt: str, minutes: int, share: float, failure: Failure) -> Traffic:
    """`share` of the calls failing every minute, with enough calls that it is whole failures."""
    share = min(1.0, round(share, 12))
    calls = 1000
    while abs(calls * share - round(calls * share)) > 1e-6:
        calls *= 10
    return Traffic(prompt, (Minutes(minutes, calls, share, failure),))


def _outage(cases: _Cases) -> dict[str, object]:
    # A tenth of the budget's rate for 30 minutes, every call failing for 20, then healthy again.
    prompt = _unnamed(cases.objectives)
    healthy = _steady(prompt, 30, cases.objectives.budget(prompt) / 10, TIMEOUT).spans[0]
    traffic = Traffic(
        prompt,
        (
            healthy,
            Minutes(20, healthy.calls, 1.0, CONNECTION),
            Minutes(40, healthy.calls, healthy.failing, TIMEOUT),
        ),
    )
    grafana_fast = next(alert for alert in cases.alerts if alert.name == FAST.name).grafana_expr
    return cases.test(
        "sudden outage from 30m to 50m: the 1h/5m page within minutes, the 6h/30m page later, each "
        "resolving soon after the outage ends",
        [traffic],
        [34, 37, 38, 40, 46, 47, 50, 54, 55, 56, 70, 75, 80, 85],
        promql_expr_test=[  # Grafana's rule, which reads no recording rules, computes the same
            {
                "expr": grafana_fast,
                "eval_time": "40m",
                "exp_samples": cases.burn_rate_samples([traffic], 40, "1h"),
            }
        ],
    )


def _trickle(cases: _Cases) -> dict[str, object]:
    prompt = _unnamed(cases.objectives)
    traffic = _steady(prompt, 250, 2 * cases.objectives.budget(prompt), RATE_LIMIT)
    return cases.test(
        "slow trickle at twice the budget's rate: a ticket after 3h, never a page", [traffic], [120, 240]
    )


def _steady_burn(cases: _Cases) -> dict[str, object]:
    prompt = _unnamed(cases.objectives)
    traffic = _steady(prompt, 30, 8 * cases.objectives.budget(prompt), SERVER)
    record = slo.burn_rate_record("6h")
    return cases.test(
        "steady burn at 8x: the 6h/30m page after its 15m, not the 1h/5m page (14.4x)",
        [traffic],
        [10, 20],
        promql_expr_test=[
            {
                "expr": record,
                "eval_time": "20m",
                "exp_samples": cases.burn_rate_samples([traffic], 20, "6h", record),
            }
        ],
    )


def _healthy(cases: _Cases) -> dict[str, object]:
    prompts = [_unnamed(cases.objectives), *(name for name, _ in cases.objectives.by_prompt[:1])]
    traffic = [_steady(p, 250, cases.objectives.budget(p) / 2, TIMEOUT) for p in prompts]
    return cases.test("healthy: failing at half the budget's rate, no alert ever", traffic, [30, 240])


def _per_prompt_objectives(cases: _Cases) -> dict[str, object] | None:
    # The same share of failures on a prompt type with its own objective and on one without.
    if not cases.objectives.by_prompt:
        return None
    named, _ = cases.objectives.by_prompt[0]
    unnamed = _unnamed(cases.objectives)
    share = 20 * cases.objectives.budget(named)
    traffic = [_steady(p, 30, share, RATE_LIMIT) for p in (named, unnamed)]
    objectives = [*cases.objectives.by_prompt, (unnamed, cases.objectives.default)]
    record = slo.burn_rate_record("1h")

    def objective_test(source: slo.Source, name: str) -> dict[str, object]:
        samples = [_sample(value, {PROMPT: prompt}, name) for prompt, value in objectives]
        return {"expr": source.objective(), "eval_time": "20m", "exp_samples": samples}

    return cases.test(
        f"{named}'s own objective ({cases.objectives.objective(named):.2%}) decides its alerts, the "
        f"default ({cases.objectives.default:.2%}) those of {unnamed}: the same failures, other alerts",
        traffic,
        [20],
        promql_expr_test=[
            objective_test(slo.RECORDED, slo.OBJECTIVE_RECORD),
            objective_test(slo.Inline(cases.objectives), ""),
            {
                "expr": record,
                "eval_time": "20m",
                "exp_samples": cases.burn_rate_samples(traffic, 20, "1h", record),
            },
        ],
    )


def promtool_cases(objectives: Objectives, runbook_base: str) -> list[dict[str, object]]:
    cases = _Cases(objectives, runbook_base)
    tests = [
        _outage(cases),
        _trickle(cases),
        _steady_burn(cases),
        _healthy(cases),
        _per_prompt_objectives(cases),
    ]
    return [test for test in tests if test is not None]
