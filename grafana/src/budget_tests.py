"""promtool unit tests of the error-budget rules: each burn-rate alert firing and not firing.

Traffic is steady minute by minute (`Minutes`), every series is born at or after 0m, and every value
an annotation prints comes from an alert's long window at an evaluation time shorter than that window,
so the window holds the series' whole life and its value is exact: failed / all calls so far, divided
by the budget as Prometheus divides it. The short windows only have to be on the right side of a
threshold, which every case clears by a wide margin. The objectives are grafana/slo.yaml's: a prompt
type it names and one it does not.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from otel_aitrack.stack import promql, slo
from otel_aitrack.stack.promql import PROMPT, SERVICE
from otel_aitrack.stack.slo import BurnRateAlert, Objectives

from . import budget
from .alerts import SERVICE_NAME, Alert, alert_checks, expected_alert

# (error_type, aitrack.error.category, aitrack.error.fingerprint) of the failures in these tests.
TIMEOUT = ("APITimeoutError", "timeout", "5b1f0c9e2d7a4836")
CONNECTION = ("APIConnectionError", "connection", "c03e9a51f7d2b684")
RATE_LIMIT = ("RateLimitError", "rate_limit", "9d4a27e6b0c3f815")
SERVER = ("InternalServerError", "server", "71e8b5d2c9f04a3b")
Failure = tuple[str, str, str]
# Prompt types the default objective applies to: the first not named in the SLO file is used.
_UNNAMED = ("answer_question", "draft_reply", "translate_text", "aitrack_test_prompt")


@dataclass(frozen=True)
class Minutes:
    """`count` minutes of `calls` calls a minute, of which a share `failing` fails with `failure`."""

    count: int
    calls: int
    failing: float
    failure: Failure = TIMEOUT

    @property
    def failed(self) -> int:
        failed = self.calls * self.failing
        if abs(failed - round(failed)) > 1e-9:
            raise ValueError(f"{self}: not a whole number of failures a minute")
        return round(failed)


@dataclass(frozen=True)
class Traffic:
    """One prompt type's calls, minute after minute from 0m (minute m holds the calls of (m-1, m])."""

    prompt: str
    spans: tuple[Minutes, ...]

    def minutes(self) -> Iterator[Minutes]:
        for span in self.spans:
            for _ in range(span.count):
                yield Minutes(1, span.calls, span.failing, span.failure)

    def __len__(self) -> int:
        return sum(span.count for span in self.spans)

    def totals(self, minute: int) -> tuple[int, int]:
        """(failed, all) calls up to `minute`."""
        done = list(self.minutes())[:minute]
        return sum(m.failed for m in done), sum(m.calls for m in done)

    def burn_rate(self, minute: int, objectives: Objectives) -> float:
        """The burn rate over a window longer than `minute`, as the rules compute it."""
        failed, calls = self.totals(minute)
        return failed / calls / objectives.budget(self.prompt)


def _notation(values: Sequence[int | None]) -> str:
    """promtool's input notation: `_xN` for N missing samples, `a+bxN` for a, a+b, ... a+N*b."""
    parts: list[str] = []
    index = 0
    while index < len(values):
        value = values[index]
        end = index + 1
        if value is None:
            while end < len(values) and values[end] is None:
                end += 1
            parts.append(f"_x{end - index}")
        else:
            step = values[end] - value if end < len(values) and values[end] is not None else 0
            while end < len(values) and values[end] is not None and values[end] - values[end - 1] == step:  # type: ignore[operator]
                end += 1
            parts.append(f"{value}+{step}x{end - index - 1}")
        index = end
    return " ".join(parts)


def _labels(prompt: str, **more: str) -> str:
    inner = {SERVICE: SERVICE_NAME, PROMPT: prompt, **more}
    return ", ".join(f'{name}="{text}"' for name, text in inner.items())


def _input_series(traffic: Traffic, horizon: int) -> list[dict[str, str]]:
    """The counters (and last-failure gauges) as the instrumentation exports them: the successes from
    0m, each failure's series from its first failure on, flat after the traffic ends."""
    minutes = list(traffic.minutes())
    failures = sorted({m.failure for m in minutes if m.failed})
    ok = [0] + [sum(m.calls - m.failed for m in minutes[:t]) for t in range(1, horizon + 1)]
    series = [{"series": f"{promql.CALLS}{{{_labels(traffic.prompt)}}}", "values": _notation(ok)}]
    for error_type, category, fingerprint in failures:
        counts: list[int | None] = [None]
        last: list[int | None] = [None]
        for t in range(1, horizon + 1):
            mine = [m for m in minutes[:t] if m.failure[0] == error_type and m.failed]
            counts.append(sum(m.failed for m in mine) if mine else None)
            failed_at = max(
                (i + 1 for i, m in enumerate(minutes[:t]) if m.failure[0] == error_type and m.failed),
                default=None,
            )
            last.append(None if failed_at is None else 60 * failed_at - 30)
        labels = {promql.ERROR_TYPE: error_type, promql.CATEGORY: category, promql.FINGERPRINT: fingerprint}
        series.append(
            {"series": f"{promql.CALLS}{{{_labels(traffic.prompt, **labels)}}}", "values": _notation(counts)}
        )
        gauge = f"{promql.LAST_FAILURE_TIMESTAMP}{{{_labels(traffic.prompt, error_type=error_type)}}}"
        series.append({"series": gauge, "values": _notation(last)})
    return series


