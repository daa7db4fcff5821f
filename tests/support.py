"""Small helpers shared by the tests (not fixtures)."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

try:  # renamed in newer SDKs
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter as InMemoryLogExporter
except ImportError:  # pragma: no cover
    from opentelemetry.sdk._logs.export import InMemoryLogExporter  # type: ignore[no-redef]

__all__ = ["InMemoryLogExporter", "add_log_processor", "attrs", "event"]


def add_log_processor(provider: LoggerProvider, exporter: Any) -> None:
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def event(span: Any, name: str) -> dict[str, Any]:
    found = [e for e in span.events if e.name == name]
    assert len(found) == 1, [e.name for e in span.events]
    return dict(found[0].attributes or {})
