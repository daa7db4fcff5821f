"""`track()`: which AI feature (prompt type) the calls in a block or function belong to.

The tracking lives in a context variable, so it follows the code across `await`s and into the
asyncio tasks created inside the block, and never leaks between threads or concurrent tasks.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from .config import ContentMode, content_mode
from .names import DEFAULT_PROMPT_TYPE

F = TypeVar("F", bound=Callable[..., Any])
_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tracking:
    """The attribution of the calls made inside a `track()` block."""

    prompt_type: str = DEFAULT_PROMPT_TYPE
    task: str | None = None
    user: str | None = None
    # True / False, or a content mode of its own (config.ContentMode); None: the process-wide setting.
    capture_content: bool | ContentMode | None = None
    # gen_ai.provider.name of the openai-SDK calls of the block (an OpenAI-compatible server); other
    # SDKs' calls keep their own, so a fallback to another provider inside the block stays truthful.
    provider_name: str | None = None

    def inside(self, inner: Tracking) -> Tracking:
        """`inner` nested in this one: the inner prompt type wins, unset fields are inherited."""
        return Tracking(
            prompt_type=inner.prompt_type,
            task=inner.task if inner.task is not None else self.task,
            user=inner.user if inner.user is not None else self.user,
            capture_content=inner.capture_content
            if inner.capture_content is not None
            else self.capture_content,
            provider_name=inner.provider_name if inner.provider_name is not None else self.provider_name,
        )


_UNTRACKED = Tracking()
_CURRENT: contextvars.ContextVar[Tracking] = contextvars.ContextVar(
    "otel_aitrack_tracking", default=_UNTRACKED
)


def current_tracking() -> Tracking:
    return _CURRENT.get()


def _prompt_type_name(prompt_type: object) -> str:
    """A usable name; a bad one is logged and counted as untracked rather than raised into the app."""
    name = prompt_type.strip() if isinstance(prompt_type, str) else ""
    if not name:
        _logger.warning(
            "otel-aitrack: track() got %r, not a prompt type name; counting as %r",
            prompt_type,
            DEFAULT_PROMPT_TYPE,
        )
        return DEFAULT_PROMPT_TYPE
    return name


def _capture_value(value: object) -> bool | ContentMode | None:
    """`track(capture_content=...)`: a bool, a mode's name (`"SPAN_AND_EVENT"`); a bad one is logged and
    ignored (the block then follows the process-wide setting)."""
    if value is None or isinstance(value, bool):
        return value
    try:
        return content_mode(value, "track(capture_content=...)")
    except (TypeError, ValueError) as error:
        _logger.warning("otel-aitrack: %s; ignored", error)
        return None


def provider_name_value(name: object, where: str) -> str | None:
    """A usable `gen_ai.provider.name`, or None (logged) for an empty or non-string one."""
    if name is None:
        return None
    value = name.strip() if isinstance(name, str) else ""
    if not value:
        _logger.warning("otel-aitrack: %s got %r, not a provider name; ignored", where, name)
        return None
    return value


class track:
    """Attribute the AI calls inside a block or function to a prompt type.

    Usable as a context manager (`with track("summarize_ticket", user=uid): ...`) and as a decorator
    of sync and async functions. Nested blocks inherit the task, user, capture setting and provider
    name they do not set themselves.

    `provider_name` names the server of the block's openai-SDK calls (`"vllm"` for a vLLM server
    spoken to with the openai SDK); calls through another SDK (an Anthropic fallback) keep their own.
    """

    def __init__(
        self,
        prompt_type: str,
        *,
        task: str | None = None,
        user: str | None = None,
        capture_content: bool | str | None = None,
        provider_name: str | None = None,
    ) -> None:
        self._tracking = Tracking(
            _prompt_type_name(prompt_type),
            task,
            user,
            _capture_value(capture_content),
            provider_name_value(provider_name, "track(provider_name=...)"),
        )
        self._tokens: list[contextvars.Token[Tracking]] = []

    def __enter__(self) -> Tracking:
        tracking = _CURRENT.get().inside(self._tracking)
        self._tokens.append(_CURRENT.set(tracking))
        return tracking

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _CURRENT.reset(self._tokens.pop())

    async def __aenter__(self) -> Tracking:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, function: F) -> F:
        # Each call of the decorated function gets its own context token: one decorator instance is
        # shared by every thread and task that calls the function.
        tracking = self._tracking
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                token = _CURRENT.set(_CURRENT.get().inside(tracking))
                try:
                    return await function(*args, **kwargs)
                finally:
                    _CURRENT.reset(token)

            return run_async  # type: ignore[return-value]

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            token = _CURRENT.set(_CURRENT.get().inside(tracking))
            try:
                return function(*args, **kwargs)
            finally:
                _CURRENT.reset(token)

        return run  # type: ignore[return-value]
