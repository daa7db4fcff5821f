"""The wrappers put around SDK methods: start a call, run the method, end the call.

Sync and async share everything but the `await`. The user's result and exception pass through
untouched; every instrumentation step runs under the guard.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from . import collected
from .call import CURRENT_CALL, Call
from .guard import guard
from .providers.base import Endpoint, Provider, ResponseDetails, Route
from .runtime import active
from .streams import StreamFollower, follow
from .tracebacks import caller_frame

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def method_wrapper(provider: Provider, endpoint: Endpoint) -> Wrapper:
    """The wrapt wrapper of one SDK method (sync or async, deferred or not, as the endpoint says)."""
    if endpoint.deferred:
        return _deferred_wrapper(provider, endpoint)
    if endpoint.route is not None:
        return _routed_wrapper(provider, endpoint.route)
    return _call_wrapper(provider, endpoint)


def _call_wrapper(provider: Provider, endpoint: Endpoint) -> Wrapper:
    return _async_wrapper(provider, endpoint) if endpoint.is_async else _sync_wrapper(provider, endpoint)


def _sync_wrapper(provider: Provider, endpoint: Endpoint) -> Wrapper:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = _start(provider, endpoint, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            _fail(call, error)
            raise
        return _finish(call, result)

    return wrapper


def _async_wrapper(provider: Provider, endpoint: Endpoint) -> Wrapper:
    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = _start(provider, endpoint, instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as error:
            _fail(call, error)
            raise
        return _finish(call, result)

    return wrapper


def _routed_wrapper(provider: Provider, route: Route) -> Wrapper:
    """One method serves every operation of the SDK: each call is the endpoint `route` names, or passes
    through untouched (no span, no count), e.g. another AWS service's call through botocore."""
    calls: dict[Endpoint, Wrapper] = {}

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        routed = None
        if active() is not None:
            with guard("call route"):
                routed = route(instance, args, kwargs)
        if routed is None:
            return wrapped(*args, **kwargs)
        target, request = routed
        call = calls.get(target) or calls.setdefault(target, _call_wrapper(provider, target))
        # The request arguments are read for the telemetry; the method gets its own, unchanged.
        return call(lambda *_a, **_k: wrapped(*args, **kwargs), instance, (), request)

    return wrapper


def _deferred_wrapper(provider: Provider, endpoint: Endpoint) -> Wrapper:
    """The method returns a manager that sends the request later: the call runs when it does."""
    send = _call_wrapper(provider, endpoint)

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        manager = wrapped(*args, **kwargs)
        if active() is not None:
            instrument = _sent_through(send, endpoint, instance, kwargs)
            with guard("deferred call"):
                provider.defer_request(endpoint, manager, instrument)
        return manager

    return wrapper


def _sent_through(
    send: Wrapper, endpoint: Endpoint, instance: Any, kwargs: dict[str, Any]
) -> Callable[[Any], Any]:
    """Makes the stand-in of a manager's request: the same request, run by `send` as one call.

    The request already holds the method's arguments; `kwargs` is only read for the telemetry.
    """

    def instrument(request: Any) -> Any:
        # The manager calls a sync request and awaits an async one: the stand-in is of the same kind.
        if endpoint.is_async:
            return _AwaitedLater(functools.partial(send, lambda *_a, **_k: request, instance, (), kwargs))
        return functools.partial(send, lambda *_a, **_k: request(), instance, (), kwargs)

    return instrument


