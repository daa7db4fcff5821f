"""Quick start: see otel-aitrack record failures, with no services and no API key.

Starts the test suite's fake OpenAI server on 127.0.0.1, instruments the real openai SDK, makes a few
calls under two prompt types (some fail the way OpenAI fails), then prints the spans' failure
attributes and `otel_aitrack.stats()`.

    python docs/examples/quickstart.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import openai  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

import otel_aitrack  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402

MESSAGES = [{"role": "user", "content": "Summarize ticket #42"}]


def summarize_ticket(client: openai.OpenAI) -> None:
    with otel_aitrack.track("summarize_ticket", task="summarize a support ticket", user="agent-7"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def main() -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    otel_aitrack.AITrackInstrumentor().instrument(tracer_provider=provider)
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-proj-quickstart0123456789", max_retries=0)
        fake.plan("ok", "rate_limit", "ok", "not_found", "ok")
        for _ in range(5):
            try:
                summarize_ticket(client)
            except openai.APIStatusError as error:
                print(f"the app saw {type(error).__name__} (status {error.status_code}), as it would without us")
        fake.plan("unauthorized")
        try:
            with otel_aitrack.track("classify_email"):
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        except openai.AuthenticationError:
            pass
    print("\nfailed spans:")
    for span in spans.get_finished_spans():
        a = dict(span.attributes or {})
        if "error.type" in a:
            print(f"  {span.name:<18} {a['gen_ai.prompt.name']:<17} {a['error.type']:<20} "
                  f"{a.get('http.response.status_code')} {a.get('aitrack.error.provider_code'):<22} "
                  f"{a.get('aitrack.request.id')}")
    print("\notel_aitrack.stats():")
    for name, stats in otel_aitrack.stats().items():
        print(f"  {name:<17} calls={stats.total_calls} failed={stats.total_failed_calls} "
              f"rate={stats.failure_rate}% consecutive={stats.consecutive_failures} last={stats.last_error_code}")
    print("\nlast traceback of summarize_ticket (redacted, bounded):\n")
    print(otel_aitrack.stats()["summarize_ticket"].last_error_traceback)
    print("redacted message of classify_email:", otel_aitrack.stats()["classify_email"].last_error_message)


if __name__ == "__main__":
    main()
