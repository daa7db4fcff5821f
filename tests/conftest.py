"""Fixtures: fake providers → OTel SDK with in-memory exporters → instrumented real SDK clients.

`OTEL_AITRACK_STRICT=1` makes the instrumentation's internal errors re-raise during this test run,
so that a bug cannot hide behind the guard that protects users.
"""

from __future__ import annotations

import os

os.environ.setdefault("OTEL_AITRACK_STRICT", "1")
# boto3 reads ~/.aws and asks the instance metadata service for whatever a client is not given: never here.
os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_RETRY_MODE", None)
os.environ.pop("AWS_MAX_ATTEMPTS", None)

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import anthropic
import boto3
import botocore.endpoint
import botocore.session
import hypothesis
import openai
import pytest
from botocore.config import Config
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_aitrack
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.bedrock_server import CACHE_READ_TOKENS, INPUT_TOKENS, FakeBedrock
from tests.fakes.google_server import FakeGoogle
from tests.fakes.openai_server import FakeOpenAI
from tests.support import InMemoryLogExporter, add_log_processor

# Property-based tests stay a few seconds in the fast suite; HYPOTHESIS_PROFILE=thorough tries more.
# No deadline: the machine is shared and noisy, and a slow example is not a failure.
hypothesis.settings.register_profile("fast", max_examples=25, deadline=None)
hypothesis.settings.register_profile("thorough", max_examples=500, deadline=None)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

API_KEY = "sk-proj-TESTKEY1234567890abcdefSECRET"
ANTHROPIC_API_KEY = "sk-ant-api03-TESTKEY1234567890abcdefSECRET"


class Telemetry:
    """What the instrumentation exported during one test."""

    def __init__(self) -> None:
        self.spans_exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.logs_exporter = InMemoryLogExporter()
        self.logger_provider = LoggerProvider()
        add_log_processor(self.logger_provider, self.logs_exporter)

    def spans(self) -> list[ReadableSpan]:
        return list(self.spans_exporter.get_finished_spans())

    def span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def metric_unit(self, name: str) -> str | None:
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        return str(metric.unit)
        return None

    def value(self, name: str, **attributes: Any) -> Any:
        """The value (or histogram count) of the one point whose attributes include `attributes`."""
        wanted = {key.replace("__", "."): value for key, value in attributes.items()}
        matches = [p for p in self.points(name) if wanted.items() <= dict(p.attributes).items()]
        assert len(matches) == 1, (name, wanted, [dict(p.attributes) for p in self.points(name)])
        point = matches[0]
        return point.count if hasattr(point, "count") else point.value


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@contextmanager
def instrumented(**settings: Any) -> Iterator[Telemetry]:
    """Instrument with fresh in-memory exporters (and `instrument()` settings); always uninstrument."""
    otel_aitrack.reset_stats()
    seen = Telemetry()
    instrumentor = otel_aitrack.AITrackInstrumentor()
    instrumentor.instrument(
        tracer_provider=seen.tracer_provider,
        meter_provider=seen.meter_provider,
        logger_provider=seen.logger_provider,
        **settings,
    )
    try:
        yield seen
    finally:
        instrumentor.uninstrument()
        otel_aitrack.reset_stats()


@pytest.fixture
def telemetry(fake: FakeOpenAI) -> Iterator[Telemetry]:
    fake.reset()
    with instrumented() as seen:
        yield seen


@pytest.fixture
def client(fake: FakeOpenAI, telemetry: Telemetry) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)


@pytest.fixture
def async_client(fake: FakeOpenAI, telemetry: Telemetry) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)


# --- Anthropic ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def anthropic_fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


# anthropic 1.x before its own tracing has no `open_telemetry` option (nor any span of its own).
ANTHROPIC_SDK_TRACES = hasattr(anthropic._base_client, "start_api_call_span")


@pytest.fixture
def anthropic_client(anthropic_fake: FakeAnthropic, telemetry: Telemetry) -> anthropic.Anthropic:
    """The SDK's own tracing on, into the test's tracer provider: every test then proves one span per call."""
    from tests.conformance.cases import ANTHROPIC

    anthropic_fake.reset()
    return ANTHROPIC.client(anthropic_fake.base_url, tracer_provider=telemetry.tracer_provider)  # type: ignore[no-any-return]


@pytest.fixture
def async_anthropic_client(anthropic_fake: FakeAnthropic, telemetry: Telemetry) -> anthropic.AsyncAnthropic:
    from tests.conformance.cases import ANTHROPIC

    assert ANTHROPIC.async_client is not None
    anthropic_fake.reset()
    return ANTHROPIC.async_client(anthropic_fake.base_url, tracer_provider=telemetry.tracer_provider)  # type: ignore[no-any-return]


# --- Google -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def google_fake() -> Iterator[FakeGoogle]:
    with FakeGoogle() as server:
        yield server


@pytest.fixture
def google_client(google_fake: FakeGoogle, telemetry: Telemetry) -> Any:
    from tests.conformance.cases import GOOGLE

    google_fake.reset()
    return GOOGLE.client(google_fake.base_url)


# --- AWS Bedrock --------------------------------------------------------------------------------

# Dummy credentials of the real formats: a temporary access key id (`ASIA…`), its secret and session token.
AWS_ACCESS_KEY_ID = "ASIATESTKEY1EXAMPLE0"
AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYTESTSECRET"
AWS_SESSION_TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHTESTSESSIONTOKEN+k2m/Qx9w=="
AWS_REGION = "us-east-1"


def converse_reports_cache_reads() -> bool:
    """botocore drops what its service model lacks: before prompt caching, Converse's `usage` has no
    `cacheReadInputTokens` (the fake sends it all the same)."""
    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    return "cacheReadInputTokens" in model.shape_for("TokenUsage").members


# The input tokens of a Converse call with the fake, as botocore parses its usage.
CONVERSE_INPUT_TOKENS = INPUT_TOKENS + (CACHE_READ_TOKENS if converse_reports_cache_reads() else 0)


@pytest.fixture(scope="session")
def bedrock_fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as server:
        yield server


def make_bedrock_client(endpoint_url: str, service: str = "bedrock-runtime", **config: Any) -> Any:
    """A boto3 client on loopback; no retries unless `config` asks for them."""
    options: dict[str, Any] = {"retries": {"mode": "standard", "total_max_attempts": 1}, **config}
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=AWS_REGION,
        aws_access_key_id=AWS_ACCESS_KEY_ID,
        aws_secret_access_key=AWS_SECRET_ACCESS_KEY,
        aws_session_token=AWS_SESSION_TOKEN,
        config=Config(**options),
    )


@pytest.fixture
def botocore_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry loop runs as is; only its back-off sleep is skipped (and recorded)."""
    waits: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=waits.append))
    return waits


@pytest.fixture
def bedrock_client(bedrock_fake: FakeBedrock, telemetry: Telemetry) -> Any:
    bedrock_fake.reset()
    return make_bedrock_client(bedrock_fake.base_url)
