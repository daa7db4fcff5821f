"""The benchmarks' far end, in a process of its own: the fake OpenAI API and an OTLP receiver on loopback.

Its own process, so that its work is on no clock and in no instruction count of the measured process,
and its memory in no RSS. The fake is the demo's (otel_aitrack/cli/fake_provider.py) with two
changes for long runs: it keeps no record of the requests, and a model of its own streams 100 chunks.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection

from benchmarks.calls import STREAM_CHUNKS, STREAM_MODEL
from otel_aitrack.cli.fake_provider import Call, FakeOpenAI, OpenAIHandler, RecordedRequest
from tests.otlp import OtlpReceiver


class _Handler(OpenAIHandler):
    def stream_pieces(self, scenario: str, call: Call) -> list[str]:
        if call.model != STREAM_MODEL:
            return super().stream_pieces(scenario, call)
        # What the SDK yields: the content chunks, then the finish chunk.
        return [f"word{index} " for index in range(STREAM_CHUNKS - 1)]


class BenchmarkFake(FakeOpenAI):
    handler = _Handler
    thread_name = "benchmark-fake-openai"

    def record(self, request: RecordedRequest) -> None:
        """Nothing kept: a run of 100,000 calls must not grow the fake."""


class DiscardingReceiver(OtlpReceiver):
    """A collector that is up: answers every export with 200, keeps nothing."""

    def keep(self, path: str, body: bytes) -> None:
        return None


@dataclass(frozen=True)
class FarEnd:
    openai_url: str  # the client's base_url
    otlp_endpoint: str  # OTEL_EXPORTER_OTLP_ENDPOINT of a collector that is up


def _serve(pipe: Connection) -> None:
    receiver = DiscardingReceiver()
    threading.Thread(target=receiver.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    with BenchmarkFake() as fake:
        pipe.send(FarEnd(fake.base_url, receiver.endpoint))
        pipe.recv()  # until the benchmark is done
    receiver.shutdown()


@contextlib.contextmanager
def far_end() -> Iterator[FarEnd]:
    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve, args=(theirs,), name="benchmark-far-end", daemon=True)
    process.start()
    try:
        yield ours.recv()
    finally:
        ours.send("done")
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
