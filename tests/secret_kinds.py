"""Secrets of every kind the redactor knows, as hypothesis strategies, and the test of a leak.

Each strategy draws a `Secret`: the text it stands in (`db_password=…`, `Bearer …`, a bare `ghp_…`)
and its confidential parts. The random parts come from a seeded generator, so every secret has full
entropy (hypothesis shrinks toward `0000…`, which a telemetry payload may hold by chance) while
hypothesis still chooses and replays it. A secret leaks when a `FRAGMENT`-character piece of a
confidential part appears in an output but not in the rest of the input.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import strategies as st

FRAGMENT = 10
ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "_-"
BASE64 = ALNUM + "+/"
UPPER_ALNUM = string.ascii_uppercase + string.digits
# What a password in an unquoted assignment may hold: anything but whitespace, quotes, brackets and
# the characters that end an unquoted value (`&`, `,`, `;`, `<`, `>`): docs/redaction.md.
UNQUOTED_VALUE = ALNUM + "!#$%*+-./:=?@^_~"
QUOTED_VALUE = UNQUOTED_VALUE + " ()[]{}<>&,;|"


@dataclass(frozen=True)
class Secret:
    kind: str
    text: str  # the secret where it stands: with its context when it needs one
    confidential: tuple[str, ...]  # the parts that must never leave the process
    bare: bool = False  # recognisable on its own (e.g. echoed back as an API key, without context)

    def fragments(self) -> set[str]:
        return {
            part[start : start + FRAGMENT]
            for part in self.confidential
            for start in range(max(len(part) - FRAGMENT + 1, 1))
        }

    def leaks(self, output: str | bytes, allowed: str = "") -> list[str]:
        """The fragments of this secret found in `output` (and not in `allowed`, the rest of the input)."""
        found = []
        for fragment in sorted(self.fragments()):
            if fragment in allowed:
                continue
            if (fragment.encode() if isinstance(output, bytes) else fragment) in output:
                found.append(fragment)
        return found


def _random(alphabet: str, low: int, high: int, rng: random.Random) -> str:
    return "".join(rng.choices(alphabet, k=rng.randint(low, high)))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


Maker = Callable[[random.Random], Secret]


def _openai(rng: random.Random) -> Secret:
    prefix = rng.choice(["sk-", "sk-proj-", "sk-svcacct-", "sk-admin-"])
    body = _random(URLSAFE, 40, 120, rng)
    return Secret("openai", prefix + body, (body,), bare=True)


def _anthropic(rng: random.Random) -> Secret:
    body = _random(URLSAFE, 80, 95, rng)
    return Secret("anthropic", f"sk-ant-api03-{body}AA", (body,), bare=True)


def _google(rng: random.Random) -> Secret:
    body = _random(URLSAFE, 35, 35, rng)
    return Secret("google", "AIza" + body, (body,), bare=True)


def _aws_access_key_id(rng: random.Random) -> Secret:
    body = _random(UPPER_ALNUM, 16, 16, rng)
    return Secret(
        "aws-access-key-id", rng.choice(["AKIA", "ASIA", "ABIA", "ACCA"]) + body, (body,), bare=True
    )


def _aws_secret_access_key(rng: random.Random) -> Secret:
    value = _random(BASE64, 40, 40, rng)
    name = rng.choice(
        ["aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "SecretAccessKey", "secretAccessKey"]
    )
    return Secret("aws-secret-access-key", _styled(name, value, rng), (value,))


def _azure(rng: random.Random) -> Secret:
    key = _random(BASE64, 86, 86, rng) + "=="
    hex_key = _random(string.hexdigits.lower()[:16], 32, 32, rng)
    sig = _random(ALNUM + "%", 40, 60, rng)
    ad_tail = _random(ALNUM + "_~.-", 33, 33, rng) + rng.choice(ALNUM)
    ad_secret = _random(ALNUM, 3, 3, rng) + str(rng.randint(0, 9)) + "Q~" + ad_tail
    forms = [
        (
            f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={key};EndpointSuffix=core.windows.net",
            key,
        ),
        (
            _styled(
                rng.choice(["AZURE_OPENAI_API_KEY", "api-key", "Ocp-Apim-Subscription-Key"]), hex_key, rng
            ),
            hex_key,
        ),
        (
            f"SharedAccessSignature sr=https%3A%2F%2Fns.servicebus.windows.net&sig={sig}&se=17000&skn=R",
            sig,
        ),
        (f"https://acct.blob.core.windows.net/c/b.txt?sv=2022-11-02&ss=b&srt=o&sp=r&sig={sig}", sig),
        (f"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={key}", key),
        (ad_secret, ad_tail),
    ]
    text, part = rng.choice(forms)
    return Secret("azure", text, (part,), bare=text == ad_secret)


def _github(rng: random.Random) -> Secret:
    if rng.random() < 0.3:
        body = _random(ALNUM + "_", 82, 82, rng)
        return Secret("github", "github_pat_" + body, (body,), bare=True)
    body = _random(ALNUM, 36, 36, rng)
    return Secret("github", rng.choice(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]) + body, (body,), bare=True)


def _slack(rng: random.Random) -> Secret:
    digits = string.digits
    tail = _random(ALNUM, 24, 32, rng)
    if rng.random() < 0.25:
        path = f"T{_random(UPPER_ALNUM, 8, 10, rng)}/B{_random(UPPER_ALNUM, 8, 10, rng)}/{tail}"
        return Secret("slack", f"https://hooks.slack.com/services/{path}", (path, tail))
    token = rng.choice(
        [
            f"xoxb-{_random(digits, 11, 12, rng)}-{_random(digits, 12, 13, rng)}-{tail}",
            f"xoxp-{_random(digits, 11, 12, rng)}-{_random(digits, 11, 12, rng)}-{tail}",
            f"xapp-1-A{_random(UPPER_ALNUM, 10, 10, rng)}-{_random(digits, 13, 13, rng)}-{tail}",
        ]
    )
    return Secret("slack", token, (token[5:],), bare=True)


def _stripe(rng: random.Random) -> Secret:
    body = _random(ALNUM, 24, 99, rng)
    return Secret("stripe", rng.choice(["sk_live_", "rk_live_", "sk_test_"]) + body, (body,), bare=True)


def _hugging_face(rng: random.Random) -> Secret:
    body = _random(string.ascii_letters, 34, 34, rng)
    return Secret("hugging-face", "hf_" + body, (body,), bare=True)


def _jwt(rng: random.Random) -> Secret:
    header = _b64url(json.dumps({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"}).encode())
    claims = {"sub": _random(ALNUM, 12, 24, rng), "iat": rng.randint(10**9, 2 * 10**9)}
    payload = _b64url(json.dumps(claims).encode())
    signature = _b64url(rng.randbytes(32))
    # The payload opens with `{"sub": "` in every JWT drawn here: only what follows is its own.
    return Secret("jwt", f"{header}.{payload}.{signature}", (payload[12:], signature), bare=True)


def _basic(rng: random.Random) -> Secret:
    password = _random(UNQUOTED_VALUE, 12, 30, rng)
    token = base64.b64encode(f"{_random(ALNUM, 4, 12, rng)}:{password}".encode()).decode()
    prefix = rng.choice(
        ["Authorization: Basic ", "authorization=Basic ", "sent Basic ", "Proxy-Authorization: basic "]
    )
    return Secret("basic", prefix + token, (token,))


def _bearer(rng: random.Random) -> Secret:
    token = _random(ALNUM + "-._~+/", 20, 60, rng)
    token = rng.choice(ALNUM) + token  # a token starts with a letter or digit
    prefix = rng.choice(
        ["Bearer ", "Authorization: Bearer ", "authorization: bearer ", "'Authorization': 'Bearer "]
    )
    suffix = "'" if prefix.startswith("'") else ""
    return Secret("bearer", prefix + token + suffix, (token,))


def _url_password(rng: random.Random) -> Secret:
    password = _random(ALNUM + "!$*+.~_-:@", 12, 30, rng)
    scheme = rng.choice(["postgres", "postgresql", "mysql", "redis", "amqp", "mongodb+srv", "https"])
    host = rng.choice(["db.internal", "10.0.0.7:5432", "cache.example.com:6379"])
    path = rng.choice(["/app", "/0", "", "/v1/models"])
    return Secret(
        "url-password", f"{scheme}://{_random(ALNUM, 3, 10, rng)}:{password}@{host}{path}", (password,)
    )


_NAMES = (
    *("GITHUB_TOKEN", "AZURE_OPENAI_API_KEY", "db_password", "aws_secret_access_key", "apiKey", "api-key"),
    *("X-Api-Key", "client_secret", "private_key", "passwd", "pwd", "OPENAI_API_KEY", "HF_TOKEN"),
    *("SLACK_BOT_TOKEN", "access_token", "refresh_token", "secretKey", "clientSecret", "authToken"),
    *("DB_PASS", "mysql_root_password", "smtp-password", "x-goog-api-key", "session_token", "password"),
    *("secret", "token", "api_key", "accessToken", "signing_secret", "encryption_key", "credentials"),
    *("passphrase", "APIKey", "ApiToken", "STRIPE_SECRET_KEY", "api_key_2", "oauth-token"),
)


def _words(name: str) -> list[str]:
    spaced = "".join(
        f" {c}" if c.isupper() and i and name[i - 1].islower() else c for i, c in enumerate(name)
    )
    return [word.lower() for word in spaced.replace("_", " ").replace("-", " ").split()]


_SPELLINGS: tuple[Callable[[list[str]], str], ...] = (
    lambda words: "_".join(words).upper(),
    "_".join,
    "-".join,
    lambda words: words[0] + "".join(word.title() for word in words[1:]),
    lambda words: "".join(word.title() for word in words),
    lambda words: "-".join(word.title() for word in words),
)
# Where an assignment stands: env, JSON, a Python repr, YAML, a header, keyword arguments, a query,
# command-line flags, PHP and Go; a quoted value may hold spaces.
_STYLES: tuple[tuple[str, bool], ...] = (
    ("{n}={v}", False),
    ('{n}="{v}"', True),
    ("export {n}={v}", False),
    ('"{n}": "{v}"', True),
    ("'{n}': '{v}'", True),
    ("{n}: {v}", False),
    ("{n}:{v}", False),
    ("{n}='{v}'", True),
    ("https://api.example.com/v1/x?page=2&{n}={v}&limit=5", False),
    ("--{n}={v}", False),
    ("--{n} {v}", False),
    ("'{n}' => '{v}'", True),
    ('{n} := "{v}"', True),
    ('{{\\"{n}\\": \\"{v}\\"}}', False),
    ("os.environ['{n}'] = '{v}'", True),
)


def _styled(name: str, value: str, rng: random.Random) -> str:
    """`name` assigned `value` (no spaces in it) in one of the styles but a command line's."""
    style = rng.choice([style for style, _quoted in _STYLES if not style.startswith("--")])
    return style.format(n=name, v=value)


