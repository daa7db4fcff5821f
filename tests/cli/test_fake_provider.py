"""The demo's built-in provider: concurrent callers choose a call's scenario with a request header."""

from __future__ import annotations

import openai
import pytest

from otel_aitrack.cli.fake_provider import SCENARIO_HEADER, FakeOpenAI

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def client(fake: FakeOpenAI) -> openai.OpenAI:
    fake.reset()
    return openai.OpenAI(base_url=fake.base_url, api_key="sk-proj-fake0123456789abcdef", max_retries=0)


def test_the_scenario_header_chooses_the_answer(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={SCENARIO_HEADER: "rate_limit"}
        )
    assert [r.scenario for r in fake.requests] == ["rate_limit"]


def test_the_plan_comes_before_the_header_and_an_unknown_header_is_ignored(
    client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    fake.plan("not_found")
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={SCENARIO_HEADER: "rate_limit"}
        )
    client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={SCENARIO_HEADER: "nope"}
    )
    assert [r.scenario for r in fake.requests] == ["not_found", "ok"]
