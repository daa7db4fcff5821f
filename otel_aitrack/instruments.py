"""The metric instruments, created once per `instrument()` from the meter provider given to it."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from . import names
from .book import FailureBook
from .handoff import new_handoff

# Bucket advice from the GenAI semantic conventions.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip


class Instruments:
    """Histograms recorded per call; the call counter and the gauges observed at collection time.

    `aitrack.calls` is counted here under a lock and observed by the SDK only when it collects: a dict
    increment per call instead of a synchronous measurement (the SDK validates and hashes the
    attributes of every measurement), and the counter can never disagree with `stats()`. The histogram
    measurements go through a hand-off (see `handoff`), drained before every collection.
    """

    def __init__(self, meter: Meter, book: FailureBook) -> None:
        self.book = book
        self.handoff = new_handoff()
        self._calls_lock = threading.Lock()
        self._calls: dict[tuple[tuple[str, Any], ...], list[Any]] = {}
        meter.create_observable_counter(
            names.METRIC_CALLS,
            callbacks=[self._observe_calls],
            unit="{call}",
            description="AI provider calls, failed ones with error.type.",
        )
        self.internal_errors = meter.create_counter(
            names.METRIC_INSTRUMENTATION_ERRORS,
            unit="{error}",
            description="Internal otel-aitrack errors that were swallowed; the user's calls were unaffected.",
        )
        self.duration = meter.create_histogram(
            names.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.token_usage = meter.create_histogram(
            names.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=[float(b) for b in TOKEN_BUCKETS],
        )
        meter.create_observable_gauge(
            names.METRIC_CONSECUTIVE_FAILURES,
            callbacks=[self._observe_consecutive],
            unit="{call}",
            description="Failed calls in a row per prompt type; 0 after a success.",
        )
        meter.create_observable_gauge(
            names.METRIC_LAST_FAILURE_TIMESTAMP,
            callbacks=[self._observe_last_failure],
            unit="s",
            description="Unix time of the last failed call per prompt type.",
        )

    def count_internal_error(self, error: BaseException) -> None:
        self.internal_errors.add(1, {names.ERROR_TYPE: type(error).__name__})

    def close(self) -> None:
        """Record what is still pending (`uninstrument()`)."""
        self.handoff.close()

    def record_call(
        self,
        attributes: dict[str, Any],
        extra: dict[str, Any],
        seconds: float,
        tokens: dict[str, int],
        span_context: Context | None = None,
    ) -> None:
        """One finished call: `attributes` on every instrument, `extra` (semconv) on the histograms.

        `span_context` holds the call's span, so the histograms carry exemplars pointing at its trace.
        """
        key = tuple(attributes.items())
        with self._calls_lock:
            counted = self._calls.get(key)
            if counted is None:
                self._calls[key] = [1, attributes]
            else:
                counted[0] += 1
        detailed = {**attributes, **extra}
        put = self.handoff.put
        put((self.duration.record, seconds, detailed, span_context))
        for token_type, count in tokens.items():
            put(
                (
                    self.token_usage.record,
                    count,
                    {**detailed, names.GEN_AI_TOKEN_TYPE: token_type},
                    span_context,
                )
            )

    def _observe_calls(self, options: CallbackOptions) -> Iterable[Observation]:
        # Called first at every collection, before the SDK reads the histograms: record what waits.
        self.handoff.drain()
        with self._calls_lock:
            counts = [(count, attributes) for count, attributes in self._calls.values()]
        for count, attributes in counts:
            yield Observation(count, attributes)

    def _observe_consecutive(self, options: CallbackOptions) -> Iterable[Observation]:
        for prompt_type, stats in self.book.snapshot().items():
            yield Observation(stats.consecutive_failures, {names.GEN_AI_PROMPT_NAME: prompt_type})

    def _observe_last_failure(self, options: CallbackOptions) -> Iterable[Observation]:
        for prompt_type, stats in self.book.snapshot().items():
            if stats.last_failure_timestamp is not None:
                yield Observation(stats.last_failure_timestamp, {names.GEN_AI_PROMPT_NAME: prompt_type})
