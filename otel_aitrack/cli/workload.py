"""The demo's workload: three AI features of a support desk, calling the provider through the openai SDK.

Each call is drawn in advance (which feature, whether and how it fails, streamed or not) from one
seeded random generator, so `--seed` replays the same sequence. A failing call asks the fake provider
for one of its realistic failure scenarios through the `x-fake-scenario` header; the app handles the
SDK's errors the way an app would, so the demo only shows what otel-aitrack recorded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

import openai

import otel_aitrack

from .fake_provider import SCENARIO_HEADER

# What goes wrong when a call fails (fake provider scenarios) and how often, relatively.
# `slow` answers after 2 s: with the demo's 1 s client timeout it is an APITimeoutError.
FAILURE_SCENARIOS = {"rate_limit": 4, "server_error": 3, "slow": 2, "not_found": 2, "stream_truncated": 2}
CALL_TIMEOUT_SECONDS = 1.0
STREAMED_SHARE = 0.25
USERS = 40

INVOICE_SCHEMA = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string"},
        "total": {"type": "number"},
        "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
    },
    "required": ["invoice_number", "total", "currency"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Feature:
    """An AI feature of the app: its prompt type, what it does, which API it calls, how often it fails."""

    prompt_type: str
    task: str
    api: str  # "chat" or "responses"
    model: str
    failure_probability: float
    messages: tuple[Any, ...] = ()  # chat messages, as the SDK takes them
    json_answer: bool = False


@dataclass(frozen=True)
class PlannedCall:
    feature: Feature
    scenario: str  # a fake provider scenario: "ok" or a failure
    stream: bool
    user: str


def features(mix: dict[str, float]) -> list[Feature]:
    """The features of a failure mix; prompt types other than the built-in ones answer like summaries."""
    found = []
    for prompt_type, probability in mix.items():
        template = _BUILT_IN.get(prompt_type) or Feature(
            prompt_type, f"the {prompt_type} feature", "chat", "gpt-4o-mini", 0.0, _SUMMARIZE
        )
        found.append(replace(template, prompt_type=prompt_type, failure_probability=probability))
    return found


class Workload:
    """Draws the next call: a feature at random, its outcome from the feature's failure probability."""

    def __init__(self, features: list[Feature], seed: int | None = None) -> None:
        self.features = features
        self.random = random.Random(seed)
        self._scenarios = list(FAILURE_SCENARIOS)
        self._weights = list(FAILURE_SCENARIOS.values())

    def next_call(self) -> PlannedCall:
        feature = self.random.choice(self.features)
        fails = self.random.random() < feature.failure_probability
        scenario = self.random.choices(self._scenarios, self._weights)[0] if fails else "ok"
        stream = scenario == "stream_truncated" or self.random.random() < STREAMED_SHARE
        return PlannedCall(feature, scenario, stream, f"user-{self.random.randint(1, USERS)}")


def demo_client(base_url: str) -> openai.OpenAI:
    # No SDK retries: a rate-limited call would otherwise wait the provider's 20 s `retry-after`.
    return openai.OpenAI(
        base_url=base_url,
        api_key="sk-proj-demo-not-a-real-key-0000",
        max_retries=0,
        timeout=CALL_TIMEOUT_SECONDS,
    )


def make_call(client: openai.OpenAI, call: PlannedCall) -> None:
    """One call of the app, inside its feature's `track()` block; the app survives a failed call."""
    feature = call.feature
    with otel_aitrack.track(feature.prompt_type, task=feature.task, user=call.user):
        try:
            if feature.api == "responses":
                _extract_invoice(client, call)
            else:
                _chat(client, call)
        except openai.OpenAIError:
            pass  # what the app does with the failure is not the demo's subject: otel-aitrack recorded it


def _chat(client: openai.OpenAI, call: PlannedCall) -> None:
    extra: dict[str, Any] = {"response_format": {"type": "json_object"}} if call.feature.json_answer else {}
    answer = client.chat.completions.create(
        model=call.feature.model,
        messages=list(call.feature.messages),
        stream=call.stream,
        extra_headers={SCENARIO_HEADER: call.scenario},
        **extra,
    )
    if call.stream:
        for _chunk in answer:
            pass


def _extract_invoice(client: openai.OpenAI, call: PlannedCall) -> None:
    answer = client.responses.create(
        model=call.feature.model,
        instructions="Extract the invoice fields as JSON.",
        input="INVOICE NO. INV-2291 — Acme Office Supplies — Total due: 1,284.50 EUR",
        text={"format": {"type": "json_schema", "name": "invoice", "schema": INVOICE_SCHEMA, "strict": True}},
        stream=call.stream,
        extra_headers={SCENARIO_HEADER: call.scenario},
    )
    if call.stream:
        for _event in answer:
            pass


_SUMMARIZE = (
    {"role": "system", "content": "Summarize the support ticket in two sentences for the on-call agent."},
    {
        "role": "user",
        "content": "Ticket #4821: since this morning's update the mobile app logs me out every few minutes "
        "and I lose the draft of my reply. Reinstalling did not help.",
    },
)
_CLASSIFY = (
    {
        "role": "system",
        "content": 'Classify the email. Answer JSON: {"category": "billing|bug|sales|other"}.',
    },
    {"role": "user", "content": "Hello, I was charged twice for my March subscription, can you refund one?"},
)
_BUILT_IN = {
    "summarize_ticket": Feature(
        "summarize_ticket", "summarize a support ticket", "chat", "gpt-4o-mini", 0.0, _SUMMARIZE
    ),
    "classify_email": Feature(
        "classify_email",
        "classify an incoming email",
        "chat",
        "gpt-4o-mini",
        0.0,
        _CLASSIFY,
        json_answer=True,
    ),
    "extract_invoice": Feature(
        "extract_invoice", "extract the fields of an invoice", "responses", "gpt-4.1-mini", 0.0
    ),
}
