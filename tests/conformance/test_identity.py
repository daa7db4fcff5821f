"""Never worse than no instrumentation, for every provider: the very result and exception the SDK made,
internal errors swallowed and counted (the call still succeeds), and uninstrument() restoring the SDK."""

from __future__ import annotations

from typing import Any

import pytest

import otel_aitrack
from otel_aitrack import names
from tests.conformance.kit import TEXT, Made, ProviderCase
from tests.conftest import Telemetry


def remember(monkeypatch: pytest.MonkeyPatch, made: Made) -> list[Any]:
    """Wrap the SDK method that makes something; the list gets what it made, in order."""
    seen: list[Any] = []
    original = getattr(made.owner, made.name)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        value = original(self, *args, **kwargs)
        seen.append(made.pick(self, value))
        return value

    monkeypatch.setattr(made.owner, made.name, wrapper)
    return seen


def broken(*args: object, **kwargs: object) -> None:
    raise RuntimeError("instrumentation bug")


def test_the_result_is_the_very_object_the_sdk_returned(
    case: ProviderCase, client: Any, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    returned = remember(monkeypatch, case.result_made_by)
    result = case.call(client)
    assert len(returned) == 1 and returned[0] is result
    assert len(telemetry.spans()) == 1


def test_the_exception_is_the_very_instance_the_sdk_raised(
    case: ProviderCase, provider_fake: Any, client: Any, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = remember(monkeypatch, case.error_made_by)
    provider_fake.plan(case.retried[0])
    with pytest.raises(case.error_base) as raised:
        case.call(client)
    assert made == [raised.value] and made[0] is raised.value
    assert raised.value.__traceback__ is not None


def test_an_internal_error_reading_a_response_is_swallowed_counted_and_the_call_succeeds(
    case: ProviderCase, client: Any, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_AITRACK_STRICT", "0")
    monkeypatch.setattr(case.provider, "response_details", broken)
    monkeypatch.setattr(case.provider, "stream_state", broken)
    returned = remember(monkeypatch, case.result_made_by)
    assert case.call(client) is returned[0]
    errors = telemetry.value(names.METRIC_INSTRUMENTATION_ERRORS, error__type="RuntimeError")
    assert errors == case.internal_errors
    assert len(telemetry.spans()) == 1


def test_an_internal_error_following_a_stream_is_swallowed_counted_and_the_stream_reads_on(
    case: ProviderCase, client: Any, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_AITRACK_STRICT", "0")
    monkeypatch.setattr(case.provider, "stream_state", broken)
    assert case.text_of(case.stream(client)) == TEXT
    assert telemetry.value(names.METRIC_INSTRUMENTATION_ERRORS, error__type="RuntimeError") == 1


def test_uninstrument_restores_the_sdk_exactly_and_instrument_twice_is_one_span(
    case: ProviderCase, provider_fake: Any
) -> None:
    originals = case.patched()
    seen = Telemetry()
    instrumentor = otel_aitrack.AITrackInstrumentor()
    client = case.client(provider_fake.base_url)
    providers = {"tracer_provider": seen.tracer_provider, "meter_provider": seen.meter_provider}
    try:
        instrumentor.instrument(**providers)
        wrapped = [now is not before for now, before in zip(case.patched(), originals, strict=True) if before]
        assert wrapped and all(wrapped)
        case.call(client)
        assert len(seen.spans()) == 1

        instrumentor.uninstrument()
        assert case.patched() == originals
        case.call(client)
        assert len(seen.spans()) == 1, "no span after uninstrument()"

        instrumentor.instrument(**providers)
        instrumentor.instrument(**providers)
        otel_aitrack.AITrackInstrumentor().instrument(tracer_provider=seen.tracer_provider)
        case.stream(client)
        assert len(seen.spans()) == 2
    finally:
        instrumentor.uninstrument()
        otel_aitrack.reset_stats()
    assert case.patched() == originals
