"""`otel-aitrack demo`: the fake provider, the real openai SDK, the table; Ctrl-C, SIGTERM, OTLP export."""

from __future__ import annotations

import gzip
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.cli.support import CLI, cli_env, group_rows, run_cli, table_rows, wide_env
from tests.support import run_ok

PROMPT_TYPES = ("summarize_ticket", "classify_email", "extract_invoice")


def test_demo_drives_the_prompt_types_and_prints_the_final_table_and_a_traceback() -> None:
    mix = "healthy=0,flaky=0.4,broken=1,ocr_receipt=100%"
    done = run_cli(
        "demo", "--duration", "3", "--rate", "12", "--seed", "5", "--failure-mix", mix, env=wide_env()
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("otel-aitrack demo: fake OpenAI provider on http://127.0.0.1:")
    assert "no exporter" in out
    rows = table_rows(out)
    assert set(rows) == {*PROMPT_TYPES, "ocr_receipt"}
    assert rows["summarize_ticket"][1:3] == ["0", "0.0 %"]
    for broken in ("extract_invoice", "ocr_receipt"):
        assert rows[broken][0] == rows[broken][1] != "0"
        assert rows[broken][2] == "100.0 %"
        assert rows[broken][3] == f"⚠ {rows[broken][0]}" or int(rows[broken][0]) < 3
        assert rows[broken][4] in {
            "RateLimitError",
            "InternalServerError",
            "APITimeoutError",
            "NotFoundError",
            "stream_truncated",
        }
    assert sum(int(row[0]) for row in rows.values()) >= 20
    assert "Latest failure: " in out
    assert "Traceback (most recent call last):" in out
    assert "openai." in out.split("Latest failure: ")[1]
    # A pipe gets plain text: the final table once, no escape codes, no secret.
    assert "\x1b" not in out
    assert sum(line.startswith("┃ prompt type") for line in out.splitlines()) == 1
    # The top failure groups: one fingerprint per kind of failure of a prompt type, never more failed
    # calls than the prompt type has.
    groups = group_rows(out)
    assert groups and len(groups) <= 10
    for fingerprint, (prompt_type, error, count, *_) in groups.items():
        assert re.fullmatch("[0-9a-f]{16}", fingerprint)
        assert int(count) <= int(rows[prompt_type][1])
        assert error.split(" (")[0] in {
            "RateLimitError",
            "InternalServerError",
            "APITimeoutError",
            "NotFoundError",
            "stream_truncated",
        }
    assert "sk-proj-demo" not in out


def test_on_a_terminal_the_table_is_live_and_the_final_one_stays() -> None:
    primary, secondary = pty.openpty()
    env = cli_env(TERM="xterm-256color", COLUMNS="120", LINES="40")
    process = subprocess.Popen(
        [*CLI, "demo", "--duration", "2", "--rate", "12"],
        env=env,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    screen = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed: the demo exited
            break
        if not chunk:
            break
        screen += chunk
    os.close(primary)
    assert process.wait(timeout=60) == 0
    text = screen.decode("utf-8", "replace")
    assert "\x1b[" in text  # colours and the redrawn live area
    assert " s of 2 s" in text  # the progress bar's clock, under the live table
    final = text.split("done after")[-1]
    assert set(table_rows(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", final))) == set(PROMPT_TYPES)


def start_demo_until_stopped() -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [*CLI, "demo", "--duration", "0", "--rate", "12"],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    header = [process.stdout.readline() for _ in range(3)]
    assert "until Ctrl-C" in header[0], header
    time.sleep(1.5)  # some calls
    return process


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_until_ctrl_c_stops_cleanly_with_the_final_table(stop: signal.Signals) -> None:
    process = start_demo_until_stopped()
    try:
        process.send_signal(stop)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "stopped after" in out
    assert set(table_rows(out)) == set(PROMPT_TYPES)


# --- OTLP export ---------------------------------------------------------------------------------
class OtlpReceiver(ThreadingHTTPServer):
    """A collector's OTLP/HTTP receiver, keeping each request's path and decoded protobuf body."""

    def __init__(self) -> None:
        self.received: dict[str, list[bytes]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.received.setdefault(self.path, []).append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_with_an_otlp_endpoint_spans_and_metrics_reach_the_collector(receiver: OtlpReceiver) -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}"
    env = cli_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_SERVICE_NAME="demo-under-test")
    done = run_cli("demo", "--duration", "2", "--rate", "12", env=env)
    assert done.returncode == 0, done.stderr
    assert f"exported over OTLP/HTTP to {endpoint}" in done.stdout

    spans, services = [], set()
    for body in receiver.received.get("/v1/traces", []):
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            services |= {
                a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"
            }
            spans += [span for scope in resource_spans.scope_spans for span in scope.spans]
    prompt_types = {
        a.value.string_value for s in spans for a in s.attributes if a.key == "gen_ai.prompt.name"
    }
    assert services == {"demo-under-test"}
    assert prompt_types == set(PROMPT_TYPES)

    metrics = set()
    for body in receiver.received.get("/v1/metrics", []):
        request = ExportMetricsServiceRequest.FromString(body)
        for resource_metrics in request.resource_metrics:
            metrics |= {m.name for scope in resource_metrics.scope_metrics for m in scope.metrics}
    assert {"aitrack.calls", "aitrack.consecutive_failures"} <= metrics


NO_EXPORT = (
    "import sys; from otel_aitrack.cli import main; code = main(sys.argv[1:]); "
    "sdk = ('opentelemetry.sdk', 'opentelemetry.exporter'); "
    "print('loaded:', sorted(m for m in sys.modules if m.startswith(sdk)))"
)


def test_without_an_endpoint_no_sdk_and_no_exporter_is_loaded() -> None:
    done = run_ok([sys.executable, "-c", NO_EXPORT, "demo", "--duration", "1"], env=cli_env(), timeout=90)
    assert "loaded: []" in done.stdout
