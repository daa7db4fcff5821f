"""One instrumented SDK call: its span, its metrics and its entry in the failure book.

A `Call` is started before the SDK method runs and ends exactly once: on return, on exception, or
(for streams) when the stream completes, fails, is closed or is garbage-collected.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from types import FrameType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import names
from .book import Failure
from .context import current_tracking
from .errors import categorize
from .genai import output_message_attributes, token_attributes
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
        tracking = current_tracking()
        self.prompt_type = tracking.prompt_type
        capture = tracking.capture_content
        self.capture = runtime.settings.capture_content if capture is None else capture
        attributes = provider.request_attributes(endpoint, instance, kwargs)
        self._call_pairs = _pairs(attributes, _METRIC_KEYS)
        self._server_pairs = _pairs(attributes, _SERVER_KEYS)
        attributes[names.GEN_AI_PROMPT_NAME] = self.prompt_type
        if tracking.task is not None:
            attributes[names.AITRACK_TASK] = tracking.task
        if tracking.user is not None:
            attributes[names.USER_ID] = tracking.user
        if self.capture:
            attributes.update(self._clean_content(provider.input_messages(endpoint, kwargs)))
        model = attributes.get(names.GEN_AI_REQUEST_MODEL)
        name = f"{endpoint.operation} {model}" if model else endpoint.operation
        self.span = runtime.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        self.context_with_span = trace.set_span_in_context(self.span)
        self.attempts = 0
        self._attempts_this_send = 0
        self._started = time.perf_counter()
        self._ended = False
        self._lock = threading.Lock()
        self._tokens: tuple[object, contextvars.Token[Call | None]] | None = None

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

    # --- endings ---------------------------------------------------------------------------------

    def succeeded(self, details: ResponseDetails, outcome: str | None = None) -> None:
        if not self._claim_end():
            return
        span = self.span
        span.set_attributes({**details.attributes, **token_attributes(details.tokens)})
        if self.capture and details.output_messages:
            span.set_attributes(self._clean_content(output_message_attributes(details.output_messages)))
        self._set_common(outcome)
        key = self.runtime.book.record_success(self.prompt_type)
        self._record_metrics(key, None, details)
        span.end()

    def failed(
        self,
        error: BaseException,
        call_site: FrameType | None,
        outcome: str | None = None,
        response: ResponseDetails | None = None,
    ) -> None:
        """An exception ended the call; `response` is what a stream told before it failed."""
        if isinstance(error, _CANCELLED):
            self.cancelled(outcome)
            return
        if not self._claim_end():
            return
        if response is not None:
            self.span.set_attributes(response.attributes)
        details = self.provider.error_details(error)
        if outcome == StreamOutcome.TRUNCATED:
            details.category = Category.STREAM_TRUNCATED
        settings = self.runtime.settings
        redactor = self.runtime.redactor
        raw = exception_text(error)
        text = None if raw is None else redactor.redact(raw)  # None: the traceback says str() failed
        message = bound(text or type(error).__name__, settings.message_max_length)
        stack = bound(
            full_traceback(error, call_site, settings.traceback_max_length, redactor, text),
            settings.traceback_max_length,
        )
        self._emit_exception(type(error), message, stack)
        self._record_failure(type(error).__name__, message, stack, details, outcome, response)

    def stream_error(self, error: StreamError, details: ResponseDetails) -> None:
        """A failure carried by a stream event (no exception was raised)."""
        if not self._claim_end():
            return
        self.span.set_attributes(details.attributes)
        message = self.runtime.redactor.clean(error.message, self.runtime.settings.message_max_length)
        status = details.attributes.get(names.HTTP_RESPONSE_STATUS_CODE)
        category = categorize(error.error_type, None, error.provider_code)
        error_details = ErrorDetails(status, error.provider_code, None, category)
        self._record_failure(error.error_type, message, None, error_details, StreamOutcome.ERROR, details)

    def truncated(self, details: ResponseDetails) -> None:
        """A stream that ended without its terminal marker."""
        if not self._claim_end():
            return
        self.span.set_attributes(details.attributes)
        error_details = ErrorDetails(
            details.attributes.get(names.HTTP_RESPONSE_STATUS_CODE), None, None, Category.STREAM_TRUNCATED
        )
        message = "The stream ended without its end marker (no finish reason / completion event)."
        self._record_failure(
            names.STREAM_TRUNCATED_ERROR_TYPE, message, None, error_details, StreamOutcome.TRUNCATED, details
        )

    def cancelled(self, outcome: str | None = None) -> None:
        """Interrupted by the application (Ctrl-C, task cancellation): ended, never counted."""
        if not self._claim_end():
            return
        self.span.set_attribute(names.AITRACK_CALL_CANCELLED, True)
        if outcome:
            self.span.set_attribute(names.AITRACK_STREAM_OUTCOME, outcome)
        self.span.end()

    # --- helpers ---------------------------------------------------------------------------------

    def _claim_end(self) -> bool:
        with self._lock:
            if self._ended:
                return False
            self._ended = True
            return True

    def _set_common(self, outcome: str | None) -> None:
        if self.attempts:
            self.span.set_attribute(names.HTTP_REQUEST_RESEND_COUNT, self.attempts)
        if outcome:
            self.span.set_attribute(names.AITRACK_STREAM_OUTCOME, outcome)

    def _record_failure(
        self,
        error_type: str,
        message: str,
        stack: str | None,
        details: ErrorDetails,
        outcome: str | None,
        response: ResponseDetails | None = None,
    ) -> None:
        span = self.span
        span.set_attributes(_failure_attributes(error_type, message, stack, details))
        span.set_status(Status(StatusCode.ERROR, f"{error_type}: {message}"))
        self._set_common(outcome)
        key = self.runtime.book.record_failure(self.prompt_type, Failure(error_type, message, stack))
        self._record_metrics(key, error_type, response)
        span.end()

    def _record_metrics(self, key: str, error_type: str | None, details: ResponseDetails | None) -> None:
        seconds = time.perf_counter() - self._started
        model, tokens = None, _NO_TOKENS
        if details is not None:
            model, tokens = details.attributes.get(names.GEN_AI_RESPONSE_MODEL), details.tokens
        instruments = self.runtime.instruments
        series = (key, self._call_pairs, self._server_pairs, model, error_type)
        instruments.record_call(series, seconds, tokens, self.context_with_span)

    def _emit_exception(self, error_class: type[BaseException], message: str, stack: str) -> None:
        """The exception the semantic-convention way, redacted: never the raw exception object."""
        attributes = {
            names.EXCEPTION_TYPE: _qualified_name(error_class),
            names.EXCEPTION_MESSAGE: message,
            names.EXCEPTION_STACKTRACE: stack,
        }
        if self.runtime.settings.exception_as_span_event:
            self.span.add_event(names.EXCEPTION_EVENT, {**attributes, "exception.escaped": True})
        logger = self.runtime.exception_logger
        if logger is not None and self.runtime.settings.exception_as_log:
            record = LogRecord(
                context=self.context_with_span,
                severity_number=SeverityNumber.ERROR,
                severity_text="ERROR",
                attributes=attributes,
                event_name=names.EXCEPTION_EVENT,
            )
            logger.emit(record)

    def _clean_content(self, attributes: dict[str, Any]) -> dict[str, Any]:
        clean = self.runtime.redactor.clean
        limit = self.runtime.settings.content_max_length
        return {key: clean(value, limit) for key, value in attributes.items()}


def _pairs(attributes: dict[str, Any], keys: tuple[str, ...]) -> tuple[tuple[str, Any], ...]:
    return tuple([(key, attributes[key]) for key in keys if key in attributes])


def _failure_attributes(
    error_type: str, message: str, stack: str | None, details: ErrorDetails
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        names.ERROR_TYPE: error_type,
        names.AITRACK_ERROR_MESSAGE: message,
        names.AITRACK_ERROR_CATEGORY: details.category or Category.OTHER,
    }
    if stack is not None:
        attributes[names.AITRACK_ERROR_TRACEBACK] = stack
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
