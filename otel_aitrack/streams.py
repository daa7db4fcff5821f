"""Following a streamed response to its end without changing it.

The SDK's own stream object is returned to the user (same object, same type): only its private item
iterator is wrapped, and its `close()` is observed. A bare generator (google-genai's streams) cannot be
hooked in place: the user gets a generator of the same kind that reads it. The call ends exactly once,
whichever comes first: the last item, an error, `close()` / leaving the `with`, or the stream being
garbage-collected.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from . import collected
from .call import Call
from .errors import is_transport_error
from .guard import guard
from .names import Category, StreamOutcome
from .providers.base import StreamState
from .tracebacks import caller_frame


class StreamFollower:
    """Decides how one stream ended and ends its call accordingly."""

    def __init__(self, call: Call, state: StreamState) -> None:
        self.call = call
        self.state = state
        self.items = 0
        self.chunks = True  # the items are a stream's chunks (timed); False: reads of a payload

    def observe(self, item: Any) -> None:
        self.items += 1
        if self.chunks:
            self.call.chunk()
        self.state.observe(item)

    def exhausted(self) -> None:
        state = self.state
        details = state.details()
        if state.error is not None:
            self.call.stream_error(state.error, details)
        elif state.terminal:
            self.call.succeeded(details, StreamOutcome.COMPLETED)
        else:
            self.call.truncated(details)

    def raised(self, error: BaseException) -> None:
        """The stream raised: a transport error after it started cut it (truncated, whatever the
        provider would call the exception), anything else is an error of the stream."""
        cut = self._is_cut(error)
        outcome = StreamOutcome.TRUNCATED if cut else StreamOutcome.ERROR
        # What the stream told before it failed (request id, response id and model) stays on the span.
        category = Category.STREAM_TRUNCATED if cut else None
        self.call.failed(error, caller_frame(), outcome, self.state.details(), category)

    def stopped(self) -> None:
        """The consumer stopped reading (break, close(), `with` exit, garbage collection)."""
        state = self.state
        if state.error is not None:
            self.call.stream_error(state.error, state.details())
        elif state.terminal:
            self.call.succeeded(state.details(), StreamOutcome.COMPLETED)
        else:
            self.call.succeeded(state.details(), StreamOutcome.ABORTED)

    def _is_cut(self, error: BaseException) -> bool:
        """A transport error after items arrived: the stream was cut off, not refused."""
        return self.items > 0 and is_transport_error(error)


def follow(stream: Any, follower: StreamFollower) -> Any:
    """Hook `follower` into an SDK stream; what the user gets (the stream itself, or for a bare generator
    one that reads it), or None when the stream has no known shape."""
    if inspect.isgenerator(stream) or inspect.isasyncgen(stream):
        return _follow_generator(stream, follower)
    if isinstance(stream, Mapping):
        return stream if any(_follow_botocore(value, follower) for value in stream.values()) else None
    iterator = getattr(stream, "_iterator", None)
    if iterator is None:
        return None
    if inspect.isasyncgen(iterator) or hasattr(iterator, "__anext__"):
        stream._iterator = _follow_async(iterator, follower)
        stream.close = _async_close(stream, follower)
    else:
        stream._iterator = _follow_sync(iterator, follower)
        stream.close = _sync_close(stream, follower)
    weakref.finalize(stream, _guarded_stop, follower)
    return stream


def _follow_generator(generator: Any, follower: StreamFollower) -> Any:
    """Such a generator sends its request when first read: each step runs inside the call (its span
    current, its retries counted), and a failure before the first item is a refused call, not a stream's."""
    is_async = inspect.isasyncgen(generator)
    reader = _read_async(generator, follower) if is_async else _read_sync(generator, follower)
    weakref.finalize(reader, _guarded_unread_or_stop, follower)
    return reader


def _guarded_unread_or_stop(follower: StreamFollower) -> None:
    """Collected: never read means never sent (ended, not counted); else the consumer stopped reading."""
    if follower.items == 0:
        _ended_when_safe(follower, _cancelled_unread)
    else:
        _guarded_stop(follower)


@contextmanager
def _inside(call: Call) -> Iterator[None]:
    with guard("call enter"):
        call.enter()
    try:
        yield
    finally:
        with guard("call leave"):
            call.leave()


