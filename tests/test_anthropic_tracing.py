"""The anthropic SDK traces its own calls: with otel-aitrack on, each instrumented call still has one span.

Our span takes the place of the SDK's call span (`anthropic.messages.create`); the SDK keeps its spans
for every method we do not instrument, and still propagates the trace context, which is now ours.
The fixtures' clients trace into the test's tracer provider, so every Anthropic test counts both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anthropic
import anthropic._base_client as base_client
import pytest
from opentelemetry.sdk.trace import ReadableSpan

import otel_aitrack
from otel_aitrack import names
from tests.conftest import ANTHROPIC_API_KEY, ANTHROPIC_SDK_TRACES, Telemetry
from tests.fakes.anthropic_server import FakeAnthropic
from tests.support import attrs

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "hi"}]
SDK_SCOPE = "com.anthropic.sdk.python"
ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not ANTHROPIC_SDK_TRACES, reason="this anthropic SDK does not trace its calls"
)


def traced_client(
    fake: FakeAnthropic, telemetry: Telemetry, max_retries: int = 0, **open_telemetry: Any
) -> anthropic.Anthropic:
    """A client whose own tracing goes to the test's tracer provider, with more `open_telemetry` options."""
    options = {"tracer_provider": telemetry.tracer_provider, **open_telemetry}
    return anthropic.Anthropic(
        base_url=fake.base_url, api_key=ANTHROPIC_API_KEY, max_retries=max_retries, open_telemetry=options
    )


def traceparent_of(span: ReadableSpan) -> str:
    context = span.context
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-"


def test_the_sdks_own_tracing_is_on_in_these_tests(
    anthropic_client: anthropic.Anthropic, telemetry: Telemetry
) -> None:
    anthropic_client.models.list()
    span = telemetry.span()
    assert span.name == "anthropic.models.list"
    assert span.instrumentation_scope.name == SDK_SCOPE, "a method we do not instrument keeps the SDK's span"


def test_each_instrumented_call_is_one_span_whose_context_the_sdk_propagates(
    anthropic_client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    anthropic_client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    list(anthropic_client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES, stream=True))
    with anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as stream:
        stream.until_done()
    anthropic_client.messages.count_tokens(model=MODEL, messages=MESSAGES)
    anthropic_fake.plan("not_found")
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.beta.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    spans = telemetry.spans()
    assert [span.instrumentation_scope.name for span in spans] == ["otel_aitrack"] * 5
    chat, count = "chat claude-haiku-4-5", "count_tokens claude-haiku-4-5"
    assert [span.name for span in spans] == [chat, chat, chat, count, chat]
    sent = [request.headers.get("traceparent", "") for request in anthropic_fake.requests]
    assert [header[:-2] for header in sent] == [traceparent_of(span) for span in spans]


def test_sdk_retries_carry_our_trace_context_too(anthropic_fake: FakeAnthropic, telemetry: Telemetry) -> None:
    client = traced_client(anthropic_fake, telemetry, max_retries=1)
    anthropic_fake.reset()
    anthropic_fake.plan("overloaded", "ok")
    client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    span = telemetry.span()
    assert attrs(span)[names.HTTP_REQUEST_RESEND_COUNT] == 1
    assert [r.headers["traceparent"][:-2] for r in anthropic_fake.requests] == [traceparent_of(span)] * 2


