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

from . import forks
from .names import OVERFLOW_PROMPT_TYPE

# Error types whose last failure time is kept per prompt type (`aitrack.last_failure.timestamp`); past
# it, the error type that failed longest ago is forgotten (its series goes stale, the newest stay).
MAX_ERROR_TYPES_PER_PROMPT_TYPE = 20


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
        return {**fields, "failure_rate": self.failure_rate}


@dataclass(frozen=True)
class Failure:
    """What the book keeps of one failed call (already redacted and bounded)."""

    error_code: str
    message: str
    traceback: str | None


class _Figures:
    """The mutable figures behind one prompt type's `PromptStats` (changed under the book's lock)."""

    __slots__ = ("calls", "consecutive", "failed", "last", "last_by_error_type")

    def __init__(self) -> None:
        self.calls = 0
        self.failed = 0
        self.consecutive = 0
        self.last: tuple[Failure, float] | None = None  # the failure and its unix time
        # error type -> unix time it last failed, oldest first (a re-failing type moves to the end)
        self.last_by_error_type: dict[str, float] = {}

    def failed_now(self, failure: Failure, now: float) -> None:
        self.calls += 1
        self.failed += 1
        self.consecutive += 1
        self.last = (failure, now)
        by_type = self.last_by_error_type
        by_type.pop(failure.error_code, None)
        by_type[failure.error_code] = now
        if len(by_type) > MAX_ERROR_TYPES_PER_PROMPT_TYPE:
            del by_type[next(iter(by_type))]

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
            last_failed_at=None if failed_at is None else datetime.fromtimestamp(failed_at, tz=timezone.utc),
        )


class FailureBook:
    """Counts calls and failures per prompt type."""

    def __init__(self, max_prompt_types: int = 100) -> None:
        self.max_prompt_types = max_prompt_types
        self._lock = threading.Lock()
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

    def record_failure(self, prompt_type: str, failure: Failure) -> str:
        """Count a failed call; returns the bucket it was counted under."""
        now = time.time()
        with self._lock:
            key, figures = self._figures_of(prompt_type)
            figures.failed_now(failure, now)
            return key

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
        self._lock = threading.Lock()
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