def _why(traffic: Traffic, minute: int) -> tuple[str, str]:
    """(the category with the most failures of the last 15 minutes, the error type that failed last)."""
    minutes = list(traffic.minutes())[:minute]
    recent: dict[str, int] = {}
    for m in minutes[-promql.WINDOW_SECONDS // 60 :]:
        recent[m.failure[1]] = recent.get(m.failure[1], 0) + m.failed
    failed = [m for m in minutes if m.failed]
    return max(recent, key=recent.__getitem__), failed[-1].failure[0]


@dataclass(frozen=True)
class _Case:
    objectives: Objectives
    runbook: str

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return budget.budget_alerts(self.objectives)

    def alert(self, name: str) -> Alert:
        return next(alert for alert in self.alerts if alert.name == name)

    def firing(self, name: str, traffic: Traffic, minute: int) -> dict[str, object]:
        value = f"{traffic.burn_rate(minute, self.objectives):.1f}"
        return expected_alert(self.alert(name), traffic.prompt, value, self.runbook, _why(traffic, minute))

    def checks(self, minute: int, firing: dict[str, list[tuple[Traffic, int]]]) -> list[dict[str, object]]:
        instances = {name: [self.firing(name, t, at) for t, at in pairs] for name, pairs in firing.items()}
        return alert_checks(f"{minute}m", instances, self.alerts)

    def test(self, name: str, traffic: Sequence[Traffic], **tests: object) -> dict[str, object]:
        horizon = max(len(t) for t in traffic)
        series = [s for t in traffic for s in _input_series(t, horizon)]
        return {"name": name, "interval": "1m", "input_series": series, **tests}


FAST, SUSTAINED, SLOW = (alert.name for alert in slo.BURN_RATE_ALERTS)


def _unnamed(objectives: Objectives) -> str:
    named = dict(objectives.by_prompt)
    return next(prompt for prompt in _UNNAMED if prompt not in named)


def _calls_for(failing: Sequence[float]) -> int:
    """Calls a minute (a power of ten, at least 1000) for which every share gives whole failures."""
    calls = 1000
    while any(abs(calls * f - round(calls * f)) > 1e-9 for f in failing):
        calls *= 10
    return calls


def _outage(case: _Case) -> dict[str, object]:
    # 0.1 % failing for 30 minutes, then every call for 20, then healthy again.
    prompt = _unnamed(case.objectives)
    traffic = Traffic(
        prompt, (Minutes(30, 1000, 0.001), Minutes(20, 1000, 1.0, CONNECTION), Minutes(40, 1000, 0.001))
    )
    return case.test(
        "sudden outage: the 1h/5m page within minutes, the 6h/30m page later; each stops soon after it ends",
        [traffic],
        alert_rule_test=[
            *case.checks(34, {}),  # 4 minutes in: 1h at 11.5 %, not yet 14.4x
            *case.checks(40, {FAST: [(traffic, 40)]}),  # above 14.4x since 36m, for 2m
            *case.checks(
                50, {FAST: [(traffic, 50)], SUSTAINED: [(traffic, 50)]}
            ),  # 6h/30m since 32m, for 15m
            *case.checks(56, {SUSTAINED: [(traffic, 56)]}),  # over at 50m: the 5m window is clean again
            *case.checks(85, {}),  # and the 30m window; the ticket would need 3h
        ],
        promql_expr_test=[
            {  # Grafana's rule, which reads no recording rules, says the same
                "expr": case.alert(FAST).grafana_expr,
                "eval_time": "40m",
                "exp_samples": [_sample(traffic.burn_rate(40, case.objectives), prompt)],
            }
        ],
    )


def _trickle(case: _Case) -> dict[str, object]:
    # 2 % of the calls failing, for hours: twice what a 99 % objective allows.
    prompt = _unnamed(case.objectives)
    share = 2 * case.objectives.budget(prompt)
    traffic = Traffic(prompt, (Minutes(250, _calls_for([share]), round(share, 12), RATE_LIMIT),))
    return case.test(
        "slow trickle at 2x: a ticket after 3h, never a page",
        [traffic],
        alert_rule_test=[*case.checks(120, {}), *case.checks(240, {SLOW: [(traffic, 240)]})],
    )


def _steady_burn(case: _Case) -> dict[str, object]:
    # 8x: above the 6h/30m page's 6x, below the 1h/5m page's 14.4x.
    prompt = _unnamed(case.objectives)
    share = 8 * case.objectives.budget(prompt)
    traffic = Traffic(prompt, (Minutes(30, _calls_for([share]), round(share, 12), SERVER),))
    return case.test(
        "steady 8x burn: the 6h/30m page after its 15m, not the 1h/5m one",
        [traffic],
        alert_rule_test=[*case.checks(10, {}), *case.checks(20, {SUSTAINED: [(traffic, 20)]})],
        promql_expr_test=[
            {
                "expr": slo.burn_rate_record("6h"),
                "eval_time": "20m",
                "exp_samples": [
                    _sample(traffic.burn_rate(20, case.objectives), prompt, slo.burn_rate_record("6h"))
                ],
            },
        ],
    )


def _healthy(case: _Case) -> dict[str, object]:
    # Half of what each objective allows, on a prompt type the SLO file names and one it does not.
    prompts = [_unnamed(case.objectives), *(name for name, _ in case.objectives.by_prompt[:1])]
    shares = [0.5 * case.objectives.budget(p) for p in prompts]
    traffic = [
        Traffic(p, (Minutes(250, _calls_for([s]), round(s, 12), TIMEOUT),))
        for p, s in zip(prompts, shares, strict=True)
    ]
    return case.test(
        "healthy: failing at half the budget's rate, no alert ever",
        traffic,
        alert_rule_test=[*case.checks(30, {}), *case.checks(240, {})],
    )


def _per_prompt_objectives(case: _Case) -> dict[str, object] | None:
    # The same share of failures on a prompt type with its own objective and on one without.
    if not case.objectives.by_prompt:
        return None
    named, _ = case.objectives.by_prompt[0]
    share = min(1.0, round(20 * case.objectives.budget(named), 12))
    unnamed = _unnamed(case.objectives)
    calls = _calls_for([share])
    traffic = [Traffic(p, (Minutes(30, calls, share, RATE_LIMIT),)) for p in (named, unnamed)]
    firing = {
        alert.name: [(t, 20) for t in traffic if _fires(alert, t, 20, case.objectives)]
        for alert in slo.BURN_RATE_ALERTS
    }
    objectives = [(name, value) for name, value in case.objectives.by_prompt] + [
        (unnamed, case.objectives.default)
    ]
    return case.test(
        f"{named}'s own objective ({case.objectives.objective(named):.2%}) decides, the default "
        f"({case.objectives.default:.2%}) applies to {unnamed}",
        traffic,
        alert_rule_test=case.checks(20, firing),
        promql_expr_test=[
            {
                "expr": source.objective(),
                "eval_time": "20m",
                "exp_samples": [_objective_sample(p, v, name) for p, v in objectives],
            }
            for source, name in ((slo.RECORDED, slo.OBJECTIVE_RECORD), (slo.Inline(case.objectives), ""))
        ]
        + [
            {
                "expr": slo.burn_rate_record("1h"),
                "eval_time": "20m",
                "exp_samples": [
                    _sample(t.burn_rate(20, case.objectives), t.prompt, slo.burn_rate_record("1h"))
                    for t in traffic
                ],
            }
        ],
    )


def _fires(alert: BurnRateAlert, traffic: Traffic, minute: int, objectives: Objectives) -> bool:
    """Steady traffic from 0m: every window burns the same, from 1m on."""
    held = minute - 1 >= slo.seconds(alert.for_) // 60
    return held and traffic.burn_rate(minute, objectives) > alert.factor


def _sample(value: float, prompt: str, name: str = "") -> dict[str, object]:
    labels = _labels(prompt) if not name else f'__name__="{name}", {_labels(prompt)}'
    return {"labels": f"{{{labels}}}", "value": value}


def _objective_sample(prompt: str, value: float, name: str) -> dict[str, object]:
    labels = f'{PROMPT}="{prompt}"' if not name else f'__name__="{name}", {PROMPT}="{prompt}"'
    return {"labels": f"{{{labels}}}", "value": value}


def promtool_cases(objectives: Objectives, runbook_base: str) -> list[dict[str, object]]:
    case = _Case(objectives, runbook_base)
    tests = [_outage(case), _trickle(case), _steady_burn(case), _healthy(case), _per_prompt_objectives(case)]
    return [test for test in tests if test is not None]
