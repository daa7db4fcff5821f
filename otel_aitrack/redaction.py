"""Secret redaction and length bounds, applied to every string before it is exported or kept.

Every rule is listed, with what it matches and an example, in docs/redaction.md (a test checks that
the list and the rules agree). The design, in three promises:

- Any unicode: the rules run on an ASCII image of the text in which each non-ASCII character is one
  NUL, so positions never shift (``"İ".lower()`` is two characters) and a secret next to "İstanbul"
  is found like any other.
- Linear: each rule starts from a literal found by ``str.find`` or a regex's literal prefix, and
  every scan resumes after what it matched, so no character is scanned twice by one rule.
- Bounded before redacted: every match of a built-in rule is a *bounded part* of at most
  ``SECRET_SPAN`` characters, optionally followed by the rest of a run of non-whitespace characters
  (a long token). ``Redactor.clean`` therefore redacts only the two windows it keeps, each with a
  ``SECRET_SPAN`` margin toward the cut, and keeps no character that the full text's redaction would
  have masked (docs/redaction.md, "Bounding").
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

REDACTED = "[REDACTED]"

# The longest quoted value, PEM body and URL authority a rule reads; with the names and separators
# around them, no bounded part of a match is longer than SECRET_SPAN.
QUOTED_MAX = 1024
PEM_MAX = 8192
AUTHORITY_MAX = 2048
NAME_MAX = 64
SECRET_SPAN = PEM_MAX + 512
# What `clean` redacts beyond what it keeps: a bounded part, plus the one character a rule may look
# at on either side of it (a word boundary).
_MARGIN = SECRET_SPAN + 2

Span = tuple[int, int]

# --- the text as the rules see it ----------------------------------------------------------------

_NUL_HANDLER = "otel_aitrack.one_nul_per_character"


def _one_nul_per_character(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeEncodeError)
    return "\0" * (error.end - error.start), error.end


codecs.register_error(_NUL_HANDLER, _one_nul_per_character)


class _Text:
    """`plain`: the text with each non-ASCII character replaced by one NUL (same positions);
    `lower`: its lower case (ASCII lower-casing never changes a length)."""

    __slots__ = ("lower", "plain")

    def __init__(self, text: str) -> None:
        plain = text if text.isascii() else text.encode("ascii", _NUL_HANDLER).decode("ascii")
        self.plain = plain
        self.lower = plain.lower()


_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_WORDISH = _ALNUM | {"_"}


def _starts_word(text: str, index: int) -> bool:
    """Nothing word-like stands right before `index` (so `monkey` never reads as `key`)."""
    return index == 0 or text[index - 1] not in _WORDISH


# --- rules ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One rule: run only when one of its literals is in the text (`lower`: in the lower-cased text;
    no literal: always, for a rule that is its own literal scan)."""

    name: str
    literals: tuple[str | re.Pattern[str], ...]  # a pattern stands for several literals in one scan
    lower: bool
    spans: Callable[[_Text], Iterator[Span]]


def _token_rule(name: str, literals: tuple[str | re.Pattern[str], ...], pattern: str) -> Rule:
    """A self-identifying token (`ghp_…`, `AKIA…`): masked whole, unless it starts inside a word."""
    compiled = re.compile(pattern)

    def spans(text: _Text) -> Iterator[Span]:
        for match in compiled.finditer(text.plain):
            if _starts_word(text.plain, match.start()):
                yield match.span()

    return Rule(name, literals, False, spans)