def _assignment(rng: random.Random) -> Secret:
    name = rng.choice(_SPELLINGS)(_words(rng.choice(_NAMES)))
    style, quoted = rng.choice(_STYLES)
    if style.startswith("--"):  # a command-line flag is spelled in kebab case
        name = "-".join(_words(name))
    value = rng.choice(ALNUM) + _random(QUOTED_VALUE if quoted else UNQUOTED_VALUE, 11, 40, rng)
    if quoted:
        value = value.rstrip() + rng.choice(ALNUM)
    text = style.format(n=name, v=value)
    if rng.random() < 0.15:  # JSON inside a JSON string, once or twice: `{\"key\": \"…\"}`
        text = json.dumps({name: value})
        for _ in range(rng.randint(1, 2)):
            text = json.dumps(text)[1:-1]
    return Secret("assignment", text, (json.dumps(value)[1:-1],))


def _pem(rng: random.Random) -> Secret:
    kind = rng.choice(["RSA ", "EC ", "OPENSSH ", "", "ENCRYPTED "])
    body = base64.b64encode(rng.randbytes(rng.randint(100, 1200))).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    newline = rng.choice(["\n", "\\n"])  # raw, or escaped as in a JSON string
    begin, end = f"-----BEGIN {kind}PRIVATE KEY-----", f"-----END {kind}PRIVATE KEY-----"
    text = begin + newline + newline.join(lines) + newline + end
    return Secret("private-key", text, tuple(line for line in lines if len(line) >= FRAGMENT))


