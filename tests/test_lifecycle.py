"""instrument → call → uninstrument → call (no span) → instrument twice (one span); exact restore."""

from __future__ import annotations

import openai
import openai.resources.chat.completions as chat
from openai._base_client import BaseClient

import otel_aitrack
from tests.conftest import API_KEY, Telemetry
from tests.fakes.openai_server import FakeOpenAI

MESSAGES = [{"role": "user", "content": "hi"}]


def test_uninstrument_restores_the_sdk_exactly_and_instrument_twice_is_one_span(fake: FakeOpenAI) -> None:
    originals = (chat.Completions.create, chat.AsyncCompletions.create, BaseClient._build_request)
    seen = Telemetry()
    instrumentor = otel_aitrack.AITrackInstrumentor()
    client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    try:
        instrumentor.instrument(tracer_provider=seen.tracer_provider, meter_provider=seen.meter_provider)
        assert chat.Completions.create is not originals[0]
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert len(seen.spans()) == 1

        instrumentor.uninstrument()
        assert (chat.Completions.create, chat.AsyncCompletions.create, BaseClient._build_request) == originals
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert len(seen.spans()) == 1

        instrumentor.instrument(tracer_provider=seen.tracer_provider, meter_provider=seen.meter_provider)
        instrumentor.instrument(tracer_provider=seen.tracer_provider, meter_provider=seen.meter_provider)
        otel_aitrack.AITrackInstrumentor().instrument(tracer_provider=seen.tracer_provider)
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert len(seen.spans()) == 2
    finally:
        instrumentor.uninstrument()
        otel_aitrack.reset_stats()
    assert chat.Completions.create is originals[0]


def test_an_absent_sdk_is_skipped_quietly() -> None:
    from otel_aitrack.patch import _wrap

    assert _wrap("no_such_provider_sdk.resources", "Client.create", lambda *a: None) is False
    assert _wrap("openai.resources.chat.completions", "Completions.no_such_method", lambda *a: None) is False


def test_the_loader_finds_the_entry_point_named_aitrack() -> None:
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.name == "aitrack"]
    assert len(found) == 1
    assert found[0].load() is otel_aitrack.AITrackInstrumentor
