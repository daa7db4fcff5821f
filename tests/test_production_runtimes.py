"""How production runs it: gevent-patched processes, and streams by the thousand that nobody reads.

- `gevent.monkey.patch_all()` before any import (gunicorn's gevent workers, Celery's gevent pool):
  calls, spans and histograms work (the hand-off thread is then a greenlet), and the process exits.
- 10,000 streams never read and never closed: each span ends when its stream is collected, as an
  abort, and the instrumentation keeps nothing per stream (memory stays flat).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Iterator, Sequence

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import otel_aitrack
from otel_aitrack import names
from tests.conftest import API_KEY
from tests.fakes.openai_server import FakeOpenAI
from tests.support import run_ok

MESSAGES = [{"role": "user", "content": "hi"}]

GEVENT_APP = textwrap.dedent(
    """
    from gevent import monkey

    monkey.patch_all()

    import json, sys
    import gevent
    import openai
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import otel_aitrack

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    otel_aitrack.AITrackInstrumentor().instrument(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-proj-geventTEST1234567890", max_retries=0)

    def feature(name, model, calls):
        with otel_aitrack.track(name):
            for _ in range(calls):
                try:
                    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
                except openai.APIError:
                    pass
                gevent.sleep(0)

    # Greenlets side by side, each with its own prompt type: more than the hand-off's 64, so its
    # thread (a greenlet here) starts and records the histograms while the others wait on the network.
    gevent.joinall([
        gevent.spawn(feature, "green_ok", "gpt-4o-mini", 40),
        gevent.spawn(feature, "green_failing", "server_error", 40),
    ])
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[], stream=True)
    with otel_aitrack.track("green_stream"):
        pieces = [chunk for chunk in stream]
    durations = {}
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "gen_ai.client.operation.duration":
                    for point in metric.data.data_points:
                        durations[point.attributes["gen_ai.prompt.name"]] = point.count
    print(json.dumps({
        "stats": {key: [s.total_calls, s.total_failed_calls] for key, s in otel_aitrack.stats().items()},
        "spans": len(spans.get_finished_spans()),
        "durations": durations,
        "chunks": len(pieces),
    }))
    """
)


def test_under_gevent_calls_spans_and_histograms_work_and_the_process_exits(fake: FakeOpenAI) -> None:
    pytest.importorskip("gevent")
    env = {**os.environ, "OTEL_AITRACK_STRICT": "1"}
    done = run_ok(
        [sys.executable, "-c", GEVENT_APP, fake.base_url], timeout=120, env=env
    )  # a hang at exit fails here
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["stats"]["green_ok"] == [40, 0]
    assert seen["stats"]["green_failing"] == [40, 40]
    assert seen["spans"] == 81
    assert seen["durations"] == {"green_ok": 40, "green_failing": 40, "untracked": 1}
    assert seen["chunks"] > 1
    assert "Traceback" not in done.stderr


class _CountingExporter(SpanExporter):
    """Counts ended spans by stream outcome and keeps none of them (memory must be ours to measure)."""

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            outcome = str((span.attributes or {}).get(names.AITRACK_STREAM_OUTCOME))
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        return SpanExportResult.SUCCESS


STREAMS = 10_000
WARM = 2_000
PER_CLIENT = 200  # the SDK keeps an unread stream's connection checked out: one pool would run dry

# The fake server in a process of its own: its threads' memory must not count as the client's.
_SERVE = (
    "import sys; from otel_aitrack.cli.fake_provider import FakeOpenAI; "
    "fake = FakeOpenAI().start(); print(fake.base_url, flush=True); sys.stdin.read()"
)


@pytest.fixture(scope="module")
def remote_fake() -> Iterator[str]:
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    try:
        yield server.stdout.readline().strip()
    finally:
        server.kill()
        server.wait()


def _abandon(base_url: str, count: int) -> None:
    """`count` streams opened and dropped unread, as a careless request handler would."""
    for _ in range(count // PER_CLIENT):
        client = openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)
        for _ in range(PER_CLIENT):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        client.close()
        gc.collect()


def _kept_per_stream(base_url: str, count: int) -> float:
    """Bytes still allocated per stream after `count` more abandoned streams (after a warm-up)."""
    _abandon(base_url, WARM)  # caches, pools, first-use allocations of the SDK and ours
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        _abandon(base_url, count)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (after - before) / count


@pytest.mark.slow
def test_ten_thousand_abandoned_streams_all_end_and_keep_no_memory(remote_fake: str) -> None:
    baseline = _kept_per_stream(remote_fake, STREAMS - WARM)  # the SDK alone, uninstrumented
    exporter = _CountingExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = otel_aitrack.AITrackInstrumentor()
    otel_aitrack.reset_stats()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        with otel_aitrack.track("abandoned"):
            instrumented = _kept_per_stream(remote_fake, STREAMS - WARM)
        stats = otel_aitrack.stats()["abandoned"]
    finally:
        instrumentor.uninstrument()
        otel_aitrack.reset_stats()
    assert exporter.outcomes == {"aborted": STREAMS}, "every stream's span ended, as an abort"
    assert (stats.total_calls, stats.total_failed_calls) == (STREAMS, 0)
    # Had anything been kept per stream (its span ~2 KB, the follower and its state ~1 KB), this
    # would be kilobytes; allocator noise is tens of bytes.
    assert instrumented - baseline < 200, f"{instrumented:.0f} B kept per stream, {baseline:.0f} B without us"
