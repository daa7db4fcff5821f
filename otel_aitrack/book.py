"""The failure book: per-prompt-type figures of this process, behind `otel_aitrack.stats()`.

One lock guards every update, so totals and consecutive counts are exact under threads and tasks.
Prompt types beyond the cardinality limit fold into one overflow bucket, here and in the metrics.
A forked child starts with an empty book and a fresh lock (`forks`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from . import collected, forks
from .names import OVERFLOW_FINGERPRINT, OVERFLOW_PROMPT_TYPE

# Error types whose last failure time is kept per prompt type (`aitrack.last_failure.timestamp`); past
# it, the error type that failed longest ago is forgotten (its series goes stale, the newest stay).
MAX_ERROR_TYPES_PER_PROMPT_TYPE = 20
# Failure groups kept per prompt type in `stats()`; past it, the group seen longest ago folds into the
# overflow group. In the metrics, the first this many fingerprints of a prompt type are labels of their
# own and later ones are counted under `_overflow` (a counter's series cannot move to another label).
MAX_FAILURE_GROUPS_PER_PROMPT_TYPE = 20


@dataclass(frozen=True)
class FailureGroup:
    """The failures of one prompt type that share a fingerprint: one kind of failure from one place."""

    fingerprint: str  # `aitrack.error.fingerprint`, or `_overflow` for the groups folded together
    error_code: str  # error.type
    provider_code: str | None  # aitrack.error.provider_code
    category: str | None  # aitrack.error.category
    count: int
    first_seen: datetime
    last_seen: datetime
    last_message: str
    last_traceback: str | None

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class PromptStats:
    """The figures of one prompt type (an AI feature) in this process."""

    prompt_type: str
    total_calls: int = 0
    total_failed_calls: int = 0
    consecutive_failures: int = 0
    last_error_code: str | None = None
    last_error_message: str | None = None
    last_error_traceback: str | None = None
    last_failed_at: datetime | None = None
    # The distinct failures, most frequent first (the overflow group, if any, last).
    failure_groups: tuple[FailureGroup, ...] = ()

    @property
    def failure_rate(self) -> float:
        """Failed calls as a percentage of all calls, e.g. `40.0`."""
        if not self.total_calls:
            return 0.0
        return round(100.0 * self.total_failed_calls / self.total_calls, 2)

    @property
    def last_failure_timestamp(self) -> float | None:
        return self.last_failed_at.timestamp() if self.last_failed_at else None

    def as_dict(self) -> dict[str, object]:
        """Every figure by its seed name, `failure_rate` included."""
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        fields["failure_groups"] = [group.as_dict() for group in self.failure_groups]
        return {**fields, "failure_rate": self.failure_rate}


@dataclass(frozen=True)
class Failure:
    """What the book keeps of one failed call (already redacted and bounded)."""

    error_code: str
    message: str
    traceback: str | None
    fingerprint: str | None = None  # None when it could not be made: the failure still counts
    provider_code: str | None = None
    category: str | None = None


def _utc(unix_time: float) -> datetime:
    return datetime.fromtimestamp(unix_time, tz=timezone.utc)


class _Group:
    """The mutable figures of one failure group."""

    __slots__ = ("count", "first_seen", "last", "last_seen")

    def __init__(self, failure: Failure, now: float) -> None:
        self.count = 0
        self.first_seen = now
        self.last_seen = now
        self.last = failure

    def add(self, failure: Failure, now: float, count: int = 1) -> None:
        self.count += count
        self.last_seen = now
        self.last = failure

    def fold(self, other: _Group) -> None:
        """Take in a group folded into this one (the overflow group)."""
        self.count += other.count
        self.first_seen = min(self.first_seen, other.first_seen)
        if other.last_seen >= self.last_seen:
            self.last_seen, self.last = other.last_seen, other.last

    def frozen(self, fingerprint: str) -> FailureGroup:
        last = self.last
        return FailureGroup(
            fingerprint=fingerprint,
            error_code=last.error_code,
            provider_code=last.provider_code,
            category=last.category,
            count=self.count,
            first_seen=_utc(self.first_seen),
            last_seen=_utc(self.last_seen),
            last_message=last.message,
            last_traceback=last.traceback,
        )


class _Figures:
    """The mutable figures behind one prompt type's `PromptStats` (changed under the book's lock)."""

    __slots__ = (
        "calls",
        "consecutive",
        "failed",
        "groups",
        "labelled",
        "last",
        "last_by_error_type",
        "overflow",
    )

    def __init__(self) -> None:
        self.calls = 0
        self.failed = 0
        self.consecutive = 0
        self.last: tuple[Failure, float] | None = None  # the failure and its unix time
        # error type -> unix time it last failed, oldest first (a re-failing type moves to the end)
        self.last_by_error_type: dict[str, float] = {}
        self.groups: dict[str, _Group] = {}  # fingerprint -> group, the one seen longest ago first
        self.overflow: _Group | None = None
        self.labelled: set[str] = set()  # the fingerprints that are metric labels of their own

    def failed_now(self, failure: Failure, now: float) -> str | None:
        """Count a failure; its fingerprint's metric label (the fingerprint, or `_overflow`)."""
        self.calls += 1
        self.failed += 1
        self.consecutive += 1
        self.last = (failure, now)
        by_type = self.last_by_error_type
        by_type.pop(failure.error_code, None)
        by_type[failure.error_code] = now
        if len(by_type) > MAX_ERROR_TYPES_PER_PROMPT_TYPE:
            del by_type[next(iter(by_type))]
        if failure.fingerprint is None:
            return None
        self._group(failure.fingerprint, failure, now)
        return self._label(failure.fingerprint)

    def _group(self, fingerprint: str, failure: Failure, now: float) -> None:
        groups = self.groups
        group = groups.pop(fingerprint, None)
        if group is None:
            group = _Group(failure, now)
            if len(groups) >= MAX_FAILURE_GROUPS_PER_PROMPT_TYPE:
                oldest = groups.pop(next(iter(groups)))
                if self.overflow is None:
                    self.overflow = _Group(oldest.last, oldest.first_seen)
                self.overflow.fold(oldest)
        group.add(failure, now)
        groups[fingerprint] = group  # the most recently seen last

    def _label(self, fingerprint: str) -> str:
        labelled = self.labelled
        if fingerprint in labelled:
            return fingerprint
        if len(labelled) < MAX_FAILURE_GROUPS_PER_PROMPT_TYPE:
            labelled.add(fingerprint)
            return fingerprint
        return OVERFLOW_FINGERPRINT

    def failure_groups(self) -> tuple[FailureGroup, ...]:
        ranked = sorted(self.groups.items(), key=lambda item: (-item[1].count, -item[1].last_seen))
        groups = [group.frozen(fingerprint) for fingerprint, group in ranked]
        if self.overflow is not None:
            groups.append(self.overflow.frozen(OVERFLOW_FINGERPRINT))
        return tuple(groups)

    def stats(self, prompt_type: str) -> PromptStats:
        failure, failed_at = self.last if self.last else (None, None)
        return PromptStats(
            prompt_type=prompt_type,
            total_calls=self.calls,
            total_failed_calls=self.failed,
            consecutive_failures=self.consecutive,
            last_error_code=failure.error_code if failure else None,
            last_error_message=failure.message if failure else None,
            last_error_traceback=failure.traceback if failure else None,
            last_failed_at=None if failed_at is None else _utc(failed_at),
            failure_groups=self.failure_groups(),
        )


