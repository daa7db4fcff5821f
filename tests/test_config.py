"""Settings from OTEL_AITRACK_* env vars, overridden by instrument() keyword arguments."""

from __future__ import annotations

import pytest

from otel_aitrack.config import load_settings, parse_patterns


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OTEL_AITRACK_TRACEBACK_MAX_LENGTH",
        "OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.traceback_max_length, settings.message_max_length, settings.max_prompt_types) == (
        8192,
        1024,
        100,
    )
    assert settings.exception_as_span_event and not settings.exception_as_log
    assert not settings.capture_content


def test_env_vars_are_read_and_keywords_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_AITRACK_TRACEBACK_MAX_LENGTH", "2000")
    monkeypatch.setenv("OTEL_AITRACK_MESSAGE_MAX_LENGTH", "300")
    monkeypatch.setenv("OTEL_AITRACK_MAX_PROMPT_TYPES", "7")
    monkeypatch.setenv("OTEL_AITRACK_REDACT_PATTERNS", '["acct-\\\\d+", "pin=\\\\d{4}"]')
    settings = load_settings({"message_max_length": 99, "tracer_provider": object()})
    assert settings.traceback_max_length == 2000
    assert settings.message_max_length == 99
    assert settings.max_prompt_types == 7
    assert settings.redact_patterns == ("acct-\\d+", "pin=\\d{4}")
    assert not hasattr(settings, "tracer_provider")


def test_bad_numbers_fall_back_to_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_AITRACK_TRACEBACK_MAX_LENGTH", "lots")
    monkeypatch.setenv("OTEL_AITRACK_MAX_PROMPT_TYPES", "-3")
    settings = load_settings()
    assert settings.traceback_max_length == 8192
    assert settings.max_prompt_types == 100


@pytest.mark.parametrize(
    ("value", "span_event", "log"), [("logs", False, True), ("logs/dup", True, True), ("", True, False)]
)
def test_exception_signal_opt_in(
    monkeypatch: pytest.MonkeyPatch, value: str, span_event: bool, log: bool
) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN", value)
    settings = load_settings()
    assert (settings.exception_as_span_event, settings.exception_as_log) == (span_event, log)


def test_a_bare_regex_is_one_pattern() -> None:
    assert parse_patterns("acct-[0-9]{2,5}") == ("acct-[0-9]{2,5}",)
    assert parse_patterns("") == ()


def test_a_single_keyword_pattern_string_is_one_pattern() -> None:
    assert load_settings({"redact_patterns": "pin=\\d+"}).redact_patterns == ("pin=\\d+",)


def test_provider_names_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_AITRACK_PROVIDER_NAMES", " llm.internal:8000=vllm , Ollama.LAN=ollama,,")
    assert load_settings().provider_names == (("llm.internal:8000", "vllm"), ("ollama.lan", "ollama"))


def test_provider_names_keyword_wins_in_any_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_AITRACK_PROVIDER_NAMES", "llm.internal=vllm")
    assert load_settings({"provider_names": {"gpu.lan": "tgi"}}).provider_names == (("gpu.lan", "tgi"),)
    assert load_settings({"provider_names": [("a.lan", "x")]}).provider_names == (("a.lan", "x"),)
    assert load_settings({"provider_names": "b.lan=y"}).provider_names == (("b.lan", "y"),)
    assert load_settings({"provider_names": {}}).provider_names == ()


def test_incomplete_provider_names_entries_are_dropped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_AITRACK_PROVIDER_NAMES", "no-equals-sign,=vllm,llm.lan=,ok.lan=ok")
    assert load_settings().provider_names == (("ok.lan", "ok"),)
    assert len(caplog.records) == 3
