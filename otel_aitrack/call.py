"""One instrumented SDK call: its span, its metrics and its entry in the failure book.

A `Call` is started before the SDK method runs and ends exactly once: on return, on exception, or
(for streams) when the stream completes, fails, is closed or is garbage-collected.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import time
from types import FrameType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import names
from .book import Failure
from .config import NO_CONTENT, SPAN_ONLY, ContentMode
from .content import CapturedContent
from .context import Tracking, current_tracking
from .errors import categorize
from .fingerprints import UNKNOWN_ORIGIN, call_origin, fingerprint
from .genai import output_message_attributes, token_attributes
from .guard import guard
from .instruments import SeriesKey
from .names import Category, StreamOutcome
from .providers.base import Endpoint, ErrorDetails, Provider, ResponseDetails, StreamError
from .redaction import bound
from .runtime import Runtime
from .tracebacks import exception_text, full_traceback

# The call in progress in this thread or task, so the SDK's retry loop can be counted.
CURRENT_CALL: contextvars.ContextVar[Call | None] = contextvars.ContextVar("otel_aitrack_call", default=None)

_NO_TOKENS: dict[str, int] = {}
_CANCELLED = (KeyboardInterrupt, asyncio.CancelledError, GeneratorExit, SystemExit)
_METRIC_KEYS = (names.GEN_AI_PROVIDER_NAME, names.GEN_AI_OPERATION_NAME, names.GEN_AI_REQUEST_MODEL)
_SERVER_KEYS = (names.SERVER_ADDRESS, names.SERVER_PORT)


class Call:
    """The telemetry of one SDK call."""

    def __init__(
        self, runtime: Runtime, provider: Provider, endpoint: Endpoint, instance: Any, kwargs: dict[str, Any]
    ) -> None:
        self.runtime = runtime
        self.provider = provider
        self.endpoint = endpoint
        self._unclaimed = [True]  # popped by the one ending that wins (a list pop: atomic, no lock)
        self._started = time.perf_counter()
        self.attempts = 0
        self._attempts_this_send = 0
        self._answer: Any = None  # the HTTP response the SDK parsed (its status, its request id)
        self._tokens: tuple[object, contextvars.Token[Call | None]] | None = None
        self._first_chunk_at: float | None = None
        self._last_chunk_at = 0.0
        self._chunk_attributes: dict[str, Any] | None = None
        # The application's function that made the call (module, name): a failure's fingerprint names it,
        # also for a stream that fails far from there.
        self._origin = UNKNOWN_ORIGIN
        with guard("call origin"):
            self._origin = call_origin(sys._getframe(1))
        tracking = current_tracking()
        self.prompt_type = runtime.labels.prompt_type(tracking.prompt_type)
        settings = runtime.settings
        mode = content_mode_of(settings.capture_content, tracking.capture_content)
        self.content = CapturedContent(mode, runtime.redactor, settings.content_max_length)
        attributes = _start_attributes(runtime, provider, endpoint, instance, kwargs)
        self._call_pairs = _pairs(attributes, _METRIC_KEYS)
        self._server_pairs = _pairs(attributes, _SERVER_KEYS)
        with guard("call attribution"):
            attributes.update(self._attribution(tracking))
        if mode:
            with guard("captured input"):
                attributes.update(self.content.take(provider.input_messages(endpoint, kwargs)))
        self.span = _start_span(runtime, endpoint, attributes)
        self.context_with_span = trace.set_span_in_context(self.span)

    @property
    def capture(self) -> bool:
        """Content is captured for this call (providers then read the messages)."""
        return bool(self.content.mode)

    # --- while the SDK method runs ---------------------------------------------------------------

    def enter(self) -> None:
        """Make the span current (child HTTP spans nest under it) and let retries be counted."""
        self._tokens = (otel_context.attach(self.context_with_span), CURRENT_CALL.set(self))

    def leave(self) -> None:
        if self._tokens is not None:
            otel_token, call_token = self._tokens
            self._tokens = None
            CURRENT_CALL.reset(call_token)
            otel_context.detach(otel_token)  # type: ignore[arg-type]

    def new_send(self) -> None:
        """The SDK starts one request that it may resend (an SDK whose attempts do not say their number)."""
        self._attempts_this_send = 0

    def count_attempt(self, retries_taken: int | None) -> None:
        """One attempt; `retries_taken` when the SDK says it, else counted since the last `new_send()`."""
        self._attempts_this_send += 1
        taken = self._attempts_this_send - 1 if retries_taken is None else retries_taken
        self.attempts = max(self.attempts, taken)

    def answered(self, response: object) -> None:
        """The HTTP response the SDK parses: kept, and read only at the end for what the result lacks."""
        self._answer = response

    def chunk(self) -> None:
        """A stream's chunk arrived: time to the first chunk, then the time each further one took."""
        now = time.perf_counter()
        if self._first_chunk_at is None:
            self._first_chunk_at = now
            self.span.set_attribute(names.GEN_AI_REQUEST_STREAM, True)
            seconds, metric = now - self._started, self.runtime.instruments.time_to_first_chunk
        else:
            seconds, metric = now - self._last_chunk_at, self.runtime.instruments.time_per_output_chunk
        self._last_chunk_at = now
        attributes = self._chunk_attributes
        if attributes is None:
            bucket = self.runtime.book.bucket(self.prompt_type)
            attributes = self._chunk_attributes = self.runtime.instruments.chunk_attributes(
                bucket, self._call_pairs, self._server_pairs
            )
        self.runtime.instruments.record_chunk(metric, seconds, attributes, self.context_with_span)

    # --- endings ---------------------------------------------------------------------------------
    # Each ending is built in layers: the details (attributes, message, traceback, exception event) are
    # each made under their own guard, and whatever of them fails, the ending itself (status, error.type,
    # the failure book, the metrics, the span's end) still happens, each step under its own guard too.

    def succeeded(self, details: ResponseDetails, outcome: str | None = None) -> None:
        if not self._claim_end():
            return
        span = self.span
        with guard("response attributes"):
            span.set_attributes({**self._response_attributes(details), **token_attributes(details.tokens)})
        if self.content.mode and details.output_messages:
            with guard("captured output"):
                span.set_attributes(self.content.take(output_message_attributes(details.output_messages)))
        with guard("call attributes"):
            self._set_common(outcome)
        key = self.prompt_type
        with guard("success count"):
            key = self.runtime.book.record_success(self.prompt_type)
        self._end(key, None, None, details)

    def failed(
        self,
        error: BaseException,
        call_site: FrameType | None,
        outcome: str | None = None,
        response: ResponseDetails | None = None,
        category: str | None = None,
    ) -> None:
        """An exception ended the call; `response` is what a stream told before it failed; `category`
        the one its caller knows better than the provider (a stream cut by a transport error: truncated)."""
        if isinstance(error, _CANCELLED):
            self.cancelled(outcome)
            return
        if not self._claim_end():
            return
        error_type = type(error).__name__
        ending = _Failure(error_type, error_type)  # what is left when every detail fails: the class name
        try:
            if response is not None:
                with guard("stream attributes"):
                    self.span.set_attributes(self._response_attributes(response))
            with guard("error details"):
                ending.details = self._error_details(error, category)
                ending.error_type = ending.details.error_type or error_type
            text = None
            with guard("error message"):
                text, ending.message = self._message(error)
            with guard("error traceback"):
                limit = self.runtime.settings.traceback_max_length
                ending.stack = full_traceback(error, call_site, limit, self.runtime.redactor, text)
            with guard("exception event"):
                self._emit_exception(type(error), ending.error_type, ending.message, ending.stack)
        finally:
            self._end_failed(ending, outcome, response)

    def stream_error(self, error: StreamError, details: ResponseDetails) -> None:
        """A failure carried by a stream event (no exception was raised)."""
        if not self._claim_end():
            return
        ending = _Failure(error.error_type, error.error_type)
        try:
            with guard("stream attributes"):
                self.span.set_attributes(self._response_attributes(details))
            with guard("error message"):
                ending.message = self.runtime.redactor.clean(
                    error.message, self.runtime.settings.message_max_length
                )
            with guard("error details"):
                status = details.attributes.get(names.HTTP_RESPONSE_STATUS_CODE)
                category = self.provider.category(None, error.error_type, None, error.provider_code)
                ending.details = ErrorDetails(status, error.provider_code, None, category)
        finally:
            self._end_failed(ending, StreamOutcome.ERROR, details)

    def truncated(self, details: ResponseDetails) -> None:
        """A stream that ended without its terminal marker."""
        if not self._claim_end():
            return
        ending = _Failure(names.STREAM_TRUNCATED_ERROR_TYPE, _TRUNCATED_MESSAGE)
        ending.details.category = Category.STREAM_TRUNCATED
        try:
            with guard("stream attributes"):
                self.span.set_attributes(self._response_attributes(details))
                ending.details.status_code = details.attributes.get(names.HTTP_RESPONSE_STATUS_CODE)
        finally:
            self._end_failed(ending, StreamOutcome.TRUNCATED, details)

    def cancelled(self, outcome: str | None = None) -> None:
        """Interrupted by the application (Ctrl-C, task cancellation): ended, never counted."""
        if not self._claim_end():
            return
        with guard("cancelled attributes"):
            self.span.set_attribute(names.AITRACK_CALL_CANCELLED, True)
            if outcome:
                self.span.set_attribute(names.AITRACK_STREAM_OUTCOME, outcome)
        with guard("span end"):
            self.span.end()

    # --- helpers ---------------------------------------------------------------------------------

    def _claim_end(self) -> bool:
        try:
            self._unclaimed.pop()
        except IndexError:
            return False
        return True

    def _response_attributes(self, details: ResponseDetails) -> dict[str, Any]:
        """What the response told, its model name redacted like the request's (the provider echoes
        back what it was sent: a key passed as the model comes back in `gen_ai.response.model`)."""
        attributes = details.attributes
        if self._answer is not None and names.HTTP_RESPONSE_STATUS_CODE not in attributes:
            attributes = {**self._answered(names.AITRACK_REQUEST_ID not in attributes), **attributes}
        if names.GEN_AI_RESPONSE_MODEL not in attributes:
            return attributes
        return {**attributes, names.GEN_AI_RESPONSE_MODEL: self._response_model(details)}

    def _answered(self, with_request_id: bool) -> dict[str, Any]:
        """The status of the response the SDK parsed, and its request id if asked (the header is read
        only when the result lacks the id: most parsed results carry it)."""
        attributes: dict[str, Any] = {}
        status = getattr(self._answer, "status_code", None)
        if isinstance(status, int) and not isinstance(status, bool):
            attributes[names.HTTP_RESPONSE_STATUS_CODE] = status
        if with_request_id:
            request_id = self.provider.answer_request_id(self._answer)
            if request_id:
                attributes[names.AITRACK_REQUEST_ID] = request_id
        return attributes

    def _response_model(self, details: ResponseDetails) -> str | None:
        model = details.attributes.get(names.GEN_AI_RESPONSE_MODEL)
        return self.runtime.labels.model(model) if isinstance(model, str) else None

    def _attribution(self, tracking: Tracking) -> dict[str, Any]:
        labels = self.runtime.labels
        attributes: dict[str, Any] = {names.GEN_AI_PROMPT_NAME: self.prompt_type}
        if tracking.task is not None:
            attributes[names.AITRACK_TASK] = labels.task(tracking.task)
        if tracking.user is not None:
            attributes[names.USER_ID] = labels.user(tracking.user)
        return attributes

    def _error_details(self, error: BaseException, category: str | None) -> ErrorDetails:
        details = self.provider.error_details(error)
        if category is not None:
            details.category = category
        if self._answer is not None and details.status_code is None:  # answered, then failed to parse
            answered = self._answered(not details.request_id)
            details.status_code = answered.get(names.HTTP_RESPONSE_STATUS_CODE)
            details.request_id = details.request_id or answered.get(names.AITRACK_REQUEST_ID)
        if details.resend_count:  # the SDK's own count (botocore's), where no retry hook counts
            self.attempts = max(self.attempts, details.resend_count)
        return details

    def _message(self, error: BaseException) -> tuple[str | None, str]:
        """The exception's text redacted (None when `str()` fails: the traceback says so), and the
        message: that text bounded, or the class name when there is none."""
        settings = self.runtime.settings
        raw = exception_text(error)
        # Bounded before redacted (linear in the bound), long enough for the traceback's exception line.
        longest = max(settings.message_max_length, settings.traceback_max_length // 4)
        text = None if raw is None else self.runtime.redactor.clean(raw, longest)
        return text, bound(text or type(error).__name__, settings.message_max_length)

    def _set_common(self, outcome: str | None) -> None:
        if self.attempts:
            self.span.set_attribute(names.HTTP_REQUEST_RESEND_COUNT, self.attempts)
        if outcome:
            self.span.set_attribute(names.AITRACK_STREAM_OUTCOME, outcome)
        if self._first_chunk_at is not None:
            seconds = self._first_chunk_at - self._started
            self.span.set_attribute(names.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, seconds)

    def _end_failed(self, ending: _Failure, outcome: str | None, response: ResponseDetails | None) -> None:
        """What a failed call always gets, whatever else failed: status ERROR and error.type, its count
        in the failure book and the metrics, and the end of its span."""
        span = self.span
        with guard("failure status"):
            span.set_attribute(names.ERROR_TYPE, ending.error_type)
            # The message alone: the conventions advise against repeating error.type in the description.
            span.set_status(Status(StatusCode.ERROR, ending.message))
        with guard("failure attributes"):
            span.set_attributes(_failure_attributes(ending))
            self._set_common(outcome)
            if outcome in _FAILED_STREAM:
                span.set_attribute(names.GEN_AI_RESPONSE_FINISH_REASONS, _with_error(response))
        details, category = ending.details, ending.details.category or Category.OTHER
        group = None
        with guard("failure fingerprint"):
            provider = dict(self._call_pairs).get(names.GEN_AI_PROVIDER_NAME, "")
            group = fingerprint(str(provider), ending.error_type, details.provider_code, self._origin)
            span.set_attribute(names.AITRACK_ERROR_FINGERPRINT, group)
        key, label = self.prompt_type, None
        with guard("failure count"):
            failure = Failure(
                ending.error_type, ending.message, ending.stack, group, details.provider_code, category
            )
            key, label = self.runtime.book.record_failure(self.prompt_type, failure)
        self._end(key, ending.error_type, category, response, label)

    def _end(
        self,
        key: str,
        error_type: str | None,
        category: str | None,
        details: ResponseDetails | None,
        group: str | None = None,
    ) -> None:
        with guard("call metrics"):
            self._record_metrics(key, error_type, category, details, group)
        if self.content.mode.event:
            with guard("content event"):
                self._emit_content(error_type, details)
        with guard("span end"):
            self.span.end()

    def _record_metrics(
        self,
        key: str,
        error_type: str | None,
        category: str | None,
        details: ResponseDetails | None,
        group: str | None,
    ) -> None:
        seconds = time.perf_counter() - self._started
        model, tokens = None, _NO_TOKENS
        if details is not None:
            model, tokens = self._response_model(details), details.tokens
        series = SeriesKey(key, self._call_pairs, self._server_pairs, model, error_type, category, group)
        self.runtime.instruments.record_call(series, seconds, tokens, self.context_with_span)

    def _emit_exception(
        self, error_class: type[BaseException], error_type: str, message: str, stack: str | None
    ) -> None:
        """The exception the semantic-convention way, redacted: never the raw exception object.

        On the span, the `exception` event; as a log record (`OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN`), the
        GenAI conventions' `gen_ai.client.operation.exception` event at WARN, with the call's attributes.
        """
        attributes = {names.EXCEPTION_TYPE: _qualified_name(error_class), names.EXCEPTION_MESSAGE: message}
        if stack is not None:
            attributes[names.EXCEPTION_STACKTRACE] = stack
        settings = self.runtime.settings
        if settings.exception_as_span_event:
            self.span.add_event(names.EXCEPTION_EVENT, attributes)
        if settings.exception_as_log:
            record = LogRecord(
                context=self.context_with_span,
                severity_number=SeverityNumber.WARN,
                severity_text="WARN",
                attributes={**self._event_attributes(error_type), **attributes},
                event_name=names.EVENT_OPERATION_EXCEPTION,
            )
            self.runtime.logger.emit(record)

    def _emit_content(self, error_type: str | None, details: ResponseDetails | None) -> None:
        attributes = self._event_attributes(error_type)
        if details is not None:
            attributes.update(self._response_attributes(details))
            attributes.update(token_attributes(details.tokens))
        record = self.content.event(self.context_with_span, attributes)
        if record is not None:
            self.runtime.logger.emit(record)

    def _event_attributes(self, error_type: str | None) -> dict[str, Any]:
        """What an event of this call says of it: the request's attributes, the prompt type, error.type."""
        attributes: dict[str, Any] = {
            **dict(self._call_pairs),
            **dict(self._server_pairs),
            names.GEN_AI_PROMPT_NAME: self.prompt_type,
        }
        if error_type is not None:
            attributes[names.ERROR_TYPE] = error_type
        return attributes


_TRUNCATED_MESSAGE = "The stream ended without its end marker (no finish reason / completion event)."
_FAILED_STREAM = (StreamOutcome.ERROR, StreamOutcome.TRUNCATED)
_ERROR_FINISH_REASON = "error"


def _with_error(response: ResponseDetails | None) -> list[str]:
    """A failed or cut-off stream's finish reasons: those that arrived before (if any), then `error`."""
    reasons = None if response is None else response.attributes.get(names.GEN_AI_RESPONSE_FINISH_REASONS)
    seen = [str(reason) for reason in reasons] if isinstance(reasons, (list, tuple)) else []
    return seen if _ERROR_FINISH_REASON in seen else [*seen, _ERROR_FINISH_REASON]


def content_mode_of(setting: ContentMode, chosen: bool | ContentMode | None) -> ContentMode:
    """A call's content mode: the block's (`track(capture_content=...)`), else the process-wide one.
    `True` captures where the process-wide mode says, on the span when that is off."""
    if chosen is None:
        return setting
    if chosen is True:
        return setting or SPAN_ONLY
    if chosen is False:
        return NO_CONTENT
    return chosen


class _Failure:
    """What the ending of a failed call is made of; the details are filled in as far as they can be."""

    __slots__ = ("details", "error_type", "message", "stack")

    def __init__(self, error_type: str, message: str) -> None:
        self.error_type = error_type
        self.message = message  # redacted and bounded; the class name until the real one is made
        self.stack: str | None = None
        # Until the provider's reading is made (and if it fails): what the class name alone tells
        # (APITimeoutError: timeout), by the core's generic rules, which cannot fail.
        self.details = ErrorDetails(category=categorize(error_type, None, None))


def _start_attributes(
    runtime: Runtime, provider: Provider, endpoint: Endpoint, instance: Any, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The request's attributes, the model name redacted (a key passed as the model must not leave);
    the operation and the provider's name alone when they cannot be read."""
    with guard("request attributes"):
        attributes = provider.request_attributes(endpoint, instance, kwargs)
        model = attributes.pop(names.GEN_AI_REQUEST_MODEL, None)
        if isinstance(model, str):
            attributes[names.GEN_AI_REQUEST_MODEL] = runtime.labels.model(model)
        return attributes
    return {names.GEN_AI_OPERATION_NAME: endpoint.operation, names.GEN_AI_PROVIDER_NAME: provider.name}


def _start_span(runtime: Runtime, endpoint: Endpoint, attributes: dict[str, Any]) -> trace.Span:
    """The call's span; a non-recording one if the tracer fails, so that the call is still counted."""
    with guard("span start"):
        model = attributes.get(names.GEN_AI_REQUEST_MODEL)
        name = f"{endpoint.operation} {model}" if model else endpoint.operation
        return runtime.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
    return trace.INVALID_SPAN


def _pairs(attributes: dict[str, Any], keys: tuple[str, ...]) -> tuple[tuple[str, Any], ...]:
    return tuple([(key, attributes[key]) for key in keys if key in attributes])


def _failure_attributes(ending: _Failure) -> dict[str, Any]:
    details = ending.details
    attributes: dict[str, Any] = {
        names.AITRACK_ERROR_MESSAGE: ending.message,
        names.AITRACK_ERROR_CATEGORY: details.category or Category.OTHER,
    }
    if ending.stack is not None:
        attributes[names.AITRACK_ERROR_TRACEBACK] = ending.stack
    if details.status_code is not None:
        attributes[names.HTTP_RESPONSE_STATUS_CODE] = details.status_code
    if details.provider_code:
        attributes[names.AITRACK_ERROR_PROVIDER_CODE] = details.provider_code
    if details.request_id:
        attributes[names.AITRACK_REQUEST_ID] = details.request_id
    return attributes


def _qualified_name(error_class: type[BaseException]) -> str:
    module = error_class.__module__
    return error_class.__qualname__ if module == "builtins" else f"{module}.{error_class.__qualname__}"
