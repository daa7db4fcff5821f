"""What a forked child does with otel-aitrack's state: fresh locks, zero figures, no threads.

`fork()` copies the process as it is at that instant, with only the forking thread. A lock that another
thread held then (inside `stats()`, a metric collection, the hand-off's drain) would be held forever in
the child, whose first AI call would then hang; and a child that kept the parent's figures would report
the parent's calls as its own, inflating a fleet's sums. So every owner of a lock or of per-process
figures registers here, and one `os.register_at_fork` hook resets them all in the child, before any of
the child's code runs.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class ForkAware(Protocol):
    def reset_after_fork(self) -> None:
        """In the child: new locks (never acquire the inherited ones), empty figures, no threads."""


_OWNERS: weakref.WeakSet[ForkAware] = weakref.WeakSet()  # type: ignore[type-var]


def register(owner: ForkAware) -> None:
    """Reset `owner` in every child forked from now on (held weakly: a dropped owner is forgotten)."""
    _OWNERS.add(owner)


def _after_fork_in_child() -> None:
    for owner in list(_OWNERS):
        try:
            owner.reset_after_fork()
        except Exception:  # pragma: no cover - a reset must never break the user's child process
            continue


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
