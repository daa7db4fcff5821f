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
from types import CodeType, FrameType, TracebackType
from typing import Protocol

from .redaction import bound

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
# The CLI is an application of the package, not instrumentation: its frames are user frames.
_CLI_DIR = _PACKAGE_DIR + "cli" + os.sep

_HEADER = "Traceback (most recent call last):\n"
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def caller_frame() -> FrameType | None:
    """The first frame outside otel-aitrack: the user's call site of the instrumented method."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and is_instrumentation(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


def is_instrumentation(filename: str) -> bool:
    return filename.startswith(_PACKAGE_DIR) and not filename.startswith(_CLI_DIR)


class Redacts(Protocol):
    def clean(self, text: str, max_length: int) -> str: ...


class _Unchanged:
    def clean(self, text: str, max_length: int) -> str:
        return bound(text, max_length)


# A frame's text (file, line, function, source line) longer than this is bounded inside the frame: a
# minified source line must not cost its length on every failure.
FRAME_TEXT_MAX = 4096


_UNCHANGED = _Unchanged()


def full_traceback(
    error: BaseException,
    call_site: FrameType | None,
    max_length: int,
    redactor: Redacts = _UNCHANGED,
    text: str | None = None,
) -> str:
    """The uncaught-style traceback of `error`, chained causes included, redacted, at most `max_length`
    characters long, cut only at whole frames (and whole chained exceptions).

    The redactor is applied to each part, not to the whole: a frame's text (file, line, function,
    source line) is redacted once and cached, so a failure only redacts the exception's own text, or
    passes it in already redacted (`text`, `redactor.clean(exception_text(error), ...)`).
    Frames are taken without column positions: Python 3.11+ would parse each frame's source line to
    draw `^^^^` markers, which costs about 100 us a frame on every failure.
    The chain of causes is walked, never recursed into: a `__cause__` chain thousands deep costs its
    length, and at most `MAX_CHAINED` of them are printed.
    """
    outer = _stack_texts(call_site, redactor)
    inner = _traceback_texts(error.__traceback__, redactor, skip_ours=True)
    exception_lines = _exception_only(error, max_length // 4, redactor, text)
    chained = _chained_text(error, redactor, max_length // 4)
    main = _fit(outer + inner, len(outer) - 1, exception_lines, max_length - len(chained))
    full = chained + main
    # By construction never longer; the cut is the last resort should a part ever misjudge its length.
    return full if len(full) <= max_length else bound(full, max_length)


def exception_text(error: BaseException) -> str | None:
    """`str(error)`, or None for an exception whose `__str__` fails."""
    try:
        return str(error)
    except Exception:
        return None


def _stack_texts(frame: FrameType | None, redactor: Redacts) -> list[str]:
    """`frame` and its callers, outermost first (what `traceback.walk_stack` yields, reversed)."""
    texts = []
    while frame is not None:
        texts.append(_frame_text(frame.f_code, frame.f_lasti, frame, redactor))
        frame = frame.f_back
    texts.reverse()
    return texts


def _traceback_texts(tb: TracebackType | None, redactor: Redacts, skip_ours: bool = False) -> list[str]:
    """The frames of a traceback, outermost first (`traceback.walk_tb`), without ours if asked.

    One text per frame: no "[Previous line repeated]" folding, so indices stay frame indices.
    """
    texts = []
    while tb is not None:
        code = tb.tb_frame.f_code
        if not (skip_ours and is_instrumentation(code.co_filename)):
            texts.append(_frame_text(code, tb.tb_lasti, tb, redactor))
        tb = tb.tb_next
    return texts


# (id(code), instruction offset, id(redactor)) -> (code, redactor, text). An entry holds its code object
# and redactor, so their ids cannot be reused while it exists. Bounded: cleared when full.
_TEXTS: dict[tuple[int, int, int], tuple[CodeType, Redacts, str]] = {}
_TEXTS_SIZE = 4096


def _frame_text(code: CodeType, lasti: int, where: FrameType | TracebackType, redactor: Redacts) -> str:
    """A frame as Python prints it, redacted; cached, since the same call sites fail again and again.

    Keyed by code object and instruction offset: the line number Python derives from them costs about
    a microsecond a frame (a scan of the code's line table), and the text would be the same.
    Not `StackSummary.extract`, which stats every source file on each call (`linecache.checkcache`).
    """
    key = (id(code), lasti, id(redactor))
    entry = _TEXTS.get(key)
    if entry is not None and entry[0] is code and entry[1] is redactor:
        return entry[2]
    lineno = where.f_lineno if isinstance(where, FrameType) else where.tb_lineno
    summary = traceback.FrameSummary(code.co_filename, lineno, code.co_name, lookup_line=False)
    text = redactor.clean("".join(traceback.StackSummary.from_list([summary]).format()), FRAME_TEXT_MAX)
    if len(_TEXTS) >= _TEXTS_SIZE:
        _TEXTS.clear()
    _TEXTS[key] = (code, redactor, text)
    return text


def _exception_only(
    error: BaseException, max_length: int, redactor: Redacts = _UNCHANGED, text: str | None = None
) -> str:
    """The exception's last line(s), as `traceback.format_exception_only` prints them, redacted and
    bounded (bounded before redacted: linear in the bound); `text` is `str(error)` already redacted,
    when the caller has it.

    The common case (no notes, not a SyntaxError) is written directly: the standard function builds a
    `TracebackException`, walking the cause chain again, on every failed call.
    """
    cls = type(error)
    if isinstance(error, SyntaxError) or getattr(error, "__notes__", None) is not None:
        return redactor.clean("".join(traceback.format_exception_only(cls, error)), max_length)
    if text is None:
        try:
            text = redactor.clean(str(error), max_length)
        except Exception:
            return redactor.clean("".join(traceback.format_exception_only(cls, error)), max_length)
    module = cls.__module__
    name = cls.__qualname__ if module in ("__main__", "builtins") else f"{module}.{cls.__qualname__}"
    return bound(f"{name}: {text}\n" if text else f"{name}\n", max_length)


# The most chained exceptions (causes and contexts) a traceback prints; older ones are counted.
MAX_CHAINED = 16


def _chain(error: BaseException) -> tuple[list[tuple[BaseException, str]], int]:
    """The exceptions chained before `error`, nearest first, each with the line Python prints after it
    ('The above exception was the direct cause…'); and how many more there were past `MAX_CHAINED`."""
    chain: list[tuple[BaseException, str]] = []
    seen = {id(error)}
    beyond = 0
    current = error
    while True:
        if current.__cause__ is not None:
            cause, joint = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            cause, joint = current.__context__, _CONTEXT
        else:
            break
        if id(cause) in seen:
            break
        seen.add(id(cause))
        if len(chain) < MAX_CHAINED:
            chain.append((cause, joint))
        else:
            beyond += 1
        current = cause
    return chain, beyond


def _chained_text(error: BaseException, redactor: Redacts, budget: int) -> str:
    """The causes Python prints before the exception, oldest first, within `budget` characters.

    The nearest causes matter most: they are fitted first, each cut at whole frames; the older ones that
    no longer fit are left out and counted.
    """
    chain, omitted = _chain(error)
    texts: list[str] = []
    left = budget - len(_omitted_chained(len(chain) + omitted))  # room for the marker, whatever it says
    for cause, joint in chain:
        text = _cause_text(cause, joint, redactor, left)
        if text is None:
            omitted += len(chain) - len(texts)
            break
        texts.append(text)
        left -= len(text)
    marker = _omitted_chained(omitted) if omitted else ""
    return marker + "".join(reversed(texts))


def _cause_text(cause: BaseException, joint: str, redactor: Redacts, budget: int) -> str | None:
    """One chained exception as Python prints it, cut at whole frames to `budget`; None if it cannot fit."""
    lines = _exception_only(cause, max(budget // 2, 1), redactor)
    frames = _traceback_texts(cause.__traceback__, redactor)
    if cause.__traceback__ is None:
        text = lines + joint
        return text if len(text) <= budget else None
    text = _fit(frames, 0, lines, budget - len(joint)) + joint
    return text if len(text) <= budget else None


def _omitted_chained(count: int) -> str:
    plural = "s" if count != 1 else ""
    return f"[... {count} earlier chained exception{plural} omitted by otel-aitrack ...]\n\n"


def _fit(frames: list[str], call_site: int, exception_lines: str, budget: int) -> str:
    """Header + frames + exception lines in at most `budget` characters (when the header and the
    exception lines fit at all), dropping whole frames far from the call site and the raiser first."""
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
    """Indices of frames to keep: the raiser and the call site first, then outward from each in turn,
    each side only while its next frame fits. The kept frames are two unbroken runs (up to the call
    site, and up to the raiser), so at most three omission markers are needed: their room is kept."""
    last = len(frames) - 1
    site = min(max(call_site, 0), last)
    budget -= len(_omitted(len(frames))) * 3
    keep: set[int] = set()
    # Each side: the indices it would add, nearest first; the raiser's side stops above the call site.
    sides = [iter(range(last, site, -1)), iter(range(site, -1, -1))]
    while sides:
        for side in list(sides):
            index = next(side, None)
            if index is None or index in keep:
                sides.remove(side)
                continue
            cost = len(frames[index])
            if cost > budget:
                sides.remove(side)
                continue
            keep.add(index)
            budget -= cost
    return keep


def _omitted(count: int) -> str:
    return f"  [... {count} frame{'s' if count != 1 else ''} omitted by otel-aitrack ...]\n"
