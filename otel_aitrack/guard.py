"""The one guard for otel-aitrack's own errors: your code still runs, with less telemetry.

An internal error is logged at debug level and counted in `aitrack.instrumentation.errors`, never
raised into the application. Under the project's own test run (`OTEL_AITRACK_STRICT=1`) it re-raises,
so that an instrumentation bug cannot hide behind the guard.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from .config import ENV_STRICT, is_true

_logger = logging.getLogger("otel_aitrack")

_on_error: list[Callable[[BaseException], None]] = []


def on_internal_error(counter: Callable[[BaseException], None]) -> None:
    """Register what counts an internal error (the metric instrument, once instrumented)."""
    _on_error[:] = [counter]


def strict() -> bool:
    return is_true(os.environ.get(ENV_STRICT))


def report(error: Exception, where: str) -> None:
    """Log and count an internal error; re-raise it in strict mode."""
    _logger.debug("otel-aitrack internal error in %s; the call itself is unaffected", where, exc_info=error)
    for count in _on_error:
        try:
            count(error)
        except Exception:  # pragma: no cover - the counter itself failing must not matter
            _logger.debug("otel-aitrack could not count an internal error", exc_info=True)
    if strict():
        raise error


def reporter(where: str) -> Callable[[Exception], None]:
    """`report` for errors caught elsewhere (the metric hand-off's thread)."""
    return lambda error: report(error, where)


class guard:
    """`with guard("where"): ...`: an internal error in the block is reported and the block is left; the
    code after the block runs. The steps of a call's ending each run under one, so that whatever detail
    fails to build, the others (and the ending itself) still happen."""

    __slots__ = ("where",)

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> bool:
        if not isinstance(error, Exception):  # no error, or the application's own interruption
            return False
        report(error, self.where)
        return True