MAKERS: dict[str, Maker] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "google": _google,
    "aws-access-key-id": _aws_access_key_id,
    "aws-secret-access-key": _aws_secret_access_key,
    "azure": _azure,
    "github": _github,
    "slack": _slack,
    "stripe": _stripe,
    "hugging-face": _hugging_face,
    "jwt": _jwt,
    "basic": _basic,
    "bearer": _bearer,
    "url-password": _url_password,
    "assignment": _assignment,
    "private-key": _pem,
}
KINDS = tuple(MAKERS)
# Kinds whose every secret is recognisable alone: what a provider may echo back bare (an API key).
BARE_KINDS = ("openai", "anthropic", "google", "aws-access-key-id", "github", "stripe", "hugging-face", "jwt")


def secret_of(kind: str, seed: int) -> Secret:
    return MAKERS[kind](random.Random(f"{kind}:{seed}"))


def secrets(kinds: tuple[str, ...] = KINDS) -> st.SearchStrategy[Secret]:
    return st.builds(secret_of, st.sampled_from(kinds), st.integers(0, 2**32))


# Text around a secret: any unicode, with the characters that broke redaction before weighted in
# ("İ" lower-cases to two characters), emoji and combining marks.
_TRICKY = "İıẞß\u0301\u0308😀🔑👩‍💻\u200b\u00a0 \t\nÅﬁΣσς"
fillers = st.text(st.sampled_from(_TRICKY) | st.characters(codec="utf-8"), max_size=30)  # no lone surrogates
separators_before = st.sampled_from([" ", "\n", "\t", ": ", "(", "[", " | ", "İ "])
separators_after = st.sampled_from([" ", "\n", "\t", ", ", "; ", ") ", " İ", ". "])
