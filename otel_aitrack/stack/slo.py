"""Error budgets per prompt type: the PromQL of the burn-rate recording rules, alerts and dashboard row.

A prompt type's objective is the share of its calls that must succeed over PERIOD (30 days); its error
budget is 1 - objective. The burn rate over a window is the window's error ratio over the budget: 1
spends the budget in exactly PERIOD, 14.4 spends 2 % of it in an hour. The alerts are the SRE Workbook's
multi-window, multi-burn-rate alerts: each needs a long window (enough budget spent) and a short one
(still happening), so a sudden outage pages within minutes and stops paging soon after it ends, and a
slow trickle raises a ticket, not a page.

Every expression comes in two forms (`Source`): over the recording rules of the Prometheus rules file
(`RECORDED`), and written out (`Inline`) for Grafana's alert rules and the dashboard, which must work on
a Prometheus that does not load that file. Both read the objectives the same way: one series per
prompt type, from the SLO file where it names the prompt type, the default for every other one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from . import promql
from .promql import ALERTS, CALLS, PROMPT, PROMPT_KEY, Filters, by, failure_ratio, group, selector

PERIOD = "30d"
# The error ratio is recorded over these windows: the alerts' long and short windows, and 1d for the
# dashboard and for ad-hoc queries (the Workbook's ticket on 1d/2h at 3x is not among the alerts).
WINDOWS = ("5m", "30m", "1h", "6h", "1d", "3d")
# The calls and failed calls of each STEP are recorded at every evaluation; the error ratio over these
# windows is the sum of those records over the window, not an increase() over every raw series' samples:
# on days of samples of thousands of series the raw form takes longer than the group's interval (see
# benchmarks/rules_at_scale.py), and then every alert of the group is late. Each call is counted in as
# many records as STEP holds evaluations, failed and all calls alike, so the ratio is unchanged; the
# window's edges are STEP wide ramps, under 1.4 % of 6h.
STEP = "5m"
SUMMED_WINDOWS = ("6h", "1d", "3d")

# --- Recording rule names (public API: docs/telemetry.md) -----------------------------------------
OBJECTIVE_RECORD = "aitrack:slo_objective:ratio"
CALLS_RECORD = f"aitrack:calls:increase{STEP}"
FAILED_RECORD = f"aitrack:failed_calls:increase{STEP}"


def error_ratio_record(window: str) -> str:
    return f"aitrack:error_ratio:rate{window}"


def burn_rate_record(window: str) -> str:
    return f"aitrack:burn_rate:rate{window}"


_UNITS = {"m": 60, "h": 3600, "d": 86400}


def seconds(window: str) -> int:
    """`30m` -> 1800: the Prometheus durations used here (minutes, hours, days)."""
    return int(window[:-1]) * _UNITS[window[-1]]


# --- Objectives ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Objectives:
    """The share of calls that must succeed over PERIOD: `default` for every prompt type, except those
    `by_prompt` names."""

    default: float
    by_prompt: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        for name, value in (("default", self.default), *self.by_prompt):
            if not (isinstance(value, float) and 0 < value < 1 and math.isfinite(value)):
                raise ValueError(f"objective of {name!r} must be a number between 0 and 1, got {value!r}")
            if not name:
                raise ValueError("a prompt type's name must not be empty")

    @classmethod
    def of(cls, default: float, by_prompt: Mapping[str, float]) -> Objectives:
        return cls(default, tuple(sorted(by_prompt.items())))

    def objective(self, prompt: str) -> float:
        return dict(self.by_prompt).get(prompt, self.default)

    def budget(self, prompt: str) -> float:
        """1 - objective, computed as Prometheus computes it (so a test can expect its exact value)."""
        return 1 - self.objective(prompt)


def _string(text: str) -> str:
    """A PromQL string literal (PromQL strings take Go's escapes, a superset of JSON's)."""
    return json.dumps(text)


def objective_definition(objectives: Objectives, f: Filters) -> str:
    """One series per prompt type, labelled `gen_ai_prompt_name`: the objectives the SLO file names,
    then the default for every other prompt type that has calls (`or on` keeps the named ones)."""
    present = f"group by ({PROMPT}) ({selector(CALLS, *f.calls)})"
    default = f"{present} * 0 + {objectives.default!r}"
    named = [
        f'label_replace(vector({value!r}), "{PROMPT}", {_string(name)}, "", "")'
        for name, value in objectives.by_prompt
    ]
    if not named:
        return default
    return "\nor ".join(named) + f"\nor on ({PROMPT})\n{default}"


# --- Where the error ratios and objectives come from ----------------------------------------------
class Recorded:
    """The recording rules of the Prometheus rules file, by name."""

    def objective(self) -> str:
        return OBJECTIVE_RECORD

    def error_ratio(self, window: str) -> str:
        return error_ratio_record(_recorded(window))

    def burn_rate(self, window: str) -> str:
        return burn_rate_record(_recorded(window))


@dataclass(frozen=True)
class Inline:
    """The same numbers written out, for a Prometheus that does not load the rules file."""

    objectives: Objectives
    filters: Filters = ALERTS

    def objective(self) -> str:
        return objective_definition(self.objectives, self.filters)

    def error_ratio(self, window: str) -> str:
        return failure_ratio(self.filters, window)

    def burn_rate(self, window: str) -> str:
        return burn_rate_definition(self, window)


Source = Recorded | Inline
RECORDED = Recorded()


def _recorded(window: str) -> str:
    if window not in WINDOWS:
        raise ValueError(f"no recording rule over {window}: the rules record {', '.join(WINDOWS)}")
    return window


def _operand(expr: str) -> str:
    """`expr` as an operand: a recorded series' name as it is, an expression in parentheses."""
    return expr if expr.replace(":", "_").isidentifier() else group("", expr)