class _AwaitedLater:
    """An awaitable that makes its coroutine only when awaited: a manager never entered leaves no
    never-awaited coroutine of ours behind."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make

    def __await__(self) -> Any:
        return self._make().__await__()


def own_span_stand_in(provider: Provider) -> Wrapper:
    """Wraps an SDK's own span starter: for the span of one of our calls, a non-recording span carrying ours.

    Only during a call of `provider` and only for that call's span (`Provider.own_span_of_call`): other
    SDK methods called meanwhile (by a tool the application runs during a call) keep their own spans.
    """

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = CURRENT_CALL.get()
        if call is None or call.provider is not provider:
            return wrapped(*args, **kwargs)
        span = None
        with guard("own span stand-in"):
            span = _stand_in(call, args, kwargs)
        return span if span is not None else wrapped(*args, **kwargs)

    return wrapper


def _stand_in(call: Call, args: tuple[Any, ...], kwargs: dict[str, Any]) -> trace.Span | None:
    given = call.provider.own_span_of_call(args, kwargs)
    if given is None:
        return None
    if given:
        call.span.set_attributes(given)
    return trace.NonRecordingSpan(call.span.get_span_context())


def retry_counter(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Wraps the SDK's per-attempt request builder: tells the current call which attempt this is."""
    call = CURRENT_CALL.get()
    if call is not None:
        with guard("retry count"):
            call.count_attempt(kwargs.get("retries_taken"))
    return wrapped(*args, **kwargs)


def send_counter(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Wraps the SDK's send (the function around its retry loop): the attempts that follow are its own."""
    call = CURRENT_CALL.get()
    if call is not None:
        with guard("retry count"):
            call.new_send()
    return wrapped(*args, **kwargs)


def response_reader(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Wraps the SDK's response parser: hands the current call the HTTP response it was answered with (a
    parsed body does not keep the status; a body that fails to parse keeps neither it nor the request id)."""
    call = CURRENT_CALL.get()
    if call is not None:
        call.answered(kwargs.get("response"))
    return wrapped(*args, **kwargs)


def _start(provider: Provider, endpoint: Endpoint, instance: Any, kwargs: dict[str, Any]) -> Call | None:
    runtime = active()
    if runtime is None:
        return None
    if collected.WAITING.endings:  # a safe point: no lock of ours is held here
        collected.end_waiting()
    outer = CURRENT_CALL.get()
    if outer is not None:
        delegates = True  # unsure: one span too few rather than one too many
        with guard("nested call"):
            delegates = _sdk_delegates(outer, provider)
        if delegates:
            return None
    call = None
    with guard("call start"):
        call = Call(runtime, provider, endpoint, instance, kwargs)
    if call is not None:
        with guard("call enter"):
            call.enter()
    return call


def _sdk_delegates(outer: Call, provider: Provider) -> bool:
    """A call started during another one: the SDK calling itself (one span for both), or not?

    An SDK method may call another instrumented method internally; that is still the user's one call.
    But the SDK may also run the user's code during a call (a tool function run by automatic function
    calling) and that code may call a model in turn: a call of its own, a child span, counted.
    """
    frame = caller_frame()
    module = frame.f_globals.get("__name__", "") if frame is not None else ""
    return any(
        module == package or module.startswith(package + ".")
        for package in (outer.provider.package, provider.package)
    )


def _fail(call: Call, error: BaseException) -> None:
    with guard("call leave"):
        call.leave()
    call_site = None
    with guard("call site"):
        call_site = caller_frame()
    with guard("call failure"):
        call.failed(error, call_site)


def _finish(call: Call, result: Any) -> Any:
    with guard("call leave"):
        call.leave()
    returned = result  # whatever of the ending fails, the user gets the SDK's result
    with guard("call success"):
        returned = _succeed(call, result)
    return returned


def _succeed(call: Call, result: Any) -> Any:
    """Ends the call or follows its stream; returns what the user gets (the result, or its reader).

    Whatever of this fails, the call still ends (as a success: the SDK returned), with fewer details.
    """
    provider, endpoint = call.provider, call.endpoint
    with guard("stream follow"):
        if provider.is_stream(result):
            state = provider.stream_state(endpoint, result, call.capture)
            followed = follow(result, StreamFollower(call, state))
            if followed is not None:
                return followed
    details = _NO_DETAILS
    with guard("response details"):
        details = provider.response_details(endpoint, result, call.capture)
    call.succeeded(details)
    return result


_NO_DETAILS = ResponseDetails()
