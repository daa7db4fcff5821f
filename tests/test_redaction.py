"""Secrets never leave the process: provider keys, bearer tokens, key=value secrets; texts are bounded."""

from __future__ import annotations

import pytest

from otel_aitrack.redaction import REDACTED, Redactor, bound


@pytest.mark.parametrize(
    "secret",
    [
        "sk-abcdefghijklmnop1234",
        "sk-proj-AbCdEf0123456789_-xyz",
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
        "sk-svcacct-0123456789abcdef",
    ],
)
def test_provider_keys_are_redacted(secret: str) -> None:
    text = f"Incorrect API key provided: {secret}. You can find your API key at ..."
    out = Redactor().redact(text)
    assert secret not in out
    assert REDACTED in out
    assert out.startswith("Incorrect API key provided: ")


def test_bearer_token_is_redacted_but_the_word_kept() -> None:
    out = Redactor().redact("Authorization: Bearer eyJhbGciOi.JIUzI1NiJ9.abc-def_ghi=")
    assert "eyJhbGciOi" not in out
    assert "Bearer [REDACTED]" in out


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("GET https://x.example/v1/models?api_key=abc123def456&q=1", "abc123def456"),
        ("https://x.example/?key=AIzaSyD-1234567890", "AIzaSyD-1234567890"),
        ("call failed: access_token=ya29.a0AfH6SM; retrying", "ya29.a0AfH6SM"),
        ('{"api_key": "s3cr3t-value"}', "s3cr3t-value"),
        ("password: hunter2hunter2", "hunter2hunter2"),
        ("x-goog-api-key: AQ.Ab8RN6LxYz0123456789", "AQ.Ab8RN6LxYz0123456789"),
    ],
)
def test_key_value_secrets_are_redacted_and_the_key_name_kept(text: str, leak: str) -> None:
    out = Redactor().redact(text)
    assert leak not in out
    assert REDACTED in out


def test_ordinary_words_are_left_alone() -> None:
    text = "task-sk-like words, KeyError: 'model', max_tokens=4096, monkey=banana"
    assert Redactor().redact(text) == text


def test_extra_patterns_are_applied() -> None:
    out = Redactor([r"acct-\d{6}"]).redact("customer acct-123456 failed")
    assert out == f"customer {REDACTED} failed"


def test_bound_keeps_head_and_tail_and_says_what_was_cut() -> None:
    text = "HEAD" + "x" * 10_000 + "TAIL"
    out = bound(text, 500)
    assert len(out) <= 500
    assert out.startswith("HEAD") and out.endswith("TAIL")
    assert "characters omitted by otel-aitrack" in out


def test_bound_leaves_short_text_untouched() -> None:
    assert bound("short", 500) == "short"


def test_clean_redacts_before_bounding() -> None:
    secret = "sk-proj-" + "a" * 40
    out = Redactor().clean("x" * 100 + secret + "y" * 100, 120)
    assert "aaaaaaaa" not in out
