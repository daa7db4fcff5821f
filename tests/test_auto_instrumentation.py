"""`opentelemetry-instrument python app.py` picks otel-aitrack up with no code change."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from tests.fakes.openai_server import FakeOpenAI
from tests.support import OPENTELEMETRY_INSTRUMENT, console_app_env, console_spans, run_ok

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
    # `openai`: another OpenAI instrumentation installed beside us (the test extra installs the
    # official one) would add its own span; this test is about ours alone (tests/test_coexistence.py).
    env = console_app_env("auto-app", disabled="httpx,openai")
    done = run_ok([OPENTELEMETRY_INSTRUMENT, sys.executable, app, fake.base_url], env=env)
    assert "app saw AuthenticationError" in done.stderr
    spans = console_spans(done.stdout)
    ours = [s for s in spans if s["name"] == "chat gpt-4o-mini"]
    assert len(ours) == 1, done.stdout
    assert ours[0]["kind"] == "SpanKind.CLIENT"
    assert ours[0]["attributes"]["error.type"] == "AuthenticationError"
    assert ours[0]["attributes"]["aitrack.error.provider_code"] == "invalid_api_key"
    assert "autoinstrumentKEY" not in done.stdout
