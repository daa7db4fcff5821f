"""The provider contract: the few questions the core asks of each provider SDK.

The core (spans, metrics, failure book, streams, redaction) knows nothing of any SDK. A provider module
answers: which methods to wrap, how to read the request and the response, what an error carries (and
which category it is), and what ends a stream. Every answer is a pure function of its inputs.
`Provider` is the required part (abstract) and the hooks an SDK may need (no-op by default).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from ..errors import categorize
from ..genai import Message


class Endpoint(NamedTuple):
    """One SDK method to wrap, e.g. `openai.resources.chat.completions` / `Completions.create`."""

    module: str
    method: str  # "Class.method"
    operation: str  # gen_ai.operation.name: chat, embeddings, text_completion, …
    is_async: bool  # the request is awaited (for a deferred endpoint: the request the manager sends)
    # The method only returns a manager that sends the request later (`messages.stream(...)`, entered
    # with `with`): the call starts when the manager sends it. See `Provider.defer_request`.
    deferred: bool = False
    # One method serves every operation of the SDK (botocore's `BaseClient._make_api_call`): `route`
    # names, per call, the endpoint it is and its request arguments, or None to pass it through untouched.
    route: Route | None = None


# (instance, args, kwargs) of the wrapped method → (the endpoint of this call, its request kwargs), or None.
Route = Callable[[Any, tuple[Any, ...], dict[str, Any]], "tuple[Endpoint, dict[str, Any]] | None"]


@dataclass
class ErrorDetails:
    """What a provider's exception tells about a failure."""

    status_code: int | None = None
    provider_code: str | None = None
    request_id: str | None = None
    category: str | None = None  # None: let the core categorize from status and code
    error_type: str | None = None  # None: the exception's class name
    resend_count: int | None = None  # the SDK's own count of resends, when it says it (botocore's)


@dataclass
class ResponseDetails:
    """What a successful response (or a finished stream) tells."""

    attributes: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)  # {"input": n, "output": m}
    output_messages: list[Message] | None = None


@dataclass
class StreamError:
    """A failure signalled by a stream event rather than an exception."""

    error_type: str
    message: str
    provider_code: str | None = None


class StreamState(Protocol):
    """Follows one stream, chunk by chunk."""

    terminal: bool  # the stream's end marker was seen (finish_reason, response.completed, …)
    error: StreamError | None

    def observe(self, chunk: Any) -> None: ...

    def details(self) -> ResponseDetails: ...


class Provider(ABC):
    """One provider SDK, as the core sees it.

    A provider answers the five abstract questions (the request, a response, a stream, an error) and
    overrides only the hooks its SDK needs; each hook's default is "nothing to do". A provider that
    forgets a required answer cannot be made (TypeError naming it), rather than failing at a call.
    """

    name: str  # default gen_ai.provider.name
    # The SDK's top package: a call made from its own code during one of our calls is the SDK
    # delegating to itself (one span), a call made from any other code is a call of its own.
    package: str
    endpoints: tuple[Endpoint, ...]

    # --- required ----------------------------------------------------------------------------------

    @abstractmethod
    def request_attributes(self, endpoint: Endpoint, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Span attributes known before the call: model, server address and port, provider name."""

    @abstractmethod
    def response_details(self, endpoint: Endpoint, result: Any, capture: bool) -> ResponseDetails:
        """What a non-stream result tells: ids, model, finish reasons, tokens, request id."""

    @abstractmethod
    def is_stream(self, result: Any) -> bool:
        """The result is a stream to follow (its call ends when the stream does)."""

    @abstractmethod
    def stream_state(self, endpoint: Endpoint, stream: Any, capture: bool) -> StreamState:
        """A follower of one stream's chunks."""

    @abstractmethod
    def error_details(self, error: BaseException) -> ErrorDetails:
        """What an exception of the SDK tells: status, provider code, request id, and its category
        (from `self.category`: a provider's categories are decided there, and only there)."""

    # --- categories: the one place a provider's failures are categorised ----------------------------

    def category(
        self, error: BaseException | None, error_type: str, status: int | None, code: str | None
    ) -> str:
        """`aitrack.error.category` of a failure: of an exception (`error`), or of a stream's error event
        (`error` None). The default reads the class name, the HTTP status and the provider's code."""
        return categorize(error_type, status, code)

    # --- hooks: override what the SDK needs ---------------------------------------------------------

    def input_messages(self, endpoint: Endpoint, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Captured-content attributes of the request (only asked when content capture is on)."""
        return {}

    def retry_hooks(self) -> tuple[tuple[str, str], ...]:
        """(module, "Class.method") of the SDK's per-attempt request builder, to count retries."""
        return ()

    def response_hooks(self) -> tuple[tuple[str, str], ...]:
        """(module, "Class.method") that the SDK hands the HTTP response it parses as `response=`: its
        `status_code`, and `answer_request_id` of it, complete what the parsed result (or a failure to
        parse it) tells."""
        return ()

    def answer_request_id(self, response: Any) -> str | None:
        """The request id of a response `response_hooks` saw (asked only when the result has none)."""
        return None

    def send_hooks(self) -> tuple[tuple[str, str], ...]:
        """(module, "Class.method") around the SDK's retry loop, for retry hooks that take no `retries_taken`:
        the attempts after each call of it are counted as one request's (so that several requests of one
        call, e.g. automatic function calling, are not counted as resends)."""
        return ()

    def own_span_hooks(self) -> tuple[tuple[str, str], ...]:
        """(module, "function") of the SDK's own span starter, for an SDK that traces its calls itself.

        The function must return a span or None. While one of this provider's calls runs, and
        `own_span_of_call` says the span asked for is that call's, it returns a non-recording span
        carrying our call's span context instead: one span per call, and whatever the SDK does with its
        span (propagating the trace context in request headers) points at ours.
        """
        return ()

    def own_span_of_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """Asked with the arguments of the span starter of `own_span_hooks`, during one of our calls.

        None when the span asked for is not that of the instrumented call (another SDK method the
        application calls meanwhile, e.g. from a tool): the SDK starts it as usual. Otherwise the span
        attributes the application gave the SDK for the call (`gen_ai.conversation.id`), which our
        span takes over.
        """
        return None

    def defer_request(self, endpoint: Endpoint, manager: Any, instrument: Callable[[Any], Any]) -> None:
        """For a deferred endpoint: replace the request that `manager` will send with `instrument(request)`.

        `request` is what the manager holds (a callable, or an awaitable for an async endpoint);
        `instrument(request)` is its stand-in of the same kind, which runs it as one instrumented call.
        Only asked of a provider with deferred endpoints.
        """
        raise LookupError(f"{type(self).__name__} has no deferred endpoint")
