"""The short texts a call is labelled with: prompt type, task, user id, model name.

They come from the application (`track(...)`, the request's `model`) and go on every span, on the
metrics' series and into `stats()`, so each is redacted (a key passed as the model name, a prompt type
that looks like a secret) and bounded once per distinct value, then cached.
"""

from __future__ import annotations

from .guard import guard
from .redaction import REDACTED, Redactor

# The longest each may be, in characters (docs/telemetry.md, "Attribution"); longer ones are cut.
PROMPT_TYPE_MAX_LENGTH = 128
TASK_MAX_LENGTH = 1024
USER_MAX_LENGTH = 256
MODEL_MAX_LENGTH = 256

# Distinct values kept; the cache starts over when full (a user id per call must not grow it forever).
_CACHE_SIZE = 4096


class Labels:
    """Cleans label texts with one redactor, remembering the answers."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._cache: dict[tuple[str, int], str] = {}

    def prompt_type(self, value: str) -> str:
        return self._clean(value, PROMPT_TYPE_MAX_LENGTH)

    def task(self, value: str) -> str:
        return self._clean(value, TASK_MAX_LENGTH)

    def user(self, value: str) -> str:
        return self._clean(value, USER_MAX_LENGTH)

    def model(self, value: str) -> str:
        return self._clean(value, MODEL_MAX_LENGTH)

    def _clean(self, value: str, limit: int) -> str:
        key = (value, limit)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        clean = REDACTED  # a text that could not be checked for secrets is not exported
        with guard("label redaction"):
            clean = label_text(self._redactor, value, limit)
        if len(value) <= 4 * limit:  # an over-long value is not kept alive by the cache
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = clean
        return clean


def label_text(redactor: Redactor, value: str, limit: int) -> str:
    """`value` redacted, then cut to `limit` characters (a label is cut, not marked in the middle).

    The redactor bounds before it redacts (linear in the bound, not in the value) and never lets a
    secret survive its cut; cutting the redacted text further cannot make one.
    """
    if not isinstance(value, str):
        value = str(value)
    return redactor.clean(value, 4 * limit)[:limit]
