"""Loading: an absent SDK is skipped, the entry point is found. (instrument → call → uninstrument → call,
for every provider: tests/conformance/test_identity.py.)"""

from __future__ import annotations

import otel_aitrack


def test_an_absent_sdk_is_skipped_quietly() -> None:
    from otel_aitrack.patch import _wrap

    assert _wrap("no_such_provider_sdk.resources", "Client.create", lambda *a: None) is False
    assert _wrap("openai.resources.chat.completions", "Completions.no_such_method", lambda *a: None) is False


def test_the_loader_finds_the_entry_point_named_aitrack() -> None:
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.name == "aitrack"]
    assert len(found) == 1
    assert found[0].load() is otel_aitrack.AITrackInstrumentor
