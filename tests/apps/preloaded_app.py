"""A WSGI app as a production team would run it under `gunicorn --preload` (tests/test_forks.py).

The master imports it once: the OTel SDK and otel-aitrack are set up here, and the master makes AI calls
of its own (prompt type `preload`) before it forks the workers. Each worker then serves `/ok` and
`/fail` with a call under its own prompt type, `worker-<pid>`, and `/stats` with its figures (those
of `stats()`, and what `aitrack.calls` counts).
Configured by the environment: FAKE_OPENAI_URL, OTEL_EXPORTER_OTLP_ENDPOINT.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import openai
import requests
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import otel_aitrack
from otel_aitrack import runtime

# The exporters' HTTP sessions: a connection the master opened must not be shared by the workers
# (the application's concern, not otel-aitrack's: each process closes the pool it inherited).
_SESSIONS = [requests.Session(), requests.Session()]
os.register_at_fork(after_in_child=lambda: [session.close() for session in _SESSIONS])

tracer_provider = TracerProvider()
tracer_provider.add_span_processor(
    BatchSpanProcessor(OTLPSpanExporter(session=_SESSIONS[0]), schedule_delay_millis=200)
)
# No periodic collection: a lock the SDK's reader holds while it collects would stay held in a worker
# forked at that instant (the SDK's, see docs/telemetry.md "Guarantees"). Each worker exports after
# every request instead, from the request's thread.
meter_provider = MeterProvider(
    metric_readers=[
        PeriodicExportingMetricReader(
            OTLPMetricExporter(session=_SESSIONS[1]), export_interval_millis=3_600_000
        )
    ]
)
otel_aitrack.AITrackInstrumentor().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)

BASE_URL = os.environ["FAKE_OPENAI_URL"]


def _ask(model: str) -> None:
    client = openai.OpenAI(base_url=BASE_URL, api_key="sk-proj-preloadTEST1234567890", max_retries=0)
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    except openai.APIError:
        pass
    finally:
        client.close()


with otel_aitrack.track("preload"):
    for _model in ("gpt-4o-mini", "server_error", "server_error"):
        _ask(_model)


def _figures() -> dict[str, dict[str, int]]:
    return {
        prompt_type: {
            "total_calls": stats.total_calls,
            "total_failed_calls": stats.total_failed_calls,
            "consecutive_failures": stats.consecutive_failures,
        }
        for prompt_type, stats in otel_aitrack.stats().items()
    }


def _counted() -> dict[str, int]:
    """What `aitrack.calls` observes at the next collection in this process, by prompt type."""
    current = runtime.active()
    counted: dict[str, int] = {}
    for observation in current.instruments._observe_calls(None) if current else ():  # type: ignore[arg-type]
        prompt_type = str((observation.attributes or {})["gen_ai.prompt.name"])
        counted[prompt_type] = counted.get(prompt_type, 0) + int(observation.value)
    return counted


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path in ("/ok", "/fail"):
        with otel_aitrack.track(f"worker-{os.getpid()}"):
            _ask("gpt-4o-mini" if path == "/ok" else "server_error")
        meter_provider.force_flush()
    body = json.dumps({"pid": os.getpid(), "stats": _figures(), "counted": _counted()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