_TOKEN_RULES = (
    # OpenAI (sk-, sk-proj-, sk-svcacct-, sk-admin-), Anthropic (sk-ant-), DeepSeek, OpenRouter (sk-or-).
    _token_rule("openai-anthropic-key", ("sk-",), r"sk-[A-Za-z0-9_\-]{16,}"),
    _token_rule("google-api-key", ("AIza",), r"AIza[0-9A-Za-z_\-]{35,}"),
    _token_rule("google-oauth-token", ("ya29.",), r"ya29\.[0-9A-Za-z_\-]{20,}"),
    _token_rule("google-client-secret", ("GOCSPX-",), r"GOCSPX-[0-9A-Za-z_\-]{20,}"),
    _token_rule(
        "aws-access-key-id",
        (re.compile("A(?:KIA|SIA|BIA|CCA|3T)"),),
        r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])",
    ),
    _token_rule(
        "github-token",
        (re.compile("g(?:h[pousr]|ithub_pat)_"),),
        r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}",
    ),
    _token_rule("gitlab-token", ("glpat-",), r"glpat-[A-Za-z0-9_\-]{20,}"),
    _token_rule(
        "slack-token",
        (re.compile("x(?:ox|app-)"),),
        r"(?:xox[abeoprs](?:\.xox[a-z])?|xapp)-[A-Za-z0-9\-]{10,}",
    ),
    _token_rule(
        "stripe-key",
        ("k_live_", "k_test_", "whsec_"),
        r"(?:[sr]k_(?:live|test)|whsec)_[A-Za-z0-9]{10,}",
    ),
    _token_rule("hugging-face-token", ("hf_", "api_org_"), r"(?:hf|api_org)_[A-Za-z0-9]{30,}"),
    _token_rule("groq-key", ("gsk_",), r"gsk_[A-Za-z0-9]{20,}"),
    _token_rule("xai-key", ("xai-",), r"xai-[A-Za-z0-9]{20,}"),
    _token_rule("perplexity-key", ("pplx-",), r"pplx-[A-Za-z0-9]{20,}"),
    _token_rule("replicate-token", ("r8_",), r"r8_[A-Za-z0-9]{20,}"),
    _token_rule("npm-token", ("npm_",), r"npm_[A-Za-z0-9]{36,}"),
    _token_rule("pypi-token", ("pypi-",), r"pypi-AgE[A-Za-z0-9_\-]{50,}"),
    _token_rule("sendgrid-key", ("SG.",), r"SG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,}"),
    # A JWT, or any base64url-encoded JSON object (`{"` encodes to `eyJ`): the payload is as telling.
    _token_rule("jwt", ("eyJ",), r"eyJ[A-Za-z0-9_=\-]{10,}(?:\.[A-Za-z0-9_=\-]*)*"),
)

# Azure AD (Entra ID) client secrets: three characters, a digit, `Q~`, then 31 to 34 more.
_AZURE_AD_SECRET = re.compile(r"[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34}(?![A-Za-z0-9_~\-])")
_AZURE_AD_EDGE = _ALNUM | set("_~.-")


def _azure_ad_secrets(text: _Text) -> Iterator[Span]:
    plain = text.plain
    index = plain.find("Q~", 4)
    while index != -1:
        match = _AZURE_AD_SECRET.match(plain, index - 4)
        if match and (index == 4 or plain[index - 5] not in _AZURE_AD_EDGE):
            yield match.span()
            index = match.end()
        index = plain.find("Q~", index + 1)


# `Bearer <token>` (RFC 6750 token characters), keeping the word `Bearer`.
_BEARER = re.compile(r"bearer[ \t]{1,16}([a-z0-9._~+/\-]{6,}=*)")


def _bearer_tokens(text: _Text) -> Iterator[Span]:
    for match in _BEARER.finditer(text.lower):
        if match.start() == 0 or text.lower[match.start() - 1] not in _ALNUM:
            yield match.span(1)


# `Basic <base64 of user:password>`: masked when it decodes to text with a colon, so that the words
# after "basic" in prose stay. Only the first 256 characters are decoded (a bounded decision).
_BASIC = re.compile(r"(?i:basic)[ \t]{1,16}([A-Za-z0-9+/]{4,}={0,2})")


def _basic_credentials(text: _Text) -> Iterator[Span]:
    for match in _BASIC.finditer(text.plain):
        if (match.start() == 0 or text.plain[match.start() - 1] not in _ALNUM) and _is_basic(match[1]):
            yield match.span(1)


