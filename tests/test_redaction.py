"""Secrets never leave the process: every rule, in every spelling, whatever the unicode; bounds are exact."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from otel_aitrack import redaction
from otel_aitrack.redaction import REDACTED, RULE_NAMES, SECRET_SPAN, Redactor, bound

DOCS = Path(__file__).resolve().parent.parent / "docs" / "redaction.md"
MARGIN = SECRET_SPAN + 2
_ROW = re.compile(r"^\| `([a-z0-9-]+)` \| .+ \| `(.+)` \| `(.+)` \|$")


def _documented_rules() -> list[tuple[str, str, str]]:
    text = DOCS.read_text()
    table = text[text.index("<!-- rules:start -->") : text.index("<!-- rules:end -->")]
    rows = [_ROW.match(line) for line in table.splitlines() if line.startswith("| `")]
    assert all(rows), [line for line in table.splitlines() if line.startswith("| `") and not _ROW.match(line)]
    return [(row[1], row[2], row[3]) for row in rows if row]


def test_every_rule_is_documented_once() -> None:
    documented = [name for name, _, _ in _documented_rules()]
    assert sorted(documented) == sorted(RULE_NAMES)
    assert len(set(documented)) == len(documented)


@pytest.mark.parametrize(("rule", "example", "expected"), _documented_rules(), ids=lambda value: value[:30])
def test_each_documented_example_becomes_what_the_docs_say(rule: str, example: str, expected: str) -> None:
    assert Redactor().redact(example) == expected


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
    assert out == f"Incorrect API key provided: {REDACTED}. You can find your API key at ..."


# What the issue found exported: each text, and the part of it that must not leave.
@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("GITHUB_TOKEN=ghx0123456789abcdefXYZ make deploy", "ghx0123456789abcdefXYZ"),
        ("AZURE_OPENAI_API_KEY=0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"),
        ("could not connect: db_password=Tr0ub4dor&3", "Tr0ub4dor"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG"),
        ("InvalidClientTokenId: AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        ("session credentials ASIAY34FZKBOKMUTVV7A expired", "ASIAY34FZKBOKMUTVV7A"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "dozjgNry",
        ),
        ("upstream said 401 to Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l", "YWxhZGRpbjpvcGVuc2VzYW1l"),
        ("connection to postgres://app:s3cr3t-pw@db.internal:5432/app refused", "s3cr3t-pw"),
        ("İstanbul office: Authorization: Bearer abcdef.ghijkl.mnopqr", "abcdef.ghijkl.mnopqr"),
        ("İstanbul office: access_token=ya29xyzabc0123", "ya29xyzabc0123"),
        ('{"apiKey": "pk-0123456789", "model": "gpt-4o"}', "pk-0123456789"),
        ("{'client_secret': 'cs with spaces 42'}", "cs with spaces 42"),
        ("X-Api-Key: 0a1b2c3d4e5f", "0a1b2c3d4e5f"),
        ("api-key: 0a1b2c3d4e5f", "0a1b2c3d4e5f"),
        ("GET /v1/x?token=t0k3n-value&sig=s1gn%2Bature&page=2", "t0k3n-value"),
        ("GET /v1/x?token=t0k3n-value&sig=s1gn%2Bature&page=2", "s1gn%2Bature"),
        ("private_key: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
        ("passwd=hunter22 pwd=hunter33", "hunter22"),
        ("passwd=hunter22 pwd=hunter33", "hunter33"),
        ("mysql --password hunter44 -h db", "hunter44"),
        (
            "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc+def/ghi==;EndpointSuffix=x",
            "abc+def/ghi==",
        ),
        ("os.environ['OPENAI_API_KEY'] = 'sk-not-a-real-key'", "sk-not-a-real-key"),
        ("Consumer 'api_key:AQ.Ab8RN6LxYz0123456789' has been suspended", "AQ.Ab8RN6LxYz0123456789"),
        ("GET https://x.example/v1/models?api_key=abc123def456&q=1", "abc123def456"),
        ("https://x.example/?key=AIzaSyD-1234567890", "AIzaSyD-1234567890"),
        ("call failed: access_token=ya29.a0AfH6SM; retrying", "ya29.a0AfH6SM"),
        ("password: hunter2hunter2", "hunter2hunter2"),
        ("x-goog-api-key: AQ.Ab8RN6LxYz0123456789", "AQ.Ab8RN6LxYz0123456789"),
        ('{\\"api_key\\": \\"escaped-secret\\"}', "escaped-secret"),
    ],
)
def test_secrets_of_every_kind_are_redacted(text: str, leak: str) -> None:
    out = Redactor().redact(text)
    assert leak not in out, out
    assert REDACTED in out


def test_what_names_a_secret_is_kept() -> None:
    out = Redactor().redact(
        "Authorization: token ghp_0123456789abcdefghijABCDEFGHIJ0123456789 at postgres://u:p@h/d"
    )
    assert out == f"Authorization: token {REDACTED} at postgres://u:{REDACTED}@h/d"


@pytest.mark.parametrize(
    "text",
    [
        "task-sk-like words, KeyError: 'model', max_tokens=4096, monkey=banana",
        "turkey: 4, hotkey=ctrl, bypass=true, compass: north, token_type=bearer, key_id=12",
        "public_key=abc primary_key=7 cache_key=x sort_key: y",
        "basic information about the request; the Bearer of bad news",
        "client = OpenAI(api_key=os.environ['OPENAI_API_KEY'])",
        "password=get_password() and api_key=None and token=null",
        "Error code: 404 - {'error': {'message': 'The model `gpt-5-nano-x` does not exist'}}",
        "xAIzaSyNotAKeyBecauseItStartsInsideAWord1234567 and AIzaShort",
        "ssh://git@github.com/org/repo.git and https://example.com:8443/path?q=1",
        "İstanbul 😀 ünïcödé e\u0301 ﬁ ß: nothing to hide",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Redactor().redact(text) == text


@pytest.mark.parametrize("character", ["İ", "ẞ", "ﬁ", "😀", "e\u0301", "\u00a0"])
def test_any_unicode_before_a_secret_leaves_every_rule_on(character: str) -> None:
    key = "sk-proj-0123456789abcdefXYZ"
    text = f"{character} Bearer abcdefghijkl {character} db_password=hunter22 {character}{key}"
    out = Redactor().redact(text)
    assert "abcdefghijkl" not in out and "hunter22" not in out and "0123456789abcdefXYZ" not in out
    assert out.count(REDACTED) == 3
    assert out.startswith(f"{character} Bearer {REDACTED}")


def test_a_non_ascii_password_is_masked_whole() -> None:
    assert Redactor().redact("password=grüße-İstanbul; next") == f"password={REDACTED}; next"


def test_extra_patterns_are_applied() -> None:
    out = Redactor([r"acct-\d{6}"]).redact("customer acct-123456 failed")
    assert out == f"customer {REDACTED} failed"


def test_extra_patterns_overlapping_a_rule_give_one_mask() -> None:
    out = Redactor([r"token=\w+"]).redact("token=abc123 left")
    assert out == f"{REDACTED} left"


# --- bound() ----------------------------------------------------------------------------------------


def _marker_count(text: str) -> int:
    found = re.search(r"\[\.\.\. (\d+) characters omitted by otel-aitrack \.\.\.\]", text)
    assert found, text
    return int(found[1])


def test_bound_keeps_head_and_tail_and_says_what_was_cut() -> None:
    text = "HEAD" + "x" * 10_000 + "TAIL"
    out = bound(text, 500)
    assert len(out) == 500
    assert out.startswith("HEAD") and out.endswith("TAIL")
    assert _marker_count(out) == len(text) - (500 - len(out.split("\n")[1]) - 2)


def test_bound_leaves_short_text_untouched() -> None:
    assert bound("short", 500) == "short"


def test_a_bound_of_twenty_is_twenty_characters() -> None:
    """message_max_length=20 exported a 49-character marker whose count was wrong."""
    out = bound("x" * 100, 20)
    assert out == "x" * 20


@pytest.mark.parametrize("limit", [0, 1, 49, 50, 51, 52, 60, 99])
def test_bound_is_never_longer_than_its_limit_and_counts_exactly(limit: int) -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(100))
    out = bound(text, limit)
    assert len(out) <= limit
    if "omitted by otel-aitrack" in out:
        head, _, tail = out.partition("\n[...")
        tail = tail.partition("...]\n")[2]
        assert text.startswith(head) and text.endswith(tail)
        assert len(head) + _marker_count(out) + len(tail) == len(text)
        assert len(out) >= limit - 1  # the count may have one digit fewer than the room left for it
    else:
        assert out == text[:limit]


# --- clean() -----------------------------------------------------------------------------------------


def test_clean_redacts_before_bounding() -> None:
    secret = "sk-proj-" + "a" * 40
    out = Redactor().clean("x" * 100 + secret + "y" * 100, 120)
    assert "aaaaaaaa" not in out
    assert len(out) <= 120


def test_clean_of_a_short_text_is_its_redaction() -> None:
    text = "key=abc def"
    assert Redactor().clean(text, 100) == Redactor().redact(text) == f"key={REDACTED} def"


def test_clean_bounds_a_text_whose_redaction_grew() -> None:
    text = " ".join(f"k{i}_pwd=ab" for i in range(20))  # each 2-character password grows to 10
    out = Redactor().clean(text, len(text))
    assert len(out) <= len(text)
    assert "=ab" not in out


def test_clean_reads_only_two_windows_of_an_over_long_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """An 11 MB message of `token=` pairs added 19 s to one call: the text is cut before it is redacted."""
    read: list[int] = []
    find = Redactor._find

    def counting(self: Redactor, text: str) -> list[tuple[int, int]]:
        read.append(len(text))
        return find(self, text)

    monkeypatch.setattr(Redactor, "_find", counting)
    text = "token=" + "&token=".join(f"secret{i:07d}" for i in range(700_000))
    out = Redactor().clean(text, 1024)
    assert len(text) > 10_000_000
    assert sum(read) <= 2 * (1024 + MARGIN)
    assert len(out) <= 1024
    assert "secret" not in out
    assert _marker_count(out) > len(text) - 1024


def test_a_secret_decided_late_that_straddles_the_head_window_does_not_survive() -> None:
    """A URL password is known as one only at its `@`. Hundreds of long keys before it shrink the head
    to `[REDACTED]`s, so the head's characters reach the URL; its `@` lies past the window's end
    unless the window's margin covers every rule's longest decision."""
    limit = 4000
    key = "sk-proj-" + "Z9" * 60  # 128 characters, masked into 10
    keys = (key + " ") * ((limit - 200) // (len(key) + 1))
    url = "postgres://app:" + "P4" * 300 + "@db.internal/app"  # the `@` 600 characters in
    text = keys + " " * (limit - 100 - len(keys)) + url + " " + "tail words " * 3000
    out = Redactor().clean(text, limit)
    assert "P4P4" not in out and "Z9Z9" not in out
    _assert_head_and_tail_of(Redactor().redact(text), out)


@pytest.mark.parametrize("shift", [30, 200, 900])
def test_a_quoted_value_whose_name_is_before_the_tail_window_does_not_survive(shift: int) -> None:
    """`'client_secret': 'words with spaces'`: a value's later words are runs of their own, so the tail
    is safe only if its window reaches back to the value's name; it does, as a quoted value is shorter
    than the window's margin (with a smaller margin, the value's last words would be kept here)."""
    limit = 400
    value = " ".join(f"w{index:03d}x" for index in range(170))  # 1019 characters, spaces in it
    secret = f"{{'client_secret': '{value}'}}"
    body = "head words " * 4000
    size = len(body) + shift + limit + redaction._MARGIN  # the tail window starts `shift` into the secret
    text = body + secret + " " + "z " * size
    text = text[: size - 9] + " the end."
    out = Redactor().clean(text, limit)
    assert not re.search(r"w\d{3}x", out), out[-300:]
    _assert_head_and_tail_of(Redactor().redact(text), out)


@pytest.mark.parametrize("shift", [-30, -12, -5, -1, 0, 1, 5])
def test_a_token_straddling_the_head_window_end_does_not_survive(shift: int) -> None:
    limit = 2000
    secret = "ghp_" + "Q7" * 20
    position = limit + redaction._MARGIN + shift
    filler = "lorem ipsum dolor sit amet " * 3000
    text = filler[:position] + " " + secret + " " + filler
    out = Redactor().clean(text, limit)
    assert "Q7Q7Q7" not in out
    assert len(out) <= limit
    _assert_head_and_tail_of(Redactor().redact(text), out)


def test_a_long_token_whose_start_was_cut_from_the_tail_window_is_not_kept() -> None:
    """A token longer than the margin: its start (and what names it) is before the tail window."""
    limit = 1000
    token = "Authorization: Bearer " + "V5" * (redaction._MARGIN + 2000)
    text = "head words " * 2000 + token + " the end"
    out = Redactor().clean(text, limit)
    assert "V5V5" not in out
    assert out.endswith(" the end")
    _assert_head_and_tail_of(Redactor().redact(text), out)


def _assert_head_and_tail_of(redacted: str, out: str) -> None:
    """`out` is a head of `redacted`, a marker and a tail of it: nothing it keeps was masked."""
    head, marker, rest = out.partition("\n[... ")
    assert redacted.startswith(head)
    if marker:
        tail = rest.partition(" characters omitted by otel-aitrack ...]\n")[2]
        assert redacted.endswith(tail)


def test_the_span_cache_is_bounded() -> None:
    redactor = Redactor()
    for index in range(redaction._CACHE_SIZE + 10):
        redactor.redact(f"token=value{index}")
    assert len(redactor._cache) <= redaction._CACHE_SIZE
