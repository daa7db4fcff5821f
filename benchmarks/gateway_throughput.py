"""How many spans per second one gateway (collector/gateway.yaml, the built collector) takes on this machine:
`python benchmarks/gateway_throughput.py [--seconds 20] [--sample-percent 10] [--via-agent]`.

Sender threads post OTLP/HTTP protobuf requests as fast as the gateway answers them, each request 100
traces of 5 spans shaped like otel_aitrack's (a server span and four `chat` spans with the GenAI attributes;
5 % of the traces with a failed call carrying an exception event and a traceback), fresh trace ids in every
request. The gateway exports what it keeps to a loopback OTLP receiver (tests/otlp.py) and writes nothing
else. Over the steady part of the run it prints the spans the gateway accepted per second, the spans it
refused (memory_limiter), its CPU use (so spans per CPU-second, the figure that carries to other machines),
and what reached the trace store. `--via-agent` puts collector/agent.yaml in front: the agent's figure then.
Not a test: the machine is shared and noisy (2 cores here, and the senders use them too), so no figure is
asserted anywhere.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from tests.otlp import running_receiver
from tests.stack.scale_out import AGENT_CONFIG, Collector, Gateway, agent_environment

TRACES_PER_REQUEST = 100
SPANS_PER_TRACE = 5
ERROR_SHARE = 0.05
WARM_UP_SECONDS = 3
TRACEBACK = (
    (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/support.py", line 41, in summarize_ticket\n'
        "    client.chat.completions.create(model=MODEL, messages=messages)\n"
    )
    + '  File "/venv/lib/python3.12/site-packages/openai/_base_client.py", line 1047, in request\n' * 12
    + (
        "openai.NotFoundError: Error code: 404 - "
        "{'error': {'message': 'The model `gpt-5-nano-x` does not exist'}}"
    )
)


def attribute(key: str, value: str | int) -> KeyValue:
    any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    return KeyValue(key=key, value=any_value)


def chat_span(trace_id: bytes, parent: bytes, number: int, failed: bool) -> Span:
    now = time.time_ns()
    span = Span(
        trace_id=trace_id,
        span_id=random.randbytes(8),
        parent_span_id=parent,
        name="chat gpt-4o-mini",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=now - 800_000_000,
        end_time_unix_nano=now,
    )
    values: dict[str, str | int] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.prompt.name": "summarize_ticket",
        "gen_ai.usage.input_tokens": 412,
        "gen_ai.usage.output_tokens": 96 + number,
        "server.address": "api.openai.com",
        "server.port": 443,
    }
    span.attributes.extend(attribute(key, value) for key, value in values.items())
    if failed:
        span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="NotFoundError: model not found"))
        span.attributes.extend(
            [attribute("error.type", "NotFoundError"), attribute("aitrack.error.traceback", TRACEBACK)]
        )
        event = span.events.add(name="exception", time_unix_nano=now)
        event.attributes.extend(
            [
                attribute("exception.type", "openai.NotFoundError"),
                attribute("exception.stacktrace", TRACEBACK),
            ]
        )
    return span


def trace_spans(trace_id: bytes, failed: bool) -> list[Span]:
    now = time.time_ns()
    root = Span(
        trace_id=trace_id,
        span_id=random.randbytes(8),
        name="POST /tickets/summary",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=now - 1_000_000_000,
        end_time_unix_nano=now,
    )
    root.attributes.extend(
        [attribute("http.request.method", "POST"), attribute("http.route", "/tickets/summary")]
    )
    failing = SPANS_PER_TRACE - 1 if failed else -1
    children = [chat_span(trace_id, root.span_id, n, n == failing) for n in range(1, SPANS_PER_TRACE)]
    return [root, *children]


@dataclass
class Template:
    """One request's bytes and where each trace's id sits in them, to give every request fresh ids."""

    body: bytearray
    offsets: list[list[int]]  # per trace, the offset of each copy of its id

    def fresh(self) -> bytes:
        ids = os.urandom(16 * len(self.offsets))
        for number, offsets in enumerate(self.offsets):
            new = ids[16 * number : 16 * number + 16]
            for offset in offsets:
                self.body[offset : offset + 16] = new
        return bytes(self.body)


def template() -> Template:
    trace_ids = [os.urandom(16) for _ in range(TRACES_PER_REQUEST)]
    spans = [
        span
        for n, tid in enumerate(trace_ids)
        for span in trace_spans(tid, n < TRACES_PER_REQUEST * ERROR_SHARE)
    ]
    resource = ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])
    resource.resource.attributes.extend([attribute("service.name", "aitrack-benchmark")])
    body = bytearray(ExportTraceServiceRequest(resource_spans=[resource]).SerializeToString())
    offsets = []
    for trace_id in trace_ids:
        found, start = [], 0
        while (at := body.find(trace_id, start)) >= 0:
            found.append(at)
            start = at + 16
        assert len(found) == SPANS_PER_TRACE, "a trace id must appear once per span"
        offsets.append(found)
    return Template(body, offsets)


def send_until(port: int, stop_at: float, counts: list[int]) -> None:
    """Posts fresh requests to 127.0.0.1:port until `stop_at`; counts [accepted, refused] requests."""
    request = template()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/x-protobuf"}
    while time.monotonic() < stop_at:
        connection.request("POST", "/v1/traces", request.fresh(), headers)
        response = connection.getresponse()
        response.read()
        counts[0 if response.status == 200 else 1] += 1
    connection.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Reading:
    at: float
    accepted: float
    refused: float
    cpu: float
    rss_mib: float  # the gateway's


def resident_mib(pid: int) -> float:
    (line,) = [
        line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS:")
    ]
    return int(line.split()[1]) / 1024


def read(collector: Collector, gateway: Gateway) -> Reading:
    assert collector.process is not None and gateway.process is not None
    return Reading(
        time.monotonic(),
        collector.own_metric("otelcol_receiver_accepted_spans"),
        collector.own_metric("otelcol_receiver_refused_spans"),
        cpu_seconds(collector.process.pid),
        resident_mib(gateway.process.pid),
    )


def run(args: argparse.Namespace, workdir: Path) -> None:
    gateway_env = {
        "AITRACK_TRACE_SAMPLE_PERCENT": str(args.sample_percent),
        "AITRACK_TRACE_DECISION_WAIT": f"{args.decision_wait}s",
        "AITRACK_TRACE_NUM_TRACES": str(args.num_traces),
        "AITRACK_TRACE_SAMPLING_SHARDS": str(args.shards),
    }
    with ExitStack() as stack:
        store = stack.enter_context(running_receiver())
        gateway = Gateway(0, workdir, store, gateway_env)
        stack.callback(gateway.stop)
        gateway.start()
        measured: Collector = gateway
        if args.via_agent:
            measured = Collector("agent", (AGENT_CONFIG,), workdir, agent_environment([gateway]))
            stack.callback(measured.stop)
            measured.start()
        port = measured.ports["otlp_http"]
        stop_at = time.monotonic() + args.seconds
        counts = [[0, 0] for _ in range(args.senders)]
        senders = [threading.Thread(target=send_until, args=(port, stop_at, c)) for c in counts]
        sender_cpu = time.process_time()
        for sender in senders:
            sender.start()
        time.sleep(WARM_UP_SECONDS)
        first = read(measured, gateway)
        for sender in senders:
            sender.join()
        last = read(measured, gateway)
        sender_cpu = time.process_time() - sender_cpu
        time.sleep(args.decision_wait + 3)  # the last decisions, the batch, the export
        report(args, first, last, sender_cpu, gateway, len(store.spans()))


def report(
    args: argparse.Namespace, first: Reading, last: Reading, sender_cpu: float, gateway: Gateway, stored: int
) -> None:
    seconds = last.at - first.at
    accepted = (last.accepted - first.accepted) / seconds
    cores = (last.cpu - first.cpu) / seconds
    tier = "agent (agent.yaml, in front of one gateway)" if args.via_agent else "gateway (gateway.yaml)"
    sampling = f"decision_wait {args.decision_wait}s, sample {args.sample_percent} %"
    setting = f"{sampling}, {args.shards} sampling shards, {args.senders} senders"
    shape = f"{TRACES_PER_REQUEST} traces x {SPANS_PER_TRACE} spans"
    total_accepted = gateway.own_metric("otelcol_receiver_accepted_spans")
    dropped = gateway.own_metric("otelcol_processor_tail_sampling_sampling_trace_dropped_too_early")
    print(f"{tier}: {setting}")
    print(f"  requests of {shape}, {ERROR_SHARE:.0%} of traces failed")
    print(
        f"  accepted {accepted:,.0f} spans/s over {seconds:.1f} s (steady part), refused {last.refused:,.0f}"
    )
    print(f"  collector CPU {cores:.2f} cores busy: {accepted / max(cores, 1e-9):,.0f} spans per CPU-second")
    print(f"  gateway memory at the end of the run: {last.rss_mib:,.0f} MiB resident")
    print(f"  senders (this process) used {sender_cpu / args.seconds:.2f} cores of the {os.cpu_count()}")
    share = f"{stored / total_accepted:.1%}"
    print(f"  trace store got {stored:,} of the gateway's {total_accepted:,.0f} spans ({share})")
    print(f"  traces dropped before their decision (num_traces {args.num_traces}): {dropped:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--sample-percent", type=float, default=10)
    parser.add_argument("--decision-wait", type=int, default=10, help="seconds (gateway.yaml's default: 10)")
    parser.add_argument("--num-traces", type=int, default=200_000)
    parser.add_argument("--shards", type=int, default=1, help="tail sampling's num_shards")
    parser.add_argument("--via-agent", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aitrack-gateway-bench-") as workdir:
        run(args, Path(workdir))


if __name__ == "__main__":
    main()
