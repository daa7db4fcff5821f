"""The failure book: per-prompt-type figures of this process, behind `otel_aitrack.stats()`.

One lock guards every update, so totals and consecutive counts are exact under threads and tasks.
Prompt types beyond the cardinality limit fold into one overflow bucket, here and in the metrics.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from .names import OVERFLOW_PROMPT_TYPE


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


class FailureBook:
    """Counts calls and failures per prompt type."""

    def __init__(self, max_prompt_types: int = 100) -> None:
        self.max_prompt_types = max_prompt_types
        self._lock = threading.Lock()
        self._stats: dict[str, PromptStats] = {}

    def bucket(self, prompt_type: str) -> str:
        """The name a prompt type is counted under: itself, or the overflow bucket past the limit."""
        stats = self._stats
        if prompt_type in stats or len(stats) < self.max_prompt_types:
            return prompt_type
        return OVERFLOW_PROMPT_TYPE

    def record_success(self, prompt_type: str) -> str:
        """Count a successful call; returns the bucket it was counted under."""
        with self._lock:
            key = self.bucket(prompt_type)
            old = self._stats.get(key) or PromptStats(key)
            self._stats[key] = replace(old, total_calls=old.total_calls + 1, consecutive_failures=0)
            return key

    def record_failure(self, prompt_type: str, failure: Failure) -> str:
        """Count a failed call; returns the bucket it was counted under."""
        now = datetime.fromtimestamp(time.time(), tz=timezone.utc)
        with self._lock:
            key = self.bucket(prompt_type)
            old = self._stats.get(key) or PromptStats(key)
            self._stats[key] = replace(
                old,
                total_calls=old.total_calls + 1,
                total_failed_calls=old.total_failed_calls + 1,
                consecutive_failures=old.consecutive_failures + 1,
                last_error_code=failure.error_code,
                last_error_message=failure.message,
                last_error_traceback=failure.traceback,
                last_failed_at=now,
            )
            return key

    def snapshot(self) -> dict[str, PromptStats]:
        with self._lock:
            return dict(self._stats)

    def clear(self) -> None:
        with self._lock:
            self._stats.clear()


BOOK = FailureBook()


def stats() -> dict[str, PromptStats]:
    """The per-prompt-type figures of this process: `{prompt_type: PromptStats}`."""
    return BOOK.snapshot()


def reset_stats() -> None:
    """Forget every figure (for tests and for long-running processes that report by period)."""
    BOOK.clear()
