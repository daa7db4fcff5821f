"""Calls the garbage collector ends (an abandoned stream): ended at once, or at the next safe point.

The collector runs finalizers (and closes the generators it frees) inside whatever allocation set it off,
in whichever thread: possibly while that thread holds the failure book's, the instruments' or the
hand-off's lock (a metric collection reading the book, say). Ending a call takes those locks: ending it
there would update the book in the middle of that thread's own update, or, with a plain lock, wait on
itself forever and hang every later call. So while this thread holds one of them, the ending waits in a
queue instead, and runs at the next safe point: the next instrumented call, the next metric collection,
or `uninstrument()`. The locks are `RLock`s only so that their owner can be asked (`owned`); nothing
takes them twice. Appending to the queue (a deque) takes no lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from . import forks


class Locks(Protocol):
    def held_here(self) -> bool:
        """Whether this thread holds one of the locks an ending takes."""


def owned(lock: Any) -> bool:
    """Whether this thread holds `lock`, a `threading.RLock`."""
    return bool(lock._is_owned())


class _Waiting:
    """The endings put off; a forked child drops its parent's (those calls are the parent's)."""

    def __init__(self) -> None:
        self.endings: deque[Callable[[], None]] = deque()
        forks.register(self)

    def reset_after_fork(self) -> None:
        self.endings = deque()


WAITING = _Waiting()


def end_when_safe(locks: Locks, ending: Callable[[], None]) -> None:
    """What a finalizer calls: `ending()` now, or at the next safe point if a lock it takes is held."""
    if locks.held_here():
        WAITING.endings.append(ending)
    else:
        ending()


def end_waiting() -> None:
    """Run the endings put off (at a safe point: no lock of ours held by this thread). Each ending
    guards itself: it never raises."""
    endings = WAITING.endings
    while endings:
        try:
            ending = endings.popleft()
        except IndexError:  # another thread took the last one
            return
        ending()