def burn_rate_definition(source: Source, window: str) -> str:
    """Error ratio over `window` / the prompt type's budget (1 - objective), per service and prompt type."""
    budget = group("", f"1 - {_operand(source.objective())}")
    return f"{_operand(source.error_ratio(window))}\n/ on ({PROMPT}) group_left ()\n{budget}"


def budget_remaining(source: Inline) -> str:
    """The share of PERIOD's error budget not yet spent: 1 - the burn rate over PERIOD (below 0 when
    overspent). Not recorded: it reads 30 days of samples, so it is queried when looked at."""
    return f"1 - {_operand(source.burn_rate(PERIOD))}"


def objective_per_prompt_type(source: Source, f: Filters) -> str:
    """The objective of each service's prompt types that have calls, labelled like the error ratios."""
    present = f"group by ({by(*PROMPT_KEY)}) ({selector(CALLS, *f.calls)})"
    return f"{present}\n* on ({PROMPT}) group_left ()\n{_operand(source.objective())}"


# --- The multi-window, multi-burn-rate alerts -------------------------------------------------------
@dataclass(frozen=True)
class BurnRateAlert:
    name: str
    uid: str
    severity: str  # critical: page; warning: ticket
    long_window: str
    short_window: str
    factor: float
    for_: str

    @property
    def budget_spent(self) -> float:
        """The share of PERIOD's budget the long window spends at `factor`: 2 %, 5 %, 10 %."""
        return self.factor * seconds(self.long_window) / seconds(PERIOD)


BURN_RATE_ALERTS = (
    BurnRateAlert(
        "AITrackErrorBudgetBurnFast", "aitrack-error-budget-burn-fast", "critical", "1h", "5m", 14.4, "2m"
    ),
    BurnRateAlert(
        "AITrackErrorBudgetBurnSustained",
        "aitrack-error-budget-burn-sustained",
        "critical",
        "6h",
        "30m",
        6,
        "15m",
    ),
    BurnRateAlert(
        "AITrackErrorBudgetBurnSlow", "aitrack-error-budget-burn-slow", "warning", "3d", "6h", 1, "3h"
    ),
)


def burn_rate_condition(alert: BurnRateAlert, source: Source) -> str:
    """Both windows burn faster than the alert's factor; the value is the long window's burn rate."""
    long, short = (
        f"{_operand(source.burn_rate(window))} > {alert.factor:g}"
        for window in (alert.long_window, alert.short_window)
    )
    return f"{group('', long)}\nand\n{group('', short)}"


def increments() -> list[tuple[str, str]]:
    """The calls and failed calls (0 where none failed) of the last STEP, per service and prompt type."""
    failed_or_zero = f"{promql.failed_calls(ALERTS, STEP)}\nor\n{CALLS_RECORD} * 0"
    return [(CALLS_RECORD, promql.calls(ALERTS, STEP)), (FAILED_RECORD, failed_or_zero)]


def recorded_ratio(window: str) -> str:
    """The error ratio the rules file records over `window`: from the STEP records where they suffice
    (STEP itself, SUMMED_WINDOWS), else `failure_ratio` over the raw counters."""
    if window == STEP:
        return f"{FAILED_RECORD}\n/\n{group('', f'{CALLS_RECORD} > 0')}"
    if window in SUMMED_WINDOWS:
        failed, all_calls = (f"sum_over_time({record}[{window}])" for record in (FAILED_RECORD, CALLS_RECORD))
        return f"{failed}\n/\n{group('', f'{all_calls} > 0')}"
    return failure_ratio(ALERTS, window)


def recording_rules(objectives: Objectives) -> list[tuple[str, str]]:
    """(record, expr) in evaluation order: a rule reads only rules above it, in the same group."""
    ratios = [(error_ratio_record(w), recorded_ratio(w)) for w in WINDOWS]
    objective = [(OBJECTIVE_RECORD, objective_definition(objectives, ALERTS))]
    burn_rates = [(burn_rate_record(w), burn_rate_definition(RECORDED, w)) for w in WINDOWS]
    return [*increments(), *ratios, *objective, *burn_rates]
