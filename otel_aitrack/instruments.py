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

Pairs = tuple[tuple[str, Any], ...]  # attribute (name, value) pairs, hashable
# (prompt type, call pairs, server pairs, response model, error type): see `Instruments.record_call`.
SeriesKey = tuple[str, Pairs, Pairs, "str | None", "str | None"]
_TOKEN_TYPES = ("input", "output")  # gen_ai.token.type
# Bucket advice from the GenAI semantic conventions.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip


class Series:
    """One combination of metric attributes: its call count, and the attribute dicts of its histogram
    measurements, made once and shared by them (the SDK only reads them)."""

    __slots__ = ("attributes", "by_token_type", "calls", "counter_key", "detailed")

    def __init__(self, key: SeriesKey) -> None:
        prompt_type, call_pairs, server_pairs, response_model, error_type = key
        attributes: dict[str, Any] = {names.GEN_AI_PROMPT_NAME: prompt_type, **dict(call_pairs)}
        if error_type is not None:
            attributes[names.ERROR_TYPE] = error_type
        detailed = {**attributes, **dict(server_pairs)}
        if response_model:
            detailed[names.GEN_AI_RESPONSE_MODEL] = response_model
        self.calls = 0
        self.attributes = attributes  # aitrack.calls
        self.counter_key = tuple(attributes.items())
        self.detailed = detailed  # gen_ai.client.operation.duration
        self.by_token_type = {kind: {**detailed, names.GEN_AI_TOKEN_TYPE: kind} for kind in _TOKEN_TYPES}


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
        self._lock = threading.Lock()
        self._series: dict[SeriesKey, Series] = {}
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
        self, key: SeriesKey, seconds: float, tokens: dict[str, int], span_context: Context | None = None
    ) -> None:
        """One finished call of the series `key`: (prompt type, call pairs, server pairs, response model,
        error type). The call pairs (provider, operation, request model) go on every instrument with the
        prompt type and the error type; the server pairs and the response model on the histograms only.

        `span_context` holds the call's span, so the histograms carry exemplars pointing at its trace.
        """
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = Series(key)
            series.calls += 1
        put = self.handoff.put
        put((self.duration.record, seconds, series.detailed, span_context))
        for token_type, count in tokens.items():
            put((self.token_usage.record, count, series.by_token_type[token_type], span_context))

    def _observe_calls(self, options: CallbackOptions) -> Iterable[Observation]:
        # Called first at every collection, before the SDK reads the histograms: record what waits.
        self.handoff.drain()
        counts: dict[tuple[tuple[str, Any], ...], list[Any]] = {}
        with self._lock:
            for series in self._series.values():  # series that differ only on the histograms add up
                counted = counts.setdefault(series.counter_key, [0, series.attributes])
                counted[0] += series.calls
        for count, attributes in counts.values():
            yield Observation(count, attributes)

    def _observe_consecutive(self, options: CallbackOptions) -> Iterable[Observation]:
        for prompt_type, stats in self.book.snapshot().items():
            yield Observation(stats.consecutive_failures, {names.GEN_AI_PROMPT_NAME: prompt_type})

    def _observe_last_failure(self, options: CallbackOptions) -> Iterable[Observation]:
        for prompt_type, stats in self.book.snapshot().items():
            if stats.last_failure_timestamp is not None:
                yield Observation(stats.last_failure_timestamp, {names.GEN_AI_PROMPT_NAME: prompt_type})