def _failed_read(follower: StreamFollower, error: BaseException) -> None:
    if follower.items == 0 and not _opened(follower, error):
        follower.call.failed(error, caller_frame())
    else:
        follower.raised(error)


def _opened(follower: StreamFollower, error: BaseException) -> bool:
    """The stream had opened (HTTP 200) before the error: an error object as its first payload is the
    stream's failure (outcome `error`), not a refused call."""
    return follower.call.provider.error_details(error).status_code == 200


_END = object()


def _read_sync(generator: Any, follower: StreamFollower) -> Iterator[Any]:
    while True:
        try:
            with _inside(follower.call):
                item = next(generator, _END)
        except BaseException as error:
            with guard("stream error"):
                _failed_read(follower, error)
            raise
        if item is _END:
            break
        with guard("stream item"):
            follower.observe(item)
        try:
            yield item
        except BaseException:  # the consumer closed this generator, or threw into it: it stopped reading
            generator.close()
            _guarded_stop(follower)
            raise
    with guard("stream end"):
        follower.exhausted()


async def _read_async(generator: Any, follower: StreamFollower) -> AsyncIterator[Any]:
    while True:
        try:
            with _inside(follower.call):
                item = await anext(generator, _END)
        except BaseException as error:
            with guard("stream error"):
                _failed_read(follower, error)
            raise
        if item is _END:
            break
        with guard("stream item"):
            follower.observe(item)
        try:
            yield item
        except BaseException:  # the consumer closed this generator, or threw into it: it stopped reading
            await generator.aclose()
            _guarded_stop(follower)
            raise
    with guard("stream end"):
        follower.exhausted()


def _guarded_stop(follower: StreamFollower) -> None:
    """The consumer stopped reading. Also what the garbage collector runs (closing our generator, or
    finalizing the stream), possibly inside a lock of ours: so the call ends at once, or at the next
    safe point (`collected`)."""
    _ended_when_safe(follower, _stop)


def _stop(follower: StreamFollower) -> None:
    with guard("stream end"):
        follower.stopped()


def _cancelled_unread(follower: StreamFollower) -> None:
    with guard("stream end"):
        follower.call.cancelled(StreamOutcome.ABORTED)


def _ended_when_safe(follower: StreamFollower, ending: Callable[[StreamFollower], None]) -> None:
    collected.end_when_safe(follower.call.runtime, functools.partial(ending, follower))


def _follow_sync(iterator: Iterator[Any], follower: StreamFollower, observe: bool = True) -> Iterator[Any]:
    try:
        for item in iterator:
            if observe:
                with guard("stream item"):
                    follower.observe(item)
            yield item
    except GeneratorExit:
        _guarded_stop(follower)
        raise
    except BaseException as error:
        with guard("stream error"):
            follower.raised(error)
        raise
    with guard("stream end"):
        follower.exhausted()


async def _follow_async(iterator: AsyncIterator[Any], follower: StreamFollower) -> AsyncIterator[Any]:
    try:
        async for item in iterator:
            with guard("stream item"):
                follower.observe(item)
            yield item
    except GeneratorExit:
        _guarded_stop(follower)
        raise
    except BaseException as error:
        with guard("stream error"):
            follower.raised(error)
        raise
    with guard("stream end"):
        follower.exhausted()


def _sync_close(stream: Any, follower: StreamFollower) -> Any:
    # A weak reference and the class's own method: no reference cycle keeps the stream alive.
    ref, close = weakref.ref(stream), type(stream).close

    def close_and_stop(*args: Any, **kwargs: Any) -> Any:
        try:
            return close(ref(), *args, **kwargs)
        finally:
            _guarded_stop(follower)

    return close_and_stop


def _async_close(stream: Any, follower: StreamFollower) -> Any:
    ref, close = weakref.ref(stream), type(stream).close

    async def close_and_stop(*args: Any, **kwargs: Any) -> Any:
        try:
            return await close(ref(), *args, **kwargs)
        finally:
            _guarded_stop(follower)

    return close_and_stop


# --- botocore's streams, in the response dict that holds them (boto3 clients) --------------------


def _follow_botocore(value: Any, follower: StreamFollower) -> bool:
    """An EventStream or a StreamingBody of a boto3 response, hooked in place; False for any other value."""
    return _follow_event_stream(value, follower) or _follow_body(value, follower)


