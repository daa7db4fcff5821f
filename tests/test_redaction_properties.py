"""Property-based: secrets of every kind, in any unicode text, never survive `redact` nor `clean` at any
bound; `bound` is exact. Example counts: the hypothesis profile in tests/conftest.py."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from otel_aitrack import redaction
from otel_aitrack.redaction import Redactor, bound
from tests.secret_kinds import Secret, fillers, secrets, separators_after, separators_before

_MARKER = re.compile(r"\n\[\.\.\. (\d+) characters omitted by otel-aitrack \.\.\.\]\n")


@given(secrets(), fillers, separators_before, separators_after, fillers)
def test_no_secret_survives_redaction(
    secret: Secret, before: str, opening: str, closing: str, after: str
) -> None:
    text = before + opening + secret.text + closing + after
    out = Redactor().redact(text)
    assert not secret.leaks(out, allowed=before + after), (text, out)


@st.composite
def placed_secrets(draw: st.DrawFn) -> tuple[Secret, Secret, str, str, str, int]:
    """A secret placed across one of the cuts of `clean(text, limit)`: the head's end, the head window's
    end, the tail window's start, the tail's start; in a text full of other secrets (which redaction
    shrinks, so that the redacted text no longer lines up with the original)."""
    secret, other = draw(secrets()), draw(secrets())
    chunk = draw(fillers) + " " + other.text + " " + draw(fillers) + "\n"
    limit = draw(st.integers(0, 3000))
    margin = redaction._MARGIN
    over_long = draw(st.booleans())
    size = limit + 2 * margin + draw(st.integers(1, 3000)) if over_long else draw(st.integers(0, limit + 300))
    middle = draw(separators_before) + secret.text + draw(separators_after)
    cuts = [0, limit // 2, limit, limit + margin, size - limit - margin, size - limit // 2, size]
    start = draw(st.sampled_from(cuts)) + draw(st.integers(-len(middle) - 3, 3))
    start = max(0, min(size, start))
    before = chunk * (start // len(chunk)) + "." * (start % len(chunk))
    rest = max(0, size - start - len(middle))
    after = "." * (rest % len(chunk)) + chunk * (rest // len(chunk))
    return secret, other, before, middle, after, limit


@given(placed_secrets())
def test_no_secret_survives_clean_at_any_bound(case: tuple[Secret, Secret, str, str, str, int]) -> None:
    secret, other, before, middle, after, limit = case
    text = before + middle + after
    out = Redactor().clean(text, limit)
    assert len(out) <= limit
    assert not secret.leaks(out, allowed=before + after)
    assert not other.leaks(out, allowed=middle)
    _assert_head_and_tail_of(Redactor().redact(text), out)


def _assert_head_and_tail_of(redacted: str, out: str) -> None:
    """What `clean` keeps is a head and a tail of the full text's redaction: nothing it keeps was masked."""
    found = _MARKER.search(out)
    head = out[: found.start()] if found else out
    assert redacted.startswith(head)
    if found:
        assert redacted.endswith(out[found.end() :])


@given(st.text(max_size=300), st.integers(-5, 400))
def test_bound_is_exact_and_counts_what_it_cut(text: str, limit: int) -> None:
    out = bound(text, limit)
    assert len(out) <= max(limit, 0)
    if len(text) <= limit:
        assert out == text
        return
    found = _MARKER.search(out)
    if found is None:  # too small a bound for the marker: plain truncation
        assert out == text[: max(limit, 0)]
        return
    head, tail = out[: found.start()], out[found.end() :]
    assert text.startswith(head) and text.endswith(tail)
    assert len(head) + int(found[1]) + len(tail) == len(text)
    assert len(out) >= limit - 1  # nothing is cut that would fit (the count may have one digit fewer)
