"""`opentelemetry-instrument python app.py` picks otel-aitrack up with no code change."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.fakes.openai_server import FakeOpenAI

APP = textwrap.dedent(
    """
    import openai, sys
    client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-proj-autoinstrumentKEY123456", max_retries=0)
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    except openai.APIStatusError as error:
        print("app saw", type(error).__name__, file=sys.stderr)
    """
)


def test_opentelemetry_instrument_exports_the_failed_span(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.reset()
    fake.plan("unauthorized")
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "auto-app",
        # `openai`: another OpenAI instrumentation installed beside us (the test extra installs the
        # official one) would add its own span; this test is about ours alone (tests/test_coexistence.py).
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "httpx,openai",
        "OTEL_AITRACK_STRICT": "1",
    }
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    done = subprocess.run(
        [str(instrument), sys.executable, str(app), fake.base_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "app saw AuthenticationError" in done.stderr
    spans = _json_blocks(done.stdout)
    ours = [s for s in spans if s["name"] == "chat gpt-4o-mini"]
    assert len(ours) == 1, done.stdout
    assert ours[0]["kind"] == "SpanKind.CLIENT"
    assert ours[0]["attributes"]["error.type"] == "AuthenticationError"
    assert ours[0]["attributes"]["aitrack.error.provider_code"] == "invalid_api_key"
    assert "autoinstrumentKEY" not in done.stdout


def _json_blocks(text: str) -> list[dict]:
    """The console exporter prints one JSON document per span, each starting at a line's start."""
    decoder, found, end = json.JSONDecoder(), [], 0
    for match in re.finditer(r"^\{", text, re.M):
        if match.start() >= end:
            document, end = decoder.raw_decode(text, match.start())
            found.append(document)
    return found