class FailureBook:
    """Counts calls and failures per prompt type."""

    def __init__(self, max_prompt_types: int = 100) -> None:
        self.max_prompt_types = max_prompt_types
        self._lock = threading.RLock()  # an RLock only so that its owner can be told (collected.py)
        self._figures: dict[str, _Figures] = {}
        forks.register(self)

    def bucket(self, prompt_type: str) -> str:
        """The name a prompt type is counted under: itself, or the overflow bucket past the limit."""
        figures = self._figures
        if prompt_type in figures or len(figures) < self.max_prompt_types:
            return prompt_type
        return OVERFLOW_PROMPT_TYPE

    def record_success(self, prompt_type: str) -> str:
        """Count a successful call; returns the bucket it was counted under."""
        with self._lock:
            key, figures = self._figures_of(prompt_type)
            figures.calls += 1
            figures.consecutive = 0
            return key

    def record_failure(self, prompt_type: str, failure: Failure) -> tuple[str, str | None]:
        """Count a failed call; the bucket it was counted under, and its fingerprint's metric label."""
        now = time.time()
        with self._lock:
            key, figures = self._figures_of(prompt_type)
            return key, figures.failed_now(failure, now)

    def held_here(self) -> bool:
        """Whether this thread holds the book's lock (`collected`)."""
        return collected.owned(self._lock)

    def snapshot(self) -> dict[str, PromptStats]:
        with self._lock:
            return {key: figures.stats(key) for key, figures in self._figures.items()}

    def consecutive_failures(self) -> list[tuple[str, int]]:
        """(prompt type, failures in a row) of every prompt type seen."""
        with self._lock:
            return [(key, figures.consecutive) for key, figures in self._figures.items()]

    def last_failures(self) -> list[tuple[str, str, float]]:
        """(prompt type, error type, unix time it last failed) of every error type kept."""
        with self._lock:
            return [
                (key, error_type, failed_at)
                for key, figures in self._figures.items()
                for error_type, failed_at in figures.last_by_error_type.items()
            ]

    def clear(self) -> None:
        with self._lock:
            self._figures.clear()

    def reset_after_fork(self) -> None:
        """A forked child counts its own calls only, under a lock no parent thread can be holding."""
        self._lock = threading.RLock()  # an RLock only so that its owner can be told (collected.py)
        self._figures = {}

    def _figures_of(self, prompt_type: str) -> tuple[str, _Figures]:
        key = self.bucket(prompt_type)
        figures = self._figures.get(key)
        if figures is None:
            figures = self._figures[key] = _Figures()
        return key, figures


BOOK = FailureBook()


def stats() -> dict[str, PromptStats]:
    """The per-prompt-type figures of this process: `{prompt_type: PromptStats}`."""
    return BOOK.snapshot()


def reset_stats() -> None:
    """Forget every figure (for tests and for long-running processes that report by period)."""
    BOOK.clear()
