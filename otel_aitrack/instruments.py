"""The metric instruments, created once per meter from the meter provider given to `instrument()`.

An SDK meter hands back the instruments it already has when asked again for the same names (and keeps
their first callbacks), so the instruments of one meter are made once and reused by every later
`instrument()` on it: counting goes on across `uninstrument()` / `instrument()`.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterable
from typing import Any, NamedTuple

from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from . import collected, forks, names
from .book import FailureBook
from .handoff import DROPPED, new_handoff

Pairs = tuple[tuple[str, Any], ...]  # attribute (name, value) pairs, hashable


class SeriesKey(NamedTuple):
    """One combination of metric attributes of a finished call (see `Instruments.record_call`)."""

    prompt_type: str  # the failure book's bucket: the prompt type, or the overflow bucket
    call_pairs: Pairs  # provider, operation, request model: on every instrument
    server_pairs: Pairs  # server address and port: on the histograms only
    response_model: str | None  # on the histograms only
    error_type: str | None  # failures only
    category: str | None = None  # failures only, on `aitrack.calls` only (aitrack.error.category)
    fingerprint: str | None = None  # failures only, on `aitrack.calls` only: the fingerprint's label


_TOKEN_TYPES = ("input", "output")  # gen_ai.token.type
# Distinct chunk-attribute combinations cached; past it, made per stream (the prompt types are capped).
_MAX_CHUNK_SERIES = 4096
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
        common: dict[str, Any] = {names.GEN_AI_PROMPT_NAME: key.prompt_type, **dict(key.call_pairs)}
        if key.error_type is not None:
            common[names.ERROR_TYPE] = key.error_type
        detailed = {**common, **dict(key.server_pairs)}
        if key.response_model:
            detailed[names.GEN_AI_RESPONSE_MODEL] = key.response_model
        attributes = dict(common)
        if key.error_type is not None:
            attributes[names.AITRACK_ERROR_CATEGORY] = key.category or names.Category.OTHER
            if key.fingerprint is not None:
                attributes[names.AITRACK_ERROR_FINGERPRINT] = key.fingerprint
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
        self._lock = threading.RLock()  # an RLock only so that its owner can be told (collected.py)
        self._series: dict[SeriesKey, Series] = {}
        self._chunk_attributes: dict[tuple[str, Pairs, Pairs], dict[str, Any]] = {}
        forks.register(self)
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
        # The semantic conventions' stream metrics, with the duration's bucket advice (as util-genai).
        self.time_to_first_chunk = meter.create_histogram(
            names.METRIC_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of a stream, from when the request was issued.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.time_per_output_chunk = meter.create_histogram(
            names.METRIC_TIME_PER_OUTPUT_CHUNK,
            unit="s",
            description="Time each chunk after the first took to arrive, from the end of the previous one.",
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
            description="Unix time of the last failed call per prompt type and error type.",
        )

    def count_internal_error(self, error: BaseException) -> None:
        self.internal_errors.add(1, {names.ERROR_TYPE: type(error).__name__})

    def count_dropped(self, count: int) -> None:
        """Histogram measurements the full hand-off dropped (`handoff.LIMIT`)."""
        self.internal_errors.add(count, {names.ERROR_TYPE: DROPPED})

    def held_here(self) -> bool:
        """Whether this thread holds the series' lock or the hand-off's (`collected`)."""
        return collected.owned(self._lock) or self.handoff.held_here()

    def close(self) -> None:
        """End the calls put off and record what is still pending (`uninstrument()`)."""
        collected.end_waiting()
        self.handoff.close()

    def reopen(self) -> None:
        """In use again after `close()` (a later `instrument()` on the same meter)."""
        self.handoff.reopen()

    def reset_after_fork(self) -> None:
        """A forked child starts its counts from zero, under a lock no parent thread can be holding."""
        self._lock = threading.RLock()  # an RLock only so that its owner can be told (collected.py)
        self._series = {}
        self._chunk_attributes = {}

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
        for token_type, token_attributes in series.by_token_type.items():
            count = tokens.get(token_type)
            if count is not None:
                put((self.token_usage.record, count, token_attributes, span_context))

    def chunk_attributes(self, prompt_type: str, call_pairs: Pairs, server_pairs: Pairs) -> dict[str, Any]:
        """The attributes of a stream's chunk measurements: the duration's, but for what only the end of
        the call knows (the response model, error.type). Made once per combination, shared."""
        key = (prompt_type, call_pairs, server_pairs)
        attributes = self._chunk_attributes.get(key)
        if attributes is None:
            attributes = {names.GEN_AI_PROMPT_NAME: prompt_type, **dict(call_pairs), **dict(server_pairs)}
            if len(self._chunk_attributes) < _MAX_CHUNK_SERIES:
                self._chunk_attributes[key] = attributes
        return attributes

    def record_chunk(
        self, histogram: Any, seconds: float, attributes: dict[str, Any], span_context: Context | None
    ) -> None:
        """One chunk's time (`time_to_first_chunk` or `time_per_output_chunk`), off the call path."""
        self.handoff.put((histogram.record, seconds, attributes, span_context))

    def _observe_calls(self, options: CallbackOptions) -> Iterable[Observation]:
        # Called first at every collection, before the SDK reads the histograms: end the calls put off
        # and record what waits.
        collected.end_waiting()
        self.handoff.drain()
        return self.call_observations()

    def call_observations(self) -> list[Observation]:
        """`aitrack.calls`: one observation per counter series, the calls counted in this process."""
        counts: dict[tuple[tuple[str, Any], ...], list[Any]] = {}
        with self._lock:
            for series in self._series.values():  # series that differ only on the histograms add up
                counted = counts.setdefault(series.counter_key, [0, series.attributes])
                counted[0] += series.calls
        return [Observation(count, attributes) for count, attributes in counts.values()]

    def _observe_consecutive(self, options: CallbackOptions) -> Iterable[Observation]:
        for prompt_type, consecutive in self.book.consecutive_failures():
            yield Observation(consecutive, {names.GEN_AI_PROMPT_NAME: prompt_type})

    def _observe_last_failure(self, options: CallbackOptions) -> Iterable[Observation]:
        for prompt_type, error_type, failed_at in self.book.last_failures():
            attributes = {names.GEN_AI_PROMPT_NAME: prompt_type, names.ERROR_TYPE: error_type}
            yield Observation(failed_at, attributes)


# The instruments of each meter (held weakly): made once, reused by every `instrument()` on that meter.
_BY_METER: weakref.WeakKeyDictionary[Meter, Instruments] = weakref.WeakKeyDictionary()


def instruments_of(meter: Meter, book: FailureBook) -> Instruments:
    """The instruments of `meter`: made on its first use, reopened on every later one."""
    try:
        existing = _BY_METER.get(meter)
    except TypeError:  # a meter that cannot be weakly referenced: made anew each time
        existing = None
    if existing is not None and existing.book is book:
        existing.reopen()
        return existing
    instruments = Instruments(meter, book)
    with contextlib.suppress(TypeError):
        _BY_METER[meter] = instruments
    return instruments