def test_our_span_is_a_child_of_the_applications_span(
    anthropic_client: anthropic.Anthropic, telemetry: Telemetry
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle ticket") as parent:
        anthropic_client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    ours, app = telemetry.spans()
    assert ours.parent is not None and ours.parent.span_id == parent.get_span_context().span_id
    assert app.name == "handle ticket"


def test_after_uninstrument_the_sdks_own_span_is_back(
    anthropic_client: anthropic.Anthropic, telemetry: Telemetry
) -> None:
    original = base_client.start_api_call_span
    otel_aitrack.AITrackInstrumentor().uninstrument()
    assert not hasattr(base_client.start_api_call_span, "__wrapped__")
    assert original is not base_client.start_api_call_span
    anthropic_client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    span = telemetry.span()
    assert (span.name, span.instrumentation_scope.name) == ("anthropic.messages.create", SDK_SCOPE)


@pytest.mark.parametrize("off", ["tracing by environment", "propagation"])
def test_sdk_tracing_or_propagation_off_leaves_our_span_and_sends_no_trace_context(
    anthropic_fake: FakeAnthropic, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch, off: str
) -> None:
    if off == "propagation":
        client = traced_client(anthropic_fake, telemetry, propagation=False)
    else:
        monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")
        client = anthropic.Anthropic(
            base_url=anthropic_fake.base_url, api_key=ANTHROPIC_API_KEY, max_retries=0
        )
    anthropic_fake.reset()
    client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    assert telemetry.span().instrumentation_scope.name == "otel_aitrack"
    assert "traceparent" not in anthropic_fake.requests[0].headers


def test_the_conversation_id_given_to_the_sdk_is_on_our_span(
    anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    client = traced_client(anthropic_fake, telemetry, conversation_id="conv_123")
    anthropic_fake.reset()
    client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    client.beta.messages.count_tokens(model=MODEL, messages=MESSAGES)
    spans = telemetry.spans()
    assert [span.instrumentation_scope.name for span in spans] == ["otel_aitrack"] * 2
    assert [attrs(span).get(names.GEN_AI_CONVERSATION_ID) for span in spans] == ["conv_123"] * 2


def test_sdk_methods_called_by_a_tool_during_another_providers_call_keep_their_spans(
    anthropic_fake: FakeAnthropic, telemetry: Telemetry
) -> None:
    """A Google call runs the application's tool (automatic function calling); the tool's Anthropic calls
    are their own: `models.list` keeps the SDK's span, `messages.create` is ours, both children of it."""
    from google import genai
    from google.genai import types

    from tests.fakes.google_server import API_KEY as GOOGLE_KEY
    from tests.fakes.google_server import FakeGoogle

    client = traced_client(anthropic_fake, telemetry)

    def pick_model(ticket_id: int) -> str:
        """Picks a model for a ticket."""
        chosen = next(iter(client.models.list())).id
        client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
        return chosen

    pick_model.__annotations__ = {"ticket_id": int, "return": str}  # google-genai 1.x reads types
    with FakeGoogle() as google_fake:
        google_fake.plan("function_call", "ok")
        google = genai.Client(
            api_key=GOOGLE_KEY, http_options=types.HttpOptions(base_url=google_fake.base_url)
        )
        google.models.generate_content(
            model="gemini-2.5-flash", contents="Pick", config=types.GenerateContentConfig(tools=[pick_model])
        )
    spans = {span.name: span for span in telemetry.spans()}
    assert sorted(spans) == [
        "anthropic.models.list",
        "chat claude-haiku-4-5",
        "generate_content gemini-2.5-flash",
    ]
    assert spans["anthropic.models.list"].instrumentation_scope.name == SDK_SCOPE
    google_span = spans["generate_content gemini-2.5-flash"]
    for name in ("anthropic.models.list", "chat claude-haiku-4-5"):
        parent = spans[name].parent
        assert parent is not None and parent.span_id == google_span.context.span_id, name


# The SDK at its defaults: no `open_telemetry` option, no ANTHROPIC_OPEN_TELEMETRY* variable, spans to
# the global tracer provider. A global provider can be set once per process, hence the subprocess.
APP = textwrap.dedent(
    """
    import json, sys
    import anthropic
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from otel_aitrack import AITrackInstrumentor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    client = anthropic.Anthropic(base_url=sys.argv[1], api_key="sk-ant-api03-subprocessKEY", max_retries=0)
    kwargs = dict(model="claude-haiku-4-5", max_tokens=256, messages=[{"role": "user", "content": "hi"}])

    def calls():
        client.messages.create(**kwargs)
        list(client.messages.create(**kwargs, stream=True))
        with client.messages.stream(**kwargs) as stream:
            stream.until_done()
        client.messages.count_tokens(model=kwargs["model"], messages=kwargs["messages"])
        try:
            client.beta.messages.create(**{**kwargs, "model": "overloaded"})
        except anthropic.OverloadedError:
            pass
        client.models.list()

    def finished():
        spans = [
            {
                "name": s.name,
                "scope": s.instrumentation_scope.name,
                "traceparent": f"00-{s.context.trace_id:032x}-{s.context.span_id:016x}-",
            }
            for s in exporter.get_finished_spans()
        ]
        exporter.clear()
        return spans

    calls()
    alone = finished()
    AITrackInstrumentor().instrument()
    calls()
    print(json.dumps({"alone": alone, "instrumented": finished()}))
    """
)


def test_with_the_sdks_tracing_at_its_defaults_each_call_has_one_span(
    anthropic_fake: FakeAnthropic, tmp_path: Path
) -> None:
    anthropic_fake.reset()
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANTHROPIC_")}
    env["OTEL_AITRACK_STRICT"] = "1"
    done = subprocess.run(
        [sys.executable, str(app), anthropic_fake.base_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    spans = json.loads(done.stdout.strip().splitlines()[-1])
    sdk_calls = ["anthropic.messages.create"] * 3 + [
        "anthropic.messages.count_tokens",
        "anthropic.messages.create",
    ]
    assert [(s["name"], s["scope"]) for s in spans["alone"]] == [
        *((name, SDK_SCOPE) for name in sdk_calls),
        ("anthropic.models.list", SDK_SCOPE),
    ], "the SDK traces every call by default"
    ours = ["chat claude-haiku-4-5"] * 3 + ["count_tokens claude-haiku-4-5", "chat overloaded"]
    assert [(s["name"], s["scope"]) for s in spans["instrumented"]] == [
        *((name, "otel_aitrack") for name in ours),
        ("anthropic.models.list", SDK_SCOPE),
    ], "one span per instrumented call; the SDK's own for the others"
    sent = [request.headers["traceparent"][:-2] for request in anthropic_fake.requests[6:]]
    assert sent == [s["traceparent"] for s in spans["instrumented"]]
