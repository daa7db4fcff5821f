"""The exported traceback reads as Python's own, and its budget keeps the frames that matter."""

from __future__ import annotations

import sys
import traceback

import pytest

from otel_aitrack.redaction import REDACTED, Redactor
from otel_aitrack.tracebacks import _exception_only, full_traceback


def _raise_deep(depth: int) -> None:
    if depth == 0:
        raise ValueError("the raising frame")
    _raise_deep(depth - 1)


def _catch(function, *args):
    try:
        function(*args)
    except ValueError as error:
        return error, sys._getframe()
    raise AssertionError("no error")


def user_call_site():
    return _catch(_raise_deep, 3)


def test_full_traceback_has_the_callers_above_the_call_and_the_frames_below() -> None:
    error, site = user_call_site()
    text = full_traceback(error, site, 100_000)
    assert text.startswith("Traceback (most recent call last):\n")
    assert "in test_full_traceback_has_the_callers_above_the_call_and_the_frames_below" in text
    assert "in user_call_site" in text
    assert text.count("in _raise_deep") == 4
    assert text.rstrip().endswith("ValueError: the raising frame")
    # Callers come first (outermost first), as Python prints an uncaught exception.
    assert text.index("in user_call_site") < text.index("in _raise_deep")


def test_full_traceback_matches_pythons_own_format_below_the_call_site() -> None:
    error, site = user_call_site()
    ours = full_traceback(error, site, 100_000)
    pythons = "".join(traceback.format_exception(error))
    below = pythons.split("\n", 1)[1]  # without the header
    assert below.split("in _catch\n", 1)[1].split("\n", 1)[1] in ours


def test_chained_causes_are_printed_first() -> None:
    def wrapper() -> None:
        try:
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        except OSError as low:
            raise RuntimeError("Connection error.") from low

    try:
        wrapper()
    except RuntimeError as error:
        text = full_traceback(error, sys._getframe(), 100_000)
    assert text.index("ConnectionRefusedError") < text.index("The above exception was the direct cause")
    assert text.rstrip().endswith("RuntimeError: Connection error.")


def test_truncation_keeps_header_call_site_raising_frame_and_exception_line() -> None:
    def recurse_then_call(depth: int):
        if depth == 0:
            return user_call_site()
        return recurse_then_call(depth - 1)

    error, site = _catch_with_deep_stack(recurse_then_call)
    budget = 1200
    text = full_traceback(error, site, budget)
    assert len(text) <= budget
    assert text.startswith("Traceback (most recent call last):\n")
    assert "in user_call_site" in text
    assert 'raise ValueError("the raising frame")' in text
    assert text.rstrip().endswith("ValueError: the raising frame")
    assert "frames omitted by otel-aitrack" in text


def _catch_with_deep_stack(recurse):
    return recurse(60)


def test_a_huge_message_is_bounded_inside_the_budget() -> None:
    try:
        raise ValueError("m" * 50_000)
    except ValueError as error:
        text = full_traceback(error, sys._getframe(), 4000)
    assert len(text) <= 4000
    assert text.startswith("Traceback (most recent call last):\n")


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad value"),
        ValueError(),
        KeyError("key"),
        OSError(2, "No such file"),
        _Unprintable("x"),
        SyntaxError("invalid syntax", ("app.py", 3, 5, "x = = 1\n")),
    ],
    ids=lambda error: type(error).__name__,
)
def test_exception_lines_are_pythons_own(error: BaseException) -> None:
    assert _exception_only(error, 100_000) == "".join(traceback.format_exception_only(type(error), error))


def test_exception_notes_are_printed_as_python_prints_them() -> None:
    error = ValueError("bad")
    error.__notes__ = ["while reading the ticket"]  # add_note() is 3.11+
    assert _exception_only(error, 100_000) == "".join(traceback.format_exception_only(type(error), error))


def _configure_with_a_key_in_the_source() -> None:
    raise ValueError("bad config for key sk-proj-SECRETinMESSAGE0000")  # key=sk-proj-SECRETinSOURCE0000


def test_secrets_in_source_lines_and_messages_are_redacted_also_when_the_frame_text_is_cached() -> None:
    redactor = Redactor()
    for _ in range(2):  # the second time, the frame texts come from the cache
        try:
            _configure_with_a_key_in_the_source()
        except ValueError as error:
            text = full_traceback(error, sys._getframe(), 100_000, redactor)
        assert "SECRETinSOURCE" not in text and "SECRETinMESSAGE" not in text
        assert "_configure_with_a_key_in_the_source()" in text, "the source lines are still there"
        assert text.count(REDACTED) == 3  # two in the source line, one in the message


def _raise_at(where: str) -> None:
    if where == "first":
        raise ValueError("first")
    raise ValueError("second")


def test_cached_frame_texts_keep_each_raising_line_apart() -> None:
    """Frame texts are cached by code object and instruction: two raises in one function stay two lines."""
    for where in ("first", "second", "first", "second"):
        try:
            _raise_at(where)
        except ValueError as error:
            ours = full_traceback(error, sys._getframe(), 100_000)
            pythons = "".join(traceback.format_exception(error))
        raising_frame = pythons.rstrip().splitlines()[-3:-1]
        assert "\n".join(raising_frame) in ours, where
        assert f'raise ValueError("{where}")' in ours


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")


def test_an_exception_whose_str_fails_reads_as_python_prints_it() -> None:
    try:
        raise _Unprintable()
    except _Unprintable as error:
        ours = full_traceback(error, sys._getframe(), 100_000)
        pythons = "".join(traceback.format_exception_only(type(error), error))
    assert ours.endswith(pythons)
