"""Failure groups: `aitrack.error.fingerprint` on failed spans and calls, `PromptStats.failure_groups`.

The same failure from the same place groups together (whatever its message, request id, line or
process), a new kind of failure or a failure from elsewhere is a new group, the recipe is the
documented one on every Python version, and groups stay bounded under many distinct failures.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest

import otel_aitrack
from otel_aitrack import book as book_module
from otel_aitrack import names
from otel_aitrack.book import MAX_FAILURE_GROUPS_PER_PROMPT_TYPE, Failure, FailureBook
from otel_aitrack.fingerprints import call_origin, fingerprint, function_name
from tests.conftest import Telemetry
from tests.fakes.openai_server import FakeOpenAI
from tests.support import attrs

MESSAGES = [{"role": "user", "content": "Summarize ticket #42"}]
HERE = __name__
ROOT = Path(__file__).resolve().parent.parent


def documented(provider: str, error_type: str, code: str, module: str, function: str) -> str:
    """The recipe as docs/telemetry.md writes it, computed here independently of the package."""
    text = f"aitrack-fingerprint-v1\n{provider}\n{error_type}\n{code}\n{module}\n{function}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def summarize(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def classify(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def failing(run: Any, *args: Any) -> None:
    with pytest.raises(openai.APIError):
        run(*args)


def fingerprints(telemetry: Telemetry) -> list[str]:
    return [attrs(span)[names.AITRACK_ERROR_FINGERPRINT] for span in telemetry.spans()]


# --- the fingerprint ---------------------------------------------------------------------------------
def test_the_fingerprint_is_the_documented_recipe() -> None:
    expected = documented("openai", "NotFoundError", "model_not_found", "app.tickets", "Summarizer.run")
    assert (
        fingerprint("openai", "NotFoundError", "model_not_found", ("app.tickets", "Summarizer.run"))
        == expected
    )
    assert len(expected) == 16 and int(expected, 16) >= 0
    assert fingerprint("openai", "APITimeoutError", None, ("app", "f")) == documented(
        "openai", "APITimeoutError", "", "app", "f"
    )


@pytest.mark.parametrize(
    "changed",
    [
        ("anthropic", "NotFoundError", "model_not_found", ("app", "run")),
        ("openai", "RateLimitError", "model_not_found", ("app", "run")),
        ("openai", "NotFoundError", "insufficient_quota", ("app", "run")),
        ("openai", "NotFoundError", "model_not_found", ("app.other", "run")),
        ("openai", "NotFoundError", "model_not_found", ("app", "Other.run")),
    ],
    ids=["provider", "error.type", "provider code", "module", "function"],
)
def test_each_part_of_a_failure_separates_the_groups(changed: tuple[Any, ...]) -> None:
    base = fingerprint("openai", "NotFoundError", "model_not_found", ("app", "run"))
    assert fingerprint(*changed) != base


def test_the_same_failure_from_the_same_function_is_one_group_whatever_its_message_and_id(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    # Two 404s of different models: different messages, different request ids, one group.
    fake.plan("not_found", "not_found")
    with otel_aitrack.track("summarize_ticket"):
        failing(summarize, client)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="gpt-5-other", messages=MESSAGES)  # another line, same
    first, second = telemetry.spans()
    assert attrs(first)[names.AITRACK_REQUEST_ID] != attrs(second)[names.AITRACK_REQUEST_ID]
    assert fingerprints(telemetry)[0] == documented(
        "openai", "NotFoundError", "model_not_found", HERE, "summarize"
    )
    # The second call was made by the test function itself: another place, another group.
    assert fingerprints(telemetry)[1] == documented(
        "openai",
        "NotFoundError",
        "model_not_found",
        HERE,
        "test_the_same_failure_from_the_same_function_is_one_group_whatever_its_message_and_id",
    )


def test_a_group_is_the_kind_of_failure_and_where_it_was_made(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    fake.plan("not_found", "not_found", "not_found", "rate_limit")
    with otel_aitrack.track("summarize_ticket"):
        failing(summarize, client)
        failing(summarize, client)
        failing(classify, client)
        failing(summarize, client)
    found = fingerprints(telemetry)
    assert found[0] == found[1] != found[2] != found[3] != found[0]
    groups = {group.fingerprint: group for group in otel_aitrack.stats()["summarize_ticket"].failure_groups}
    assert next((g.fingerprint, g.count) for g in groups.values()) == (found[0], 2)  # most frequent first
    assert set(groups) == set(found)
    limited = groups[found[3]]
    assert (limited.error_code, limited.provider_code, limited.category) == (
        "RateLimitError",
        "rate_limit_exceeded",
        "rate_limit",
    )
    assert limited.count == 1 and limited.first_seen == limited.last_seen
    assert limited.last_message == attrs(telemetry.spans()[3])[names.AITRACK_ERROR_MESSAGE]
    assert limited.last_traceback == attrs(telemetry.spans()[3])[names.AITRACK_ERROR_TRACEBACK]
    repeated = groups[found[0]]
    assert repeated.first_seen < repeated.last_seen
    # The same labels on the failed calls' counter: one series per group.
    for group in groups.values():
        counted = telemetry.value(
            names.METRIC_CALLS,
            gen_ai__prompt__name="summarize_ticket",
            aitrack__error__fingerprint=group.fingerprint,
        )
        assert counted == group.count


def test_a_stream_that_fails_where_it_is_read_is_grouped_where_it_was_made(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    def open_stream() -> Any:
        return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)

    def read(stream: Any) -> None:
        for _ in stream:
            pass

    fake.plan("stream_error")
    stream = open_stream()
    failing(read, stream)
    origin = (
        HERE,
        f"{test_a_stream_that_fails_where_it_is_read_is_grouped_where_it_was_made.__name__}.<locals>.open_stream",
    )
    (span,) = telemetry.spans()
    error_type = attrs(span)[names.ERROR_TYPE]
    code = attrs(span).get(names.AITRACK_ERROR_PROVIDER_CODE, "")
    assert fingerprints(telemetry) == [documented("openai", error_type, code, *origin)]


def test_a_success_has_no_fingerprint(client: openai.OpenAI, telemetry: Telemetry) -> None:
    summarize(client)
    assert names.AITRACK_ERROR_FINGERPRINT not in attrs(telemetry.span())
    point = telemetry.points(names.METRIC_CALLS)[0]
    assert names.AITRACK_ERROR_FINGERPRINT not in point.attributes


def test_the_origin_skips_the_sdk_and_otel_aitrack() -> None:
    frame = sys._getframe()
    assert call_origin(frame) == (HERE, "test_the_origin_skips_the_sdk_and_otel_aitrack")
    assert call_origin(None) == ("", "")


# --- across processes and Python versions ---------------------------------------------------------
# The package's own modules, run by another interpreter that has none of its dependencies installed:
# the package is made importable without running its __init__ (fingerprints need the standard library).
PROBE = """
import sys, types
package = types.ModuleType("otel_aitrack")
package.__path__ = [sys.argv[1]]
sys.modules["otel_aitrack"] = package
from otel_aitrack.fingerprints import call_origin, fingerprint

