"""Small helpers shared by the tests (not fixtures)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

try:  # renamed in newer SDKs
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter as InMemoryLogExporter
except ImportError:  # pragma: no cover
    from opentelemetry.sdk._logs.export import InMemoryLogExporter  # type: ignore[no-redef]

__all__ = [
    "OPENTELEMETRY_INSTRUMENT",
    "InMemoryLogExporter",
    "add_log_processor",
    "ask_openai",
    "attrs",
    "console_app_env",
    "console_spans",
    "event",
    "exception_name",
    "refused_port",
    "run_ok",
]


# The launcher of opentelemetry-instrumentation, installed beside this Python.
OPENTELEMETRY_INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")


def add_log_processor(provider: LoggerProvider, exporter: Any) -> None:
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def event(span: Any, name: str) -> dict[str, Any]:
    found = [e for e in span.events if e.name == name]
    assert len(found) == 1, [e.name for e in span.events]
    return dict(found[0].attributes or {})


def exception_name(error: BaseException) -> str:
    """The exception's name as a traceback prints it."""
    return f"{type(error).__module__}.{type(error).__qualname__}"


def refused_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_ok(
    args: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run a program to its end, its output captured; it must exit 0 (its output is the failure's message)."""
    done = subprocess.run(
        [str(arg) for arg in args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def console_app_env(service_name: str, disabled: str = "httpx,openai", **extra: str) -> dict[str, str]:
    """The environment of an app whose spans the console exporter prints (no metrics, no logs exported),
    with otel-aitrack strict. `disabled`: instrumentations left out (another OpenAI one, installed beside
    ours by the test extra, would add its own spans)."""
    return {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": service_name,
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": disabled,
        "OTEL_AITRACK_STRICT": "1",
        **extra,
    }


def console_spans(text: str) -> list[dict[str, Any]]:
    """The console exporter prints one JSON document per span, each starting at a line's start."""
    decoder, found, end = json.JSONDecoder(), [], 0
    for match in re.finditer(r"^\{", text, re.M):
        if match.start() >= end:
            document, end = decoder.raw_decode(text, match.start())
            found.append(document)
    return found


def ask_openai(client: Any, model: str = "gpt-4o-mini") -> None:
    """One chat call of an app that survives a failed call."""
    import openai

    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    except openai.APIError:
        pass


def calls_of(prompt_type: str, client: Any, fake: Any, *scenarios: str) -> None:
    """One call of `prompt_type` per scenario, the fake answering each as it says."""
    import otel_aitrack

    fake.plan(*scenarios)
    with otel_aitrack.track(prompt_type):
        for _ in scenarios:
            ask_openai(client)
