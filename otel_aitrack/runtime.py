"""What one `instrument()` set up: tracer, instruments, settings, redactor, exception logger."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry._logs import Logger
from opentelemetry.trace import Tracer

from .book import FailureBook
from .config import Settings
from .instruments import Instruments
from .redaction import Redactor


@dataclass(frozen=True)
class Runtime:
    tracer: Tracer
    instruments: Instruments
    settings: Settings
    redactor: Redactor
    book: FailureBook
    exception_logger: Logger | None


_ACTIVE: list[Runtime] = []


def activate(runtime: Runtime) -> None:
    _ACTIVE[:] = [runtime]


def deactivate() -> None:
    _ACTIVE.clear()


def active() -> Runtime | None:
    return _ACTIVE[0] if _ACTIVE else None
