"""What one `instrument()` set up: tracer, instruments, settings, redactor, exception logger."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from opentelemetry._logs import Logger
from opentelemetry.trace import Tracer

from . import forks
from .book import FailureBook
from .config import Settings
from .instruments import Instruments
from .labels import Labels
from .redaction import Redactor


@dataclass(frozen=True)
class Runtime:
    tracer: Tracer
    instruments: Instruments
    settings: Settings
    redactor: Redactor
    book: FailureBook
    logger: Logger  # the exception and content events (a no-op one when no logger provider is set)
    labels: Labels

    def held_here(self) -> bool:
        """Whether this thread holds a lock that ending a call takes (see `collected`)."""
        return self.book.held_here() or self.instruments.held_here()


_ACTIVE: list[Runtime] = []


def activate(runtime: Runtime) -> None:
    _ACTIVE[:] = [runtime]


def deactivate() -> None:
    _ACTIVE.clear()


def active() -> Runtime | None:
    return _ACTIVE[0] if _ACTIVE else None


class _Setup:
    """Serializes `instrument()` and `uninstrument()`: two threads setting up at once would wrap the
    SDK twice. Re-entrant (an instrumentor may be set up from inside another's setup)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        forks.register(self)

    def reset_after_fork(self) -> None:
        self.lock = threading.RLock()


SETUP = _Setup()