def top():
    return call_origin(sys._getframe())

class Tickets:
    def summarize(self):
        return call_origin(sys._getframe())

def in_a_comprehension():
    return [call_origin(sys._getframe()) for _ in range(1)][0]

for origin in (top(), Tickets().summarize(), in_a_comprehension()):
    print(origin[0], origin[1], fingerprint("openai", "NotFoundError", "model_not_found", origin))
"""


RUN_PROBE = "import runpy; runpy.run_path({probe!r}, run_name='probe_app')"


def pythons() -> list[str]:
    """This interpreter and the other CPython 3.11+ releases installed (pyenv)."""
    found = [sys.executable]
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for version in ("3.11", "3.12", "3.13", "3.14"):
        found += [
            str(p / "bin" / "python") for p in sorted(versions.glob(f"{version}.*")) if (p / "bin").is_dir()
        ]
    return list(dict.fromkeys(found))


def test_the_same_place_has_the_same_fingerprint_in_every_process_and_python_version(tmp_path: Path) -> None:
    probe = tmp_path / "probe_app.py"
    probe.write_text(PROBE)
    interpreters = pythons()
    if len(interpreters) < 2:
        pytest.skip("only one Python 3.11+ here: the cross-version check needs another (pyenv)")
    outputs = {}
    for python in interpreters:
        env = {**os.environ, "PYTHONHASHSEED": "random"}
        done = subprocess.run(
            [python, "-c", RUN_PROBE.format(probe=str(probe)), str(ROOT / "otel_aitrack")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (python, done.stderr)
        outputs[python] = done.stdout
    assert len(outputs) >= 2, outputs
    expected = (
        "probe_app top",
        "probe_app Tickets.summarize",
        "probe_app in_a_comprehension",  # 3.12+ inline the comprehension; 3.11 is named the same
    )
    for python, output in outputs.items():
        lines = output.splitlines()
        assert [line.rsplit(" ", 1)[0] for line in lines] == list(expected), python
    assert len(set(outputs.values())) == 1, outputs


def test_a_comprehensions_own_name_is_its_functions() -> None:
    def code_named(name: str) -> Any:
        return type("Code", (), {"co_qualname": name, "co_name": name.rsplit(".", 1)[-1]})()

    assert function_name(code_named("handle.<locals>.<listcomp>")) == "handle"
    assert function_name(code_named("<listcomp>")) == "<module>"
    assert function_name(code_named("handle.<locals>.<genexpr>")) == "handle.<locals>.<genexpr>"


# --- bounded ---------------------------------------------------------------------------------------
def call_from_function(index: int) -> Any:
    """A function of its own name (`caller_<index>`) that makes the call: a distinct place each."""
    namespace: dict[str, Any] = {"__name__": "tests.generated_callers"}
    exec(
        f"def caller_{index}(client, messages):\n"
        "    return client.chat.completions.create(model='gpt-4o-mini', messages=messages)\n",
        namespace,
    )
    return namespace[f"caller_{index}"]


def test_many_distinct_failures_stay_bounded_in_stats_and_metrics(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    distinct = MAX_FAILURE_GROUPS_PER_PROMPT_TYPE + 30
    fake.plan(*["not_found"] * distinct)
    with otel_aitrack.track("summarize_ticket"):
        for index in range(distinct):
            failing(call_from_function(index), client, MESSAGES)
    assert len(set(fingerprints(telemetry))) == distinct, "spans keep every real fingerprint"
    groups = otel_aitrack.stats()["summarize_ticket"].failure_groups
    assert len(groups) == MAX_FAILURE_GROUPS_PER_PROMPT_TYPE + 1
    overflow = groups[-1]
    assert overflow.fingerprint == names.OVERFLOW_FINGERPRINT
    assert overflow.count == 30, "the 30 seen longest ago were folded"
    kept = {group.fingerprint for group in groups[:-1]}
    assert kept == set(fingerprints(telemetry)[-MAX_FAILURE_GROUPS_PER_PROMPT_TYPE:]), "the newest are kept"
    labels = {
        dict(point.attributes)[names.AITRACK_ERROR_FINGERPRINT]: point.value
        for point in telemetry.points(names.METRIC_CALLS)
    }
    assert len(labels) == MAX_FAILURE_GROUPS_PER_PROMPT_TYPE + 1
    assert labels[names.OVERFLOW_FINGERPRINT] == 30, "the first 20 are labels; later ones _overflow"
    assert sum(labels.values()) == distinct


def test_a_failure_whose_fingerprint_cannot_be_made_still_counts(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_AITRACK_STRICT", "0")

    def broken(*args: Any) -> str:
        raise RuntimeError("fingerprint bug")

    monkeypatch.setattr("otel_aitrack.call.fingerprint", broken)
    fake.plan("not_found")
    with otel_aitrack.track("summarize_ticket"):
        failing(summarize, client)
    span = telemetry.span()
    assert attrs(span)[names.ERROR_TYPE] == "NotFoundError"
    assert names.AITRACK_ERROR_FINGERPRINT not in attrs(span)
    stats = otel_aitrack.stats()["summarize_ticket"]
    assert (stats.total_failed_calls, stats.failure_groups) == (1, ())
    assert telemetry.value(names.METRIC_CALLS, gen_ai__prompt__name="summarize_ticket") == 1


def test_the_book_folds_the_group_seen_longest_ago(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(1_000, 2_000))
    monkeypatch.setattr(book_module.time, "time", lambda: float(next(clock)))
    book = FailureBook()
    for index in range(MAX_FAILURE_GROUPS_PER_PROMPT_TYPE):
        book.record_failure("p", Failure("E", f"m{index}", None, f"fp{index}"))
    book.record_failure("p", Failure("E", "again", None, "fp0"))  # fp0 is seen again: fp1 is now oldest
    _, label = book.record_failure("p", Failure("E", "new", None, "fp-new"))
    assert label == names.OVERFLOW_FINGERPRINT, "the 21st fingerprint is counted under _overflow"
    groups = {group.fingerprint: group for group in book.snapshot()["p"].failure_groups}
    assert "fp1" not in groups and "fp0" in groups and "fp-new" in groups
    overflow = groups[names.OVERFLOW_FINGERPRINT]
    assert (overflow.count, overflow.last_message) == (1, "m1")
    as_dict = book.snapshot()["p"].as_dict()
    assert as_dict["failure_groups"][0]["fingerprint"] == "fp0"  # two failures: first
