"""The full traceback of a failed call, as Python would print it had the exception gone uncaught.

An exception caught inside the instrumentation only knows the frames from the SDK call down to the
raising frame. The frames above it (the user's call site and its callers) are taken from the live
stack and prepended, so the exported traceback starts at the program's entry point. When the text is
over its budget, whole frames are dropped from the far ends of the stack first, so that the header,
the user's call site, the raising frame and the exception line survive.
"""

from __future__ import annotations

import os
import sys
import traceback
from types import FrameType

from .redaction import bound

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_HEADER = "Traceback (most recent call last):\n"


def caller_frame() -> FrameType | None:
    """The first frame outside otel-aitrack: the user's call site of the instrumented method."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    return frame


def full_traceback(error: BaseException, call_site: FrameType | None, max_length: int) -> str:
    """The uncaught-style traceback of `error`, chained causes included, bounded to `max_length`."""
    te = traceback.TracebackException(type(error), error, error.__traceback__, lookup_lines=False)
    outer = traceback.StackSummary.extract(traceback.walk_stack(call_site), lookup_lines=False)
    outer.reverse()
    inner = [frame for frame in te.stack if not frame.filename.startswith(_PACKAGE_DIR)]
    chained = bound(_chained_text(te), max_length // 4)
    exception_lines = bound("".join(te.format_exception_only()), max_length // 4)
    frames = [*_format(outer), *_format(inner)]
    call_site_index = len(outer) - 1
    return chained + _fit(frames, call_site_index, exception_lines, max_length - len(chained))


def _format(stack: list[traceback.FrameSummary]) -> list[str]:
    """One text per frame (no "[Previous line repeated]" folding, so indices stay frame indices)."""
    summary = traceback.StackSummary.from_list(stack)
    format_frame = getattr(summary, "format_frame_summary", None)
    if format_frame is None:  # Python 3.10
        return ["".join(traceback.StackSummary.from_list([frame]).format()) for frame in stack]
    return [format_frame(frame) for frame in summary]


def _chained_text(te: traceback.TracebackException) -> str:
    """The causes printed before the main traceback ('The above exception was the direct cause…')."""
    text = "".join(te.format(chain=True))
    own = "".join(te.format(chain=False))
    return text[: len(text) - len(own)] if text.endswith(own) else ""


def _fit(frames: list[str], call_site: int, exception_lines: str, budget: int) -> str:
    """Header + frames + exception lines, dropping frames far from the call site and raiser first."""
    full = _HEADER + "".join(frames) + exception_lines
    if len(full) <= budget or not frames:
        return full
    keep = _frames_within(frames, call_site, budget - len(_HEADER) - len(exception_lines))
    out: list[str] = [_HEADER]
    skipped = 0
    for index, text in enumerate(frames):
        if index in keep:
            if skipped:
                out.append(_omitted(skipped))
                skipped = 0
            out.append(text)
        else:
            skipped += 1
    if skipped:
        out.append(_omitted(skipped))
    out.append(exception_lines)
    return "".join(out)


def _frames_within(frames: list[str], call_site: int, budget: int) -> set[int]:
    """Indices of frames to keep: raiser and call site first, then outward from each in turn."""
    last = len(frames) - 1
    order = [last, max(call_site, 0)]
    up_from_site, up_from_raiser = call_site - 1, last - 1
    while up_from_site >= 0 or up_from_raiser > call_site:
        if up_from_raiser > call_site:
            order.append(up_from_raiser)
            up_from_raiser -= 1
        if up_from_site >= 0:
            order.append(up_from_site)
            up_from_site -= 1
    keep: set[int] = set()
    reserve = len(_omitted(len(frames))) * 3
    for index in order:
        cost = len(frames[index])
        if index not in keep and (budget - cost - reserve >= 0 or len(keep) < 2):
            keep.add(index)
            budget -= cost
    return keep


def _omitted(count: int) -> str:
    return f"  [... {count} frame{'s' if count != 1 else ''} omitted by otel-aitrack ...]\n"
