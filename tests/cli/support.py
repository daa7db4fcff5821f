"""Helpers of the `otel-aitrack` command's tests: the command in a subprocess, fake Prometheus and Tempo.

The fake backends answer in the documented formats: Prometheus' `/api/v1/query` instant vectors, and
Tempo's `/api/search` (https://grafana.com/docs/tempo/latest/api_docs/#search): `traces[]` with
`traceID`, `startTimeUnixNano`, `spanSets[].spans[]` whose `attributes` are OTLP JSON key/values
(int64 values as strings, as protobuf JSON writes them), and the legacy single `spanSet` of Tempo < 2.2.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CLI = [sys.executable, "-m", "otel_aitrack.cli"]
# What would make a child export somewhere, or colour its output: never inherited by the tests' runs.
_NOT_INHERITED = ("OTEL_EXPORTER_OTLP", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER")
_COLOUR = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS")


def cli_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_NOT_INHERITED) and key not in _COLOUR
    }
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **extra}


def wide_env() -> dict[str, str]:
    """A console wide enough that no table cell is folded (the tests read the tables back)."""
    return cli_env(COLUMNS="240")


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env or cli_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def one_line_error(stderr: str) -> str:
    """The command's error: exactly one line, no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def table_rows(output: str, columns: int = 8, key: int = 0) -> dict[str, list[str]]:
    """The rows of a printed failure table with `columns` columns, by the cell at `key`: the other cells."""
    rows = _tables(output, columns, lambda header: header[0] != "fingerprint" and "prompt type" in header)
    return {cells[key]: cells[:key] + cells[key + 1 :] for cells in rows}


def group_rows(output: str) -> dict[str, list[str]]:
    """The rows of a printed failure groups table, by fingerprint: the other cells."""
    return {cells[0]: cells[1:] for cells in _tables(output, 7, lambda header: header[0] == "fingerprint")}


def _tables(output: str, columns: int, accept: Callable[[list[str]], bool]) -> list[list[str]]:
    """The body rows of the printed tables with `columns` columns whose header cells `accept`; a row
    folded over several lines is one row (its first cell, the key, is never folded)."""
    rows: list[list[str]] = []
    inside = False
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("┃" if "┃" in line else "│")[1:-1]]
        if "┃" in line:  # a header row
            inside = len(cells) == columns and accept(cells)
        elif inside and len(cells) == columns:
            if cells[0] or not rows:
                rows.append(cells)
            else:  # a row's cells folded onto the next line: joined back, as they were before the fold
                rows[-1] = [" ".join(filter(None, pair)) for pair in zip(rows[-1], cells, strict=True)]
    return rows


# --- fake backends ---------------------------------------------------------------------------------
class JsonServer:
    """A loopback HTTP server answering GETs through `answer(path, params) -> (status, body)`."""

    def __init__(self, answer: Callable[[str, dict[str, str]], tuple[int, Any]]) -> None:
        self.answer = answer
        self.requests: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                params = {key: values[-1] for key, values in parse_qs(parts.query).items()}
                outer.requests.append((parts.path, params))
                status, body = outer.answer(parts.path, params)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[JsonServer]:
        thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


def vector(*series: tuple[dict[str, str], float]) -> dict[str, Any]:
    """A Prometheus instant-query answer."""
    result = [{"metric": labels, "value": [1764000000.0, repr(value)]} for labels, value in series]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def attribute(key: str, value: object) -> dict[str, Any]:
    """An OTLP JSON KeyValue as Tempo returns it: ints as strings, the protobuf JSON way."""
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def tempo_trace(
    trace_id: str, span_id: str, start_ns: int, attributes: dict[str, object], legacy: bool = False
) -> dict[str, Any]:
    """One trace of a Tempo search answer with one matched span."""
    span = {
        "spanID": span_id,
        "startTimeUnixNano": str(start_ns),
        "durationNanos": "2000000",
        "attributes": [attribute("status", "error")] + [attribute(k, v) for k, v in attributes.items()],
    }
    span_set = {"spans": [span], "matched": 1}
    trace = {
        "traceID": trace_id,
        "rootServiceName": "support-desk",
        "rootTraceName": "POST /tickets",
        "startTimeUnixNano": str(start_ns - 1000),
        "durationMs": 3,
    }
    return {**trace, "spanSet": span_set} if legacy else {**trace, "spanSets": [span_set]}