def _follow_event_stream(stream: Any, follower: StreamFollower) -> bool:
    """botocore's EventStream: it parses each raw event (`_parse_event`, observed: the user's very items,
    and the error event it raises as an `EventStreamError`) from its raw event generator (wrapped: its end
    is the stream's end, its exception a failure)."""
    events = getattr(stream, "_event_generator", None)
    if not inspect.isgenerator(events) or not hasattr(type(stream), "_parse_event"):
        return False
    stream._event_generator = _follow_sync(events, follower, observe=False)  # observed once parsed
    stream._parse_event = _observed_parse(stream, follower)
    stream.close = _sync_close(stream, follower)
    weakref.finalize(stream, _guarded_stop, follower)
    return True


def _observed_parse(stream: Any, follower: StreamFollower) -> Callable[[Any], Any]:
    ref, parse = weakref.ref(stream), type(stream)._parse_event

    def parse_and_observe(event: Any) -> Any:
        try:
            parsed = parse(ref(), event)
        except BaseException as error:
            with guard("stream error"):
                follower.raised(error)
            raise
        if parsed:
            with guard("stream item"):
                follower.observe(parsed)
        return parsed

    return parse_and_observe


def _follow_body(body: Any, follower: StreamFollower) -> bool:
    """botocore's StreamingBody (a payload the user reads, once): what the user's `read()` / `readinto()`
    return is observed, nothing more is read. The call ends when the body is read through (a success),
    when a read fails (a failure), or when it is closed or collected (a success with what was read). The
    user asked for no stream: no stream outcome. Once the call ended, the body is the SDK's own again."""
    cls = type(body)
    if not hasattr(body, "_raw_stream") or not (hasattr(cls, "read") and hasattr(cls, "close")):
        return False
    follower.chunks = False  # reads of one payload, not a stream's chunks
    # The hooks hold the body itself, not a weak reference: `invoke_model(...)["body"].read()` drops the
    # last other reference to the body while its `read` runs. They go when the call ends.
    read, close = cls.read, cls.close

    def observed_read(amt: int | None = None) -> Any:
        chunk = _body_step(body, follower, read, amt)
        # read() reads the whole rest; read(n) > 0 that gets nothing is at the end
        through = amt is None or (amt > 0 and not chunk)
        with guard("body read"):
            _body_read(body, follower, chunk, through)
        return chunk

    def close_and_end() -> Any:
        try:
            return close(body)
        finally:
            with guard("body end"):
                _body_end(body, follower)

    body.read, body.close = observed_read, close_and_end
    readinto = getattr(cls, "readinto", None)  # newer botocore only
    if readinto is not None:
        body.readinto = _observed_readinto(body, follower, readinto)
    weakref.finalize(body, _ended_when_safe, follower, _body_collected)
    return True


_BODY_HOOKS = ("read", "readinto", "close")


def _observed_readinto(
    body: Any, follower: StreamFollower, readinto: Callable[..., Any]
) -> Callable[[Any], Any]:
    def observed_readinto(buffer: Any) -> Any:
        count = _body_step(body, follower, readinto, buffer)
        data = bytes(memoryview(buffer)[:count])
        with guard("body read"):
            _body_read(body, follower, data, len(buffer) > 0 and not count)
        return count

    return observed_readinto


def _body_step(body: Any, follower: StreamFollower, method: Callable[..., Any], argument: Any) -> Any:
    try:
        return method(body, argument)
    except BaseException as error:
        with guard("body error"):
            _body_failed(body, follower, error, caller_frame())
        raise


def _body_read(body: Any, follower: StreamFollower, data: bytes, through: bool) -> None:
    """`through`: this read reached the end; else the state tells (all of the Content-Length read)."""
    follower.observe(data)
    if through or follower.state.terminal:
        _body_end(body, follower)


def _body_end(body: Any, follower: StreamFollower) -> None:
    _unhook_body(body)
    follower.call.succeeded(follower.state.details())


def _body_collected(follower: StreamFollower) -> None:
    """The body was collected: its call ends (as a success: the SDK returned it), if nothing ended it."""
    with guard("body end"):
        follower.call.succeeded(follower.state.details())


def _body_failed(body: Any, follower: StreamFollower, error: BaseException, call_site: Any) -> None:
    _unhook_body(body)
    follower.call.failed(error, call_site)


def _unhook_body(body: Any) -> None:
    for name in _BODY_HOOKS:
        vars(body).pop(name, None)
