"""Setup is safe under concurrency and repetition, and a configuration mistake is told, never hidden.

- `instrument()` from several threads at once wraps the SDK once; `uninstrument()` never raises.
- `uninstrument()` then `instrument()` on the same MeterProvider: counting goes on.
- A wrong `instrument()` keyword raises, naming it; a bad `OTEL_AITRACK_*` value logs one warning
  naming the variable and the value, and the default is used (under `opentelemetry-instrument` and
  `otel-aitrack run` too: the application runs instrumented).
- Bounds are exact; `track()` values are bounded and redacted.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import openai
import pytest

import otel_aitrack
from otel_aitrack import labels, names
from otel_aitrack.config import NO_CONTENT, load_settings
from otel_aitrack.redaction import REDACTED
from tests.conftest import API_KEY, Telemetry, instrumented
from tests.fakes.openai_server import FakeOpenAI
from tests.support import ask_openai, attrs

MESSAGES = [{"role": "user", "content": "hi"}]


# --- concurrency and repetition ----------------------------------------------------------------------


def test_instrument_from_many_threads_at_once_wraps_once_and_uninstrument_never_raises(
    fake: FakeOpenAI,
) -> None:
    seen = Telemetry()
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def setup() -> None:
        start.wait()
        try:
            otel_aitrack.AITrackInstrumentor().instrument(
                tracer_provider=seen.tracer_provider, meter_provider=seen.meter_provider
            )
        except BaseException as error:  # pragma: no cover - the failure this test looks for
            errors.append(error)

    threads = [threading.Thread(target=setup) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    try:
        ask_openai(client)
        assert errors == []
        assert len(seen.spans()) == 1, "one span per call: the SDK was wrapped once"
    finally:
        teardown = [
            threading.Thread(target=otel_aitrack.AITrackInstrumentor().uninstrument) for _ in range(4)
        ]
        for thread in teardown:
            thread.start()
        for thread in teardown:
            thread.join()
        otel_aitrack.reset_stats()
    ask_openai(client)
    assert len(seen.spans()) == 1, "uninstrumented: no span"


def test_counting_goes_on_after_uninstrument_and_instrument_on_the_same_meter_provider(
    fake: FakeOpenAI,
) -> None:
    seen = Telemetry()
    instrumentor = otel_aitrack.AITrackInstrumentor()
    client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    providers = {"tracer_provider": seen.tracer_provider, "meter_provider": seen.meter_provider}
    otel_aitrack.reset_stats()
    try:
        for round_number in range(1, 4):
            instrumentor.instrument(**providers)
            with otel_aitrack.track("repeated"):
                ask_openai(client)
                ask_openai(client, "server_error")
            calls = sum(
                point.value
                for point in seen.points(names.METRIC_CALLS)
                if point.attributes[names.GEN_AI_PROMPT_NAME] == "repeated"
            )
            durations = sum(
                point.count
                for point in seen.points(names.METRIC_OPERATION_DURATION)
                if point.attributes[names.GEN_AI_PROMPT_NAME] == "repeated"
            )
            consecutive = seen.value(names.METRIC_CONSECUTIVE_FAILURES, gen_ai__prompt__name="repeated")
            assert (calls, durations, consecutive) == (2 * round_number, 2 * round_number, 1)
            instrumentor.uninstrument()
    finally:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        otel_aitrack.reset_stats()


# --- keywords ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keywords", "error", "named"),
    [
        ({"traceback_max_lenght": 4096}, TypeError, "did you mean 'traceback_max_length'"),
        ({"tracebacks": True}, TypeError, "'tracebacks'"),
        ({"traceback_max_length": "4096"}, TypeError, "traceback_max_length"),
        ({"message_max_length": 2.5}, TypeError, "message_max_length"),
        ({"max_prompt_types": True}, TypeError, "max_prompt_types"),
        ({"message_max_length": 0}, ValueError, "message_max_length"),
        ({"traceback_max_length": 100}, ValueError, "at least 256"),
        ({"capture_content": 42}, TypeError, "capture_content"),
        ({"capture_content": "sometimes"}, ValueError, "SPAN_AND_EVENT"),
        ({"redact_patterns": ["ok-\\d+", "broken["]}, ValueError, "'broken\\['"),
        ({"redact_patterns": [1, 2]}, TypeError, "redact_patterns"),
        ({"provider_names": 42}, TypeError, "provider_names"),
    ],
)
def test_a_wrong_keyword_is_refused_at_instrument_naming_it(
    keywords: dict[str, Any], error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=named):
        otel_aitrack.AITrackInstrumentor().instrument(**keywords)
    assert not otel_aitrack.AITrackInstrumentor().is_instrumented_by_opentelemetry


def test_a_wrong_keyword_is_refused_also_when_already_instrumented(telemetry: Telemetry) -> None:
    with pytest.raises(TypeError, match="content_max_lenght"):
        otel_aitrack.AITrackInstrumentor().instrument(content_max_lenght=10)


def test_the_instrumentors_own_keywords_are_accepted(fake: FakeOpenAI) -> None:
    with instrumented(skip_dep_check=True, raise_exception_on_conflict=False) as seen:
        ask_openai(openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0))
        assert len(seen.spans()) == 1


# --- environment values -------------------------------------------------------------------------------

BAD_VALUES = {
    "OTEL_AITRACK_TRACEBACK_MAX_LENGTH": ("lots", "traceback_max_length", 8192),
    "OTEL_AITRACK_MESSAGE_MAX_LENGTH": ("-3", "message_max_length", 1024),
    "OTEL_AITRACK_CONTENT_MAX_LENGTH": ("1e4", "content_max_length", 16384),
    "OTEL_AITRACK_MAX_PROMPT_TYPES": ("0", "max_prompt_types", 100),
    "OTEL_AITRACK_REDACT_PATTERNS": ('["ok-\\\\d+", "broken["]', "redact_patterns", ("ok-\\d+",)),
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": ("maybe", "capture_content", NO_CONTENT),
}


@pytest.mark.parametrize("variable", sorted(BAD_VALUES))
def test_a_bad_environment_value_is_one_warning_naming_it_then_the_default(
    variable: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    value, field, fallback = BAD_VALUES[variable]
    monkeypatch.setenv(variable, value)
    with caplog.at_level(logging.WARNING, logger="otel_aitrack"):
        settings = load_settings()
    assert getattr(settings, field) == fallback
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert variable in warnings[0].getMessage()
    assert repr(value) in warnings[0].getMessage()


APP = textwrap.dedent(
    """
    import openai, sys
    client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-proj-envcheckKEY1234567890", max_retries=0)
    for model in ["gpt-4o-mini"] * 9 + ["server_error"] * 3:
        try:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        except openai.APIStatusError:
            pass
    print("app done")
    """
)


def _run(command: list[str], app: Path, fake: FakeOpenAI, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, sys.executable, str(app), fake.base_url],
        env={**os.environ, "OTEL_AITRACK_STRICT": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_bad_regex_in_the_environment_leaves_the_app_instrumented_under_opentelemetry_instrument(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    instrument = str(Path(sys.executable).with_name("opentelemetry-instrument"))
    done = _run(
        [instrument],
        app,
        fake,
        OTEL_AITRACK_REDACT_PATTERNS="broken[",
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="httpx,openai",
    )
    assert done.returncode == 0, done.stderr
    assert "app done" in done.stdout
    assert done.stderr.count("OTEL_AITRACK_REDACT_PATTERNS") == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.count('"name": "chat gpt-4o-mini"') == 9
    assert done.stdout.count('"error.type": "InternalServerError"') == 3


def test_a_bad_regex_in_the_environment_leaves_otel_aitrack_run_counting_the_calls(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    pytest.importorskip("rich")
    app = tmp_path / "app.py"
    app.write_text(APP)
    command = str(Path(sys.executable).with_name("otel-aitrack"))
    done = _run([command, "run", "--"], app, fake, OTEL_AITRACK_REDACT_PATTERNS="broken[")
    assert done.returncode == 0, done.stderr
    assert "no AI calls" not in done.stderr
    assert "untracked" in done.stderr and "12" in done.stderr, done.stderr
    assert "OTEL_AITRACK_REDACT_PATTERNS" in done.stderr


# --- exact bounds and track() values ------------------------------------------------------------------


def test_a_bounded_message_is_never_longer_than_its_bound(fake: FakeOpenAI) -> None:
    fake.reset()
    fake.plan("not_found", "rate_limit")
    with instrumented(message_max_length=20) as seen:
        client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
        ask_openai(client, "gpt-5-nano-x")
        ask_openai(client)
        for span in seen.spans():
            message = attrs(span)[names.AITRACK_ERROR_MESSAGE]
            assert len(message) <= 20, message
            assert len(span.status.description or "") <= 20
        assert len(otel_aitrack.stats()["untracked"].last_error_message or "") <= 20


@pytest.mark.parametrize("limit", [256, 300, 512, 777, 1024, 2048, 4096])
def test_a_traceback_is_never_longer_than_its_bound_and_cut_at_whole_frames(
    fake: FakeOpenAI, limit: int
) -> None:
    fake.reset()
    fake.plan("not_found")

    def nested(depth: int, client: openai.OpenAI) -> None:
        if depth:
            return nested(depth - 1, client)
        return ask_openai(client, "gpt-5-nano-x")

    with instrumented(traceback_max_length=limit) as seen:
        nested(30, openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0))
        stack = attrs(seen.span())[names.AITRACK_ERROR_TRACEBACK]
    assert len(stack) <= limit
    assert stack.startswith("Traceback (most recent call last):\n")
    lines = stack.splitlines()
    for index, line in enumerate(lines):
        if line.startswith('  File "'):
            assert line.endswith(tuple(f"in {name}" for name in _function_names(line))), line
            assert index + 1 < len(lines), "a frame's line is followed by its source or the next part"
    assert "omitted by otel-aitrack" in stack or limit >= 4096


def _function_names(line: str) -> list[str]:
    return [line.rsplit(", in ", 1)[-1]]


def test_track_values_are_bounded(fake: FakeOpenAI) -> None:
    with instrumented() as seen:
        client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
        with otel_aitrack.track("p" * 10_000, task="t" * 10_000, user="u" * 10_000):
            ask_openai(client)
        span = attrs(seen.span())
        assert span[names.GEN_AI_PROMPT_NAME] == "p" * labels.PROMPT_TYPE_MAX_LENGTH
        assert span[names.AITRACK_TASK] == "t" * labels.TASK_MAX_LENGTH
        assert span[names.USER_ID] == "u" * labels.USER_MAX_LENGTH
        assert set(otel_aitrack.stats()) == {"p" * labels.PROMPT_TYPE_MAX_LENGTH}


def test_a_prompt_type_or_model_that_looks_like_a_secret_is_redacted(fake: FakeOpenAI) -> None:
    secret = "sk-proj-PROMPTTYPElooksLIKEaKEY1234567890"
    with instrumented() as seen:
        client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
        with otel_aitrack.track(secret, user=f"token={secret}"):
            ask_openai(client, model=secret)
        span = seen.span()
        assert secret not in span.to_json()
        assert attrs(span)[names.GEN_AI_PROMPT_NAME] == REDACTED
        assert span.name == f"chat {REDACTED}"
        assert list(otel_aitrack.stats()) == [REDACTED]
        exported = [dict(point.attributes) for point in seen.points(names.METRIC_CALLS)]
        assert secret not in repr(exported)
