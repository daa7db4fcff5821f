"""Following a streamed response to its end without changing it.

The SDK's own stream object is returned to the user (same object, same type): only its private item
iterator is wrapped, and its `close()` is observed. The call ends exactly once, whichever comes first:
the last item, an error, `close()` / leaving the `with`, or the stream being garbage-collected.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

from .call import Call
from .guard import guarded
from .names import StreamOutcome
from .providers.base import StreamState
from .tracebacks import caller_frame

_CONNECTION_WORDS = ("Connection", "Protocol", "Incomplete", "ReadError", "Network")


class StreamFollower:
    """Decides how one stream ended and ends its call accordingly."""

    def __init__(self, call: Call, state: StreamState) -> None:
        self.call = call
        self.state = state
        self.items = 0

    def observe(self, item: Any) -> None:
        self.items += 1
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
        outcome = StreamOutcome.TRUNCATED if self._is_cut(error) else StreamOutcome.ERROR
        # What the stream told before it failed (request id, response id and model) stays on the span.
        self.call.failed(error, caller_frame(), outcome, self.state.details())

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
        name = type(error).__name__
        return self.items > 0 and any(word in name for word in _CONNECTION_WORDS)


def follow(stream: Any, follower: StreamFollower) -> bool:
    """Hook `follower` into an SDK stream in place; False when the stream has no known shape."""
    iterator = getattr(stream, "_iterator", None)
    if iterator is None:
        return False
    if inspect.isasyncgen(iterator) or hasattr(iterator, "__anext__"):
        stream._iterator = _follow_async(iterator, follower)
        stream.close = _async_close(stream, follower)
    else:
        stream._iterator = _follow_sync(iterator, follower)
        stream.close = _sync_close(stream, follower)
    weakref.finalize(stream, _guarded_stop, follower)
    return True


def _guarded_stop(follower: StreamFollower) -> None:
    guarded("stream end", None, follower.stopped)


def _follow_sync(iterator: Iterator[Any], follower: StreamFollower) -> Iterator[Any]:
    try:
        for item in iterator:
            guarded("stream item", None, follower.observe, item)
            yield item
    except GeneratorExit:
        _guarded_stop(follower)
        raise
    except BaseException as error:
        guarded("stream error", None, follower.raised, error)
        raise
    guarded("stream end", None, follower.exhausted)


async def _follow_async(iterator: AsyncIterator[Any], follower: StreamFollower) -> AsyncIterator[Any]:
    try:
        async for item in iterator:
            guarded("stream item", None, follower.observe, item)
            yield item
    except GeneratorExit:
        _guarded_stop(follower)
        raise
    except BaseException as error:
        guarded("stream error", None, follower.raised, error)
        raise
    guarded("stream end", None, follower.exhausted)


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
