"""One case per provider: its loopback fake, its client, how to call it and stream from it.

A shared behaviour (tests/conformance/test_*.py) is written once against `ProviderCase` and runs for
every case. Adding a provider means adding its fake (tests/fakes/) and one case here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
from google import genai
from google.genai import types

from otel_aitrack.cli import fake_provider
from tests.fakes import anthropic_server, bedrock_server, google_server
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.bedrock_server import FakeBedrock
from tests.fakes.google_server import FakeGoogle
from tests.fakes.openai_server import FakeOpenAI

MESSAGES = [{"role": "user", "content": "Summarize ticket #42"}]
PROMPT = "Summarize ticket #42"


@dataclass(frozen=True)
class ProviderCase:
    """What the shared behaviours need to know of one provider."""

    name: str  # the test id
    provider_name: str  # gen_ai.provider.name
    operation: str  # gen_ai.operation.name of `call`
    model: str  # the request model `call` and `stream` ask for
    fake: type[Any]  # its LoopbackFake
    make_client: Callable[[Any], Any]  # fake -> a sync client of the real SDK, no retries
    call: Callable[[Any], Any]  # client -> the result of one non-streamed call
    stream: Callable[[Any], list[Any]]  # client -> a streamed call, read through: its chunks
    not_found_error: str  # error.type of the fake's `not_found` scenario (a 404 answer)
    # The token counts a successful call reports, by key of ResponseDetails.tokens.
    tokens: dict[str, int] = field(default_factory=dict)
    # Scenarios of the fake: an error event inside a 200 stream, a stream without its end marker.
    stream_error: str = "stream_error"
    stream_truncated: str = "stream_truncated"
    not_found: str = "not_found"


def read_through(chunks: Any) -> list[Any]:
    return list(chunks)


# --- OpenAI ------------------------------------------------------------------------------------------

OPENAI = ProviderCase(
    name="openai",
    provider_name="openai",
    operation="chat",
    model="gpt-4o-mini",
    fake=FakeOpenAI,
    make_client=lambda fake: openai.OpenAI(base_url=fake.base_url, api_key=_OPENAI_KEY, max_retries=0),
    call=lambda client: client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES),
    stream=lambda client: read_through(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    ),
    not_found_error="NotFoundError",
    tokens={
        "input": fake_provider.USAGE_IN,
        "output": fake_provider.USAGE_OUT,
        "cache_read": fake_provider.USAGE_CACHED,
        "reasoning": fake_provider.USAGE_REASONING,
    },
)
_OPENAI_KEY = "sk-proj-CONFORMANCEkey1234567890abcdef"

# --- Anthropic ---------------------------------------------------------------------------------------

ANTHROPIC = ProviderCase(
    name="anthropic",
    provider_name="anthropic",
    operation="chat",
    model=anthropic_server.DEFAULT_MODEL,
    fake=FakeAnthropic,
    make_client=lambda fake: anthropic.Anthropic(
        base_url=fake.base_url, api_key="sk-ant-api03-CONFORMANCEkey1234567890", max_retries=0
    ),
    call=lambda client: client.messages.create(
        model=anthropic_server.DEFAULT_MODEL, max_tokens=256, messages=MESSAGES
    ),
    stream=lambda client: read_through(
        client.messages.create(
            model=anthropic_server.DEFAULT_MODEL, max_tokens=256, messages=MESSAGES, stream=True
        )
    ),
    not_found_error="NotFoundError",
    tokens={
        "input": anthropic_server.USAGE_IN + anthropic_server.USAGE_CACHE_READ,
        "output": anthropic_server.USAGE_OUT,
        "cache_read": anthropic_server.USAGE_CACHE_READ,
        "cache_creation": 0,
    },
)

# --- Google ------------------------------------------------------------------------------------------

GOOGLE = ProviderCase(
    name="google",
    provider_name="gcp.gemini",
    operation="generate_content",
    model=google_server.DEFAULT_MODEL,
    fake=FakeGoogle,
    make_client=lambda fake: genai.Client(
        api_key=google_server.API_KEY, http_options=types.HttpOptions(base_url=fake.base_url)
    ),
    call=lambda client: client.models.generate_content(model=google_server.DEFAULT_MODEL, contents=PROMPT),
    stream=lambda client: read_through(
        client.models.generate_content_stream(model=google_server.DEFAULT_MODEL, contents=PROMPT)
    ),
    not_found_error="ClientError",
    tokens={
        "input": google_server.PROMPT_TOKENS,
        "output": google_server.CANDIDATES_TOKENS + google_server.THOUGHTS_TOKENS,
        "cache_read": google_server.CACHED_TOKENS,
        "reasoning": google_server.THOUGHTS_TOKENS,
    },
)

# --- AWS Bedrock (Converse) --------------------------------------------------------------------------


def _bedrock_client(fake: FakeBedrock) -> Any:
    from tests.conftest import make_bedrock_client

    return make_bedrock_client(fake.base_url)


def _bedrock_tokens() -> dict[str, int]:
    from tests.conftest import CONVERSE_INPUT_TOKENS, _converse_reports_cache_reads

    tokens = {"input": CONVERSE_INPUT_TOKENS, "output": bedrock_server.OUTPUT_TOKENS}
    if _converse_reports_cache_reads():  # botocore drops the counts its service model lacks
        tokens.update(cache_read=bedrock_server.CACHE_READ_TOKENS, cache_creation=0)
    return tokens


BEDROCK = ProviderCase(
    name="bedrock",
    provider_name="aws.bedrock",
    operation="chat",
    model=bedrock_server.CLAUDE,
    fake=FakeBedrock,
    make_client=_bedrock_client,
    call=lambda client: client.converse(modelId=bedrock_server.CLAUDE, messages=_BEDROCK_MESSAGES),
    stream=lambda client: read_through(
        client.converse_stream(modelId=bedrock_server.CLAUDE, messages=_BEDROCK_MESSAGES)["stream"]
    ),
    not_found_error="ResourceNotFoundException",
    tokens=_bedrock_tokens(),
    stream_error="stream_internal",
    not_found="resource_not_found",
)
_BEDROCK_MESSAGES = [{"role": "user", "content": [{"text": PROMPT}]}]

CASES = (OPENAI, ANTHROPIC, GOOGLE, BEDROCK)
