"""The GenAI semantic conventions, asserted for every provider: names, streams, errors, tokens, content.

The names come from opentelemetry-semantic-conventions (otel_aitrack.names imports them).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

import otel_aitrack
from otel_aitrack import names
from otel_aitrack.genai import TOKEN_ATTRIBUTES
from tests.conformance.kit import ProviderCase
from tests.conftest import Telemetry, instrumented
from tests.support import attrs


def quietly(run: Any, *args: Any) -> Any:
    """Run a call the fake makes fail; the test reads the telemetry, not the exception."""
    with contextlib.suppress(Exception):
        return run(*args)
    return None


def one_span(seen: Telemetry) -> Any:
    spans = [span for span in seen.spans() if names.GEN_AI_PROMPT_NAME in (span.attributes or {})]
    assert len(spans) == 1, [span.name for span in seen.spans()]
    return spans[0]


def test_a_call_has_the_conventions_attributes_and_token_details(
    case: ProviderCase, provider_fake: Any
) -> None:
    with instrumented() as seen:
        case.call(case.client(provider_fake.base_url))
        span = attrs(one_span(seen))
    assert span[names.GEN_AI_PROVIDER_NAME] == case.provider_name
    assert span[names.GEN_AI_OPERATION_NAME] == case.operation
    assert span[names.GEN_AI_REQUEST_MODEL] == case.model
    assert names.GEN_AI_REQUEST_STREAM not in span
    assert names.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK not in span
    reported = {key: span[name] for key, name in TOKEN_ATTRIBUTES.items() if name in span}
    assert reported == case.tokens


def test_a_stream_has_its_flag_its_time_to_first_chunk_and_its_chunk_metrics(
    case: ProviderCase, provider_fake: Any
) -> None:
    with instrumented() as seen:
        chunks = case.stream(case.client(provider_fake.base_url))
        span = one_span(seen)
        first = seen.points(names.METRIC_TIME_TO_FIRST_CHUNK)
        per_chunk = seen.points(names.METRIC_TIME_PER_OUTPUT_CHUNK)
        duration = seen.value(names.METRIC_OPERATION_DURATION, gen_ai__provider__name=case.provider_name)
    attributes = attrs(span)
    assert attributes[names.GEN_AI_REQUEST_STREAM] is True
    ttfc = attributes[names.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    assert 0 < ttfc <= (span.end_time - span.start_time) / 1e9
    assert duration == 1
    assert [point.count for point in first] == [1]
    assert first[0].sum == pytest.approx(ttfc)
    assert [point.count for point in per_chunk] == [len(chunks) - 1]
    # The duration histogram's attributes, but for what only the end of the call knows.
    expected = {
        names.GEN_AI_PROMPT_NAME: "untracked",
        names.GEN_AI_PROVIDER_NAME: case.provider_name,
        names.GEN_AI_OPERATION_NAME: case.operation,
        names.GEN_AI_REQUEST_MODEL: case.model,
        names.SERVER_ADDRESS: "127.0.0.1",
        names.SERVER_PORT: provider_fake.port,
    }
    assert dict(first[0].attributes) == expected == dict(per_chunk[0].attributes)


@pytest.mark.parametrize("scenario", ["stream_error", "stream_truncated"])
def test_a_failed_or_cut_stream_ends_its_finish_reasons_with_error(
    case: ProviderCase, provider_fake: Any, scenario: str
) -> None:
    provider_fake.plan(getattr(case, scenario))
    with instrumented() as seen:
        quietly(case.stream, case.client(provider_fake.base_url))
        span = one_span(seen)
    assert span.status.status_code is StatusCode.ERROR
    reasons = list(attrs(span)[names.GEN_AI_RESPONSE_FINISH_REASONS])
    assert reasons[-1] == "error"
    assert reasons.count("error") == 1


def test_a_failure_status_is_the_message_alone_and_the_event_has_no_escaped(
    case: ProviderCase, provider_fake: Any
) -> None:
    provider_fake.plan(case.not_found)
    with instrumented() as seen:
        quietly(case.call, case.client(provider_fake.base_url))
        span = one_span(seen)
    message = attrs(span)[names.AITRACK_ERROR_MESSAGE]
    assert attrs(span)[names.ERROR_TYPE] == case.error(case.not_found).expected_type
    assert span.status.description == message
    assert not message.startswith(case.error(case.not_found).expected_type)
    (event,) = span.events
    assert event.name == names.EXCEPTION_EVENT
    assert set(event.attributes) == {
        names.EXCEPTION_TYPE,
        names.EXCEPTION_MESSAGE,
        names.EXCEPTION_STACKTRACE,
    }


@pytest.mark.parametrize("signal", ["logs", "logs/dup"])
def test_the_exception_as_a_log_record_is_the_genai_exception_event_at_warn(
    case: ProviderCase, provider_fake: Any, monkeypatch: pytest.MonkeyPatch, signal: str
) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN", signal)
    provider_fake.plan(case.not_found)
    with instrumented() as seen, otel_aitrack.track("summarize_ticket"):
        quietly(case.call, case.client(provider_fake.base_url))
        span = one_span(seen)
        records = [data.log_record for data in seen.logs_exporter.get_finished_logs()]
    (record,) = records
    assert record.event_name == names.EVENT_OPERATION_EXCEPTION
    assert record.severity_number.name == "WARN"
    assert record.attributes[names.ERROR_TYPE] == case.error(case.not_found).expected_type
    assert record.attributes[names.GEN_AI_PROVIDER_NAME] == case.provider_name
    assert record.attributes[names.GEN_AI_PROMPT_NAME] == "summarize_ticket"
    assert record.attributes[names.EXCEPTION_STACKTRACE].startswith("Traceback (most recent call last):")
    assert record.span_id == span.context.span_id
    assert [event.name for event in span.events] == ([] if signal == "logs" else [names.EXCEPTION_EVENT])


CONTENT_MODES = {
    "NO_CONTENT": (False, False),
    "SPAN_ONLY": (True, False),
    "EVENT_ONLY": (False, True),
    "SPAN_AND_EVENT": (True, True),
    "true": (True, False),
    "false": (False, False),
}


@pytest.mark.parametrize("mode", sorted(CONTENT_MODES))
def test_content_goes_where_the_mode_says(
    case: ProviderCase, provider_fake: Any, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", mode)
    on_span, as_event = CONTENT_MODES[mode]
    captured = on_span and case.captures_content
    with instrumented() as seen:
        case.call(case.client(provider_fake.base_url), "Be terse.")
        span = attrs(one_span(seen))
        records = [data.log_record for data in seen.logs_exporter.get_finished_logs()]
    content = (names.GEN_AI_INPUT_MESSAGES, names.GEN_AI_SYSTEM_INSTRUCTIONS, names.GEN_AI_OUTPUT_MESSAGES)
    assert [name in span for name in content] == [captured] * 3
    details = [record for record in records if record.event_name == names.EVENT_INFERENCE_DETAILS]
    assert len(details) == int(as_event)
    if as_event and not case.captures_content:
        assert names.GEN_AI_INPUT_MESSAGES not in details[0].attributes
        assert names.GEN_AI_OUTPUT_MESSAGES not in details[0].attributes
    elif as_event:
        event = details[0].attributes
        assert event[names.GEN_AI_PROVIDER_NAME] == case.provider_name
        assert isinstance(event[names.GEN_AI_INPUT_MESSAGES], tuple), "structured, not JSON text"
        assert "Summarize ticket #42" in json.dumps(_plain(event[names.GEN_AI_INPUT_MESSAGES]))
        assert _plain(event[names.GEN_AI_OUTPUT_MESSAGES])[0]["role"] == "assistant"


def _plain(value: Any) -> Any:
    """An SDK log attribute (tuples and mapping proxies) as plain JSON values."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if hasattr(value, "items"):
        return {key: _plain(item) for key, item in value.items()}
    return value