def _is_basic(token: str) -> bool:
    head = token[:256].rstrip("=")
    head = head[: len(head) - len(head) % 4] or head
    try:
        raw = base64.b64decode(head + "=" * (-len(head) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in raw and all(byte >= 0x20 and byte != 0x7F for byte in raw)


# `scheme://user:password@host`: the password, up to the authority's last `@`.
_AUTHORITY = re.compile(r"[^\s/?#\"'<>\\]{0," + str(AUTHORITY_MAX) + "}")


def _url_passwords(text: _Text) -> Iterator[Span]:
    plain = text.plain
    index = plain.find("://")
    while index != -1:
        start = index + 3
        end = _AUTHORITY.match(plain, start).end()  # type: ignore[union-attr]
        at = plain.rfind("@", start, end)
        colon = plain.find(":", start, at) if at != -1 else -1
        if colon != -1 and colon + 1 < at:
            yield colon + 1, at
        index = plain.find("://", max(end, start))


_SLACK_WEBHOOK = re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/([a-z0-9+/_\-]+)")


def _slack_webhooks(text: _Text) -> Iterator[Span]:
    for match in _SLACK_WEBHOOK.finditer(text.lower):
        yield match.span(1)


# A PEM private key: the body between its BEGIN and END lines (escaped `\n`s included).
_PEM_BEGIN = re.compile(r"-----begin[ a-z0-9_\-]{0,64}private key(?: block)?-----")


def _pem_bodies(text: _Text) -> Iterator[Span]:
    lower = text.lower
    for match in _PEM_BEGIN.finditer(lower):
        start = match.end()
        end = lower.find("-----end", start, start + PEM_MAX)
        yield start, end if end != -1 else min(start + PEM_MAX, len(lower))


# --- values of secret-named assignments ----------------------------------------------------------

# Literals that can end a secret's name; each occurrence is checked against the whole name around it.
_NAME_LITERALS = ("key", "token", "secret", "pass", "pwd", "sig", "cred", "authoriz")
# A name's last word that makes it a secret's name (`GITHUB_TOKEN`, `db_password`, `X-Api-Key`).
_SECRET_WORDS = frozenset(
    {
        *("key", "token", "secret", "password", "passwd", "pwd", "passphrase", "sig", "signature"),
        *("credential", "credentials", "creds", "authorization"),
    }
)
# Glued into one word, these still say "secret" whatever precedes them (`smtppassword`)...
_STRONG_ENDINGS = ("token", "secret", "password", "passwd", "passphrase", "credential", "credentials")
# ...while these need a qualifier before them (`apikey`, `dbpwd`; not `monkey`, not `bypass`).
_QUALIFIERS = (
    *("api", "access", "auth", "secret", "private", "client", "refresh", "session", "bearer", "app"),
    *("master", "account", "db", "user", "service", "signing", "encryption", "oauth", "id", "bot"),
    *("admin", "root", "sas", "subscription", "hmac"),
)
_GLUED_ENDINGS = _STRONG_ENDINGS + tuple(q + w for q in _QUALIFIERS for w in ("key", "pwd", "pass", "sig"))
_SECRET_ENDINGS = tuple(sorted({*_SECRET_WORDS, "pass"})) + tuple(
    str(digit) for digit in range(10)
)  # `API_KEY_2`: the name may end in digits after its secret word
# Names that end in a secret word but name no secret: `public_key`, `primary_key`, `max_token`.
_NOT_SECRET_QUALIFIERS = frozenset(
    {
        *("public", "primary", "foreign", "sort", "partition", "cache", "idempotency", "dedup"),
        *("max", "min", "num", "total", "input", "output", "prompt", "completion", "reasoning", "cached"),
    }
)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
# The rest of a name, then its separator: closing quotes or brackets (`"api_key": `,
# `environ["KEY"] = `), `=`, `:`, `:=` or `=>` (not `==`, not `::`), spaces or tabs on either side.
# A quote may be escaped, once or more (`\"key\": ` is JSON inside a JSON string, as captured content
# holding JSON is: `\\\"key\\\": `).
_NAME_THEN_SEPARATOR = re.compile(
    r"([a-z0-9_.\-]{0,"
    + str(NAME_MAX)
    + "})"
    + r"(?:\\{0,8}[\"'`\]]){0,3}[ \t]{0,16}(?::=|=>|=(?!=)|:(?!:))[ \t]{0,16}"
)
# A command-line flag takes its value after a space: `--password hunter2`.
_FLAG = re.compile(r"([a-z0-9_.\-]{1," + str(NAME_MAX) + r"})[ \t]{1,16}")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9\-]{1,20}[ \t]{1,8}(?=[^\s])")
_OPENING_QUOTE = re.compile(r"\\{0,8}([\"'`])")
# An unquoted value: up to whitespace, a quote, `&`, `,`, `;`, `<`, `>` or a closing bracket.
_UNQUOTED = re.compile(r"[^\s\"'`&,;<>)\]}]+")
_RUN = re.compile(r"[^\s]*")
# A call or a subscript in code (`os.environ[`, `get_key(`): code, not a secret.
_CODE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*[(\[]")
_NOT_VALUES = frozenset({"none", "null", "nil", "true", "false", "undefined"})


def _named_values(text: _Text) -> Iterator[Span]:
    lower = text.lower
    for literal in _NAME_LITERALS:
        index = lower.find(literal)
        while index != -1:
            after = _NAME_THEN_SEPARATOR.match(lower, index + len(literal))
            if after is None:  # most occurrences: "API key provided", a `key` inside a token
                index = lower.find(literal, index + 1)
                continue
            resume, span = _named_value_at(text, index, after)
            if span is not None:
                yield span
            index = lower.find(literal, resume)
    index = lower.find("--")
    while index != -1:
        resume, span = _named_value_at(text, index + 2, _FLAG.match(lower, index + 2), flag=True)
        if span is not None:
            yield span
        index = lower.find("--", resume)


def _named_value_at(
    text: _Text, index: int, after: re.Match[str] | None, flag: bool = False
) -> tuple[int, Span | None]:
    """The value after the name around `index`, if the name is a secret's; and where to look next.

    `after` matched the rest of the name and its separator: most occurrences of a literal ("API key
    provided", a `key` inside a token) have none, and cost one regex match.
    """
    if after is None:
        return index + 1, None
    name_end = after.end(1)
    lower = text.lower
    if not lower.endswith(_SECRET_ENDINGS, index, name_end):
        return max(name_end, index + 1), None
    start = index
    while not flag and start > 0 and lower[start - 1] in _NAME_CHARS:
        start -= 1
        if index - start > NAME_MAX:
            return name_end, None
    if not _is_secret_name(text.plain[start:name_end]):
        return name_end, None
    span = _value_after(text, after.end(), lower.endswith("authorization", start, name_end))
    return (span[1] if span else name_end), span


def _is_secret_name(name: str) -> bool:
    """The name's last word is a secret word (`GITHUB_TOKEN`, `apiKey`, `API_KEY_2`), and the word
    before it no denial (`public_key`)."""
    words = [word.lower() for word in _WORDS.findall(name)]
    while words and words[-1].isdigit():
        words.pop()
    if not words:
        return False
    last = words[-1]
    secret = last in _SECRET_WORDS or last.endswith(_GLUED_ENDINGS) or (last == "pass" and len(words) > 1)
    return secret and not (len(words) > 1 and words[-2] in _NOT_SECRET_QUALIFIERS)


def _value_after(text: _Text, index: int, authorization: bool) -> Span | None:
    """The value that starts at `index` (after the separator), quoted or not."""
    plain = text.plain
    if authorization:
        scheme = _SCHEME.match(plain, index)
        if scheme is not None:
            index = scheme.end()
    quote = _OPENING_QUOTE.match(plain, index)
    if quote is not None:
        return _quoted_value(plain, quote.end(), quote[1])
    value = _UNQUOTED.match(plain, index)
    if value is None:
        return None
    word = value[0]
    if word[0] in "([{" or word.lower() in _NOT_VALUES or _CODE.match(word):
        return None
    return value.span()


def _quoted_value(plain: str, start: int, quote: str) -> Span | None:
    """Up to the closing quote (or the end of the line); a value over QUOTED_MAX goes on to the end
    of its run of non-whitespace."""
    limit = min(len(plain), start + QUOTED_MAX)
    end = start
    while end < limit and plain[end] != quote and plain[end] != "\n":
        end += 1
    if end == limit and limit < len(plain) and plain[limit] not in (quote, "\n"):
        end = _RUN.match(plain, end).end()  # type: ignore[union-attr]
    elif end < len(plain) and plain[end] == quote:
        while end > start and plain[end - 1] == "\\":
            end -= 1  # `\"secret\"` inside JSON: keep the backslashes of the escaped closing quote
    if end == start or plain[start:end].lower() in _NOT_VALUES:
        return None
    return start, end


_RULES: tuple[Rule, ...] = (
    *_TOKEN_RULES,
    Rule("azure-ad-client-secret", ("Q~",), False, _azure_ad_secrets),
    Rule("bearer-token", ("bearer",), True, _bearer_tokens),
    Rule("basic-credentials", ("basic",), True, _basic_credentials),
    Rule("url-password", ("://",), False, _url_passwords),
    Rule("slack-webhook", ("hooks.slack.com/",), True, _slack_webhooks),
    Rule("private-key", ("-----begin",), True, _pem_bodies),
    Rule("secret-named-value", (), True, _named_values),  # its own scan is for its literals
)
# (literal, rule) pairs, one per literal: a text is searched once per literal, in C, and only the
# rules whose literal is found are run.
_PLAIN_GATES = tuple(
    (literal, rule.spans)
    for rule in _RULES
    if not rule.lower
    for literal in rule.literals
    if isinstance(literal, str)
)
_PLAIN_SEARCHES = tuple(
    (literal.search, rule.spans)
    for rule in _RULES
    for literal in rule.literals
    if isinstance(literal, re.Pattern)
)
_LOWER_GATES = tuple(
    (literal, rule.spans)
    for rule in _RULES
    if rule.lower
    for literal in rule.literals
    if isinstance(literal, str)
)
_ALWAYS = tuple(rule.spans for rule in _RULES if not rule.literals)
RULE_NAMES = tuple(rule.name for rule in _RULES)


# --- the redactor --------------------------------------------------------------------------------


# Failing calls repeat the same message: the spans of texts up to this long are remembered, for at
# most this many texts (then the cache starts over). The texts stay in this process.
_CACHED_TEXT_MAX = 4096
_CACHE_SIZE = 512


class Redactor:
    """Masks secrets in text; the built-in rules plus the user's own patterns."""

    def __init__(self, extra_patterns: Iterable[str] = ()) -> None:
        self._extra = tuple(re.compile(pattern) for pattern in extra_patterns)
        self._cache: dict[str, list[Span]] = {}

    def redact(self, text: str) -> str:
        """`text` with every secret replaced by `REDACTED`; linear in the text's length."""
        return _replace(text, self.spans(text))

    def clean(self, text: str, max_length: int) -> str:
        """Redacted and bounded to `max_length`: what every exported string goes through.

        Costs O(max_length): an over-long text is cut *before* it is redacted, yet no character that
        `redact(text)` would mask is kept (the module docstring says why).
        """
        if max_length <= 0:
            return ""
        size = len(text)
        if size <= max_length + 2 * _MARGIN:
            spans = self.spans(text)
            if size + sum(len(REDACTED) - (end - start) for start, end in spans) <= max_length:
                return _replace(text, spans)
            return _cut(text, max_length, spans, size, spans, 0)
        head_spans = self.spans(text[: max_length + _MARGIN])
        tail_start = size - max_length - _MARGIN
        tail_spans = [(start + tail_start, end + tail_start) for start, end in self.spans(text[tail_start:])]
        return _cut(
            text, max_length, head_spans, max_length, tail_spans, _word_start(text, tail_start + _MARGIN)
        )

    def spans(self, text: str) -> list[Span]:
        """Where the secrets of `text` stand: sorted, merged (start, end) positions."""
        if not text:
            return []
        if len(text) > _CACHED_TEXT_MAX:
            return self._find(text)
        found = self._cache.get(text)
        if found is None:
            found = self._find(text)
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[text] = found
        return found

    def _find(self, text: str) -> list[Span]:
        seen = _Text(text)
        plain, lower = seen.plain, seen.lower
        run = {spans for literal, spans in _PLAIN_GATES if literal in plain}
        run.update([spans for search, spans in _PLAIN_SEARCHES if search(plain)])
        run.update([spans for literal, spans in _LOWER_GATES if literal in lower])
        found: list[Span] = []
        for spans in (*run, *_ALWAYS):
            found.extend(spans(seen))
        for pattern in self._extra:
            found.extend(match.span() for match in pattern.finditer(text) if match.end() > match.start())
        return _merged(found)


def _merged(spans: list[Span]) -> list[Span]:
    if len(spans) < 2:
        return spans
    spans.sort()
    merged = [spans[0]]
    for start, end in spans[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged


def _replace(text: str, spans: list[Span]) -> str:
    if not spans:
        return text
    out, last = [], 0
    for start, end in spans:
        out.append(text[last:start])
        out.append(REDACTED)
        last = end
    out.append(text[last:])
    return "".join(out)


_WHITESPACE = re.compile(r"[ \t\n\r\f\v]")


def _word_start(text: str, index: int) -> int:
    """`index`, or the end of the run of non-whitespace it stands in: the tail of a long token whose
    start was cut away is not kept, whatever rule would have masked it."""
    if (
        index <= 0
        or index >= len(text)
        or _WHITESPACE.match(text, index - 1)
        or _WHITESPACE.match(text, index)
    ):
        return index
    found = _WHITESPACE.search(text, index)
    return found.start() if found else len(text)


# --- bounds --------------------------------------------------------------------------------------


def _marker(omitted: int) -> str:
    return f"\n[... {omitted} characters omitted by otel-aitrack ...]\n"


def bound(text: str, max_length: int) -> str:
    """At most `max_length` characters: the head and the tail of an over-long text, with a marker
    that counts exactly what was cut in the middle; plain truncation when not even the marker fits."""
    size = len(text)
    if size <= max_length:
        return text
    if max_length <= 0:
        return ""
    keep = max_length - len(_marker(size))
    while keep >= 0 and keep + 1 + len(_marker(size - keep - 1)) <= max_length:
        keep += 1  # the count has fewer digits than the length
    if keep < 2:
        return text[:max_length]
    head = keep // 2
    return text[:head] + _marker(size - keep) + text[size - (keep - head) :]


def _cut(
    text: str,
    max_length: int,
    head_spans: list[Span],
    head_limit: int,
    tail_spans: list[Span],
    tail_limit: int,
) -> str:
    """The redacted head and tail of `text` around a marker, in `max_length` characters; the head
    is read from `text[:head_limit]`, the tail from `text[tail_limit:]`, each with its spans."""
    room = max_length - len(_marker(len(text)))  # no count has more digits than the length
    if room < 2:
        return _head(text, head_spans, max_length, head_limit)[0]
    head, head_end = _head(text, head_spans, room // 2, head_limit)
    tail, tail_start = _tail(text, tail_spans, room - room // 2, max(tail_limit, head_end))
    return head + _marker(tail_start - head_end) + tail


def _head(text: str, spans: list[Span], budget: int, limit: int) -> tuple[str, int]:
    """Up to `budget` characters of the redacted text from the start, read from `text[:limit]`; and
    the position in `text` where they stop. A secret is shown whole as `REDACTED` or not at all."""
    out, size, position = [], 0, 0
    for start, end in [*spans, (limit, limit)]:
        plain = min(start, limit) - position
        if size + plain >= budget:
            out.append(text[position : position + budget - size])
            return "".join(out), position + budget - size
        out.append(text[position : position + plain])
        size, position = size + plain, position + plain
        if start >= limit or size + len(REDACTED) > budget:
            break
        out.append(REDACTED)
        size, position = size + len(REDACTED), end
        if position >= limit:
            break
    return "".join(out), position


def _tail(text: str, spans: list[Span], budget: int, limit: int) -> tuple[str, int]:
    """The same as `_head` from the end: up to `budget` characters read from `text[limit:]`."""
    out, size, position = [], 0, len(text)
    for start, end in [*reversed(spans), (limit, limit)]:
        plain = position - max(end, limit)
        if size + plain >= budget:
            out.append(text[position - (budget - size) : position])
            return "".join(reversed(out)), position - (budget - size)
        out.append(text[position - plain : position])
        size, position = size + plain, position - plain
        if end <= limit or size + len(REDACTED) > budget:
            break
        out.append(REDACTED)
        size, position = size + len(REDACTED), start
        if position <= limit:
            break
    return "".join(reversed(out)), position
