"""OpenAI-compatible endpoints: which `gen_ai.provider.name` an openai-SDK call gets, and how it is set.

Precedence: track(provider_name=) > set_provider_name(client) > configured host map > what the client
declares (AzureOpenAI, …) > the base URL's well-known host > `openai`. The real openai SDK talks over
HTTP to the loopback fake, with clients named as each case requires.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GenAiProviderNameValues

import otel_aitrack
from otel_aitrack import names
from otel_aitrack.names import ProviderName
from otel_aitrack.providers import compatible
from otel_aitrack.providers.compatible import (
    KNOWN_HOSTS,
    HostRule,
    configured_name,
    declared_name,
    detect_provider_name,
    host_rules,
)
from tests.conftest import API_KEY, Telemetry, instrumented
from tests.fakes import openai_server
from tests.fakes.openai_server import FakeOpenAI
from tests.support import attrs

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = [{"role": "user", "content": "hi"}]
API_VERSION = "2024-10-21"
# Added to the semantic conventions' registry after the newest semconv package installed here.
NEWER_THAN_THE_SEMCONV_PACKAGE = {"moonshot_ai"}


def chat(client: openai.OpenAI, **extra: object) -> object:
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **extra)


def provider(telemetry: Telemetry) -> str:
    return str(attrs(telemetry.span())[names.GEN_AI_PROVIDER_NAME])


def counted_provider_names(telemetry: Telemetry) -> set[str]:
    return {p.attributes[names.GEN_AI_PROVIDER_NAME] for p in telemetry.points(names.METRIC_CALLS)}


def plain_client(fake: FakeOpenAI, **options: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0, **options)


def azure_client(fake: FakeOpenAI) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=f"http://127.0.0.1:{fake.port}",
        api_key=API_KEY,
        api_version=API_VERSION,
        max_retries=0,
    )


@pytest.fixture
def azure_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake answers Azure's deployment route too (`/openai/deployments/{model}/chat/completions`)."""
    monkeypatch.setitem(openai_server.ROUTES, "/openai/deployments/gpt-4o-mini/chat/completions", "chat")


# --- Built-in detection: a pure function of the base URL ----------------------------------------

DETECTED = [
    ("https://api.openai.com/v1", "openai"),
    ("https://my-resource.openai.azure.com/openai/", "azure.ai.openai"),
    ("https://my-resource.openai.azure.com/openai/deployments/gpt-4o/", "azure.ai.openai"),
    ("https://my-resource.cognitiveservices.azure.com/openai/v1/", "azure.ai.openai"),
    ("https://my-resource.services.ai.azure.com/openai/v1/", "azure.ai.openai"),
    ("https://my-resource.services.ai.azure.com/models", "azure.ai.inference"),
    ("https://my-endpoint.eastus2.models.ai.azure.com/v1", "azure.ai.inference"),
    ("https://api.groq.com/openai/v1", "groq"),
    ("https://api.deepseek.com", "deepseek"),
    ("https://api.deepseek.com/v1", "deepseek"),
    ("https://api.mistral.ai/v1", "mistral_ai"),
    ("https://api.x.ai/v1", "x_ai"),
    ("https://api.perplexity.ai", "perplexity"),
    ("https://api.moonshot.ai/v1", "moonshot_ai"),
    ("https://api.cohere.ai/compatibility/v1", "cohere"),
    ("https://generativelanguage.googleapis.com/v1beta/openai/", "gcp.gemini"),
    (
        "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/endpoints/openapi",
        "gcp.vertex_ai",
    ),
    ("https://api.anthropic.com/v1/", "anthropic"),
    ("https://bedrock-runtime.us-east-1.amazonaws.com/openai/v1", "aws.bedrock"),
    ("https://bedrock-mantle.us-east-1.api.aws/v1", "aws.bedrock"),
    ("https://API.GROQ.COM/openai/v1", "groq"),  # host names are case-insensitive
    ("https://api.groq.com./openai/v1", "groq"),  # a fully qualified name's trailing dot
]

NOT_DETECTED = [
    "http://localhost:8000/v1",  # vLLM
    "http://127.0.0.1:11434/v1",  # Ollama
    "http://litellm.internal:4000",  # a proxy
    "https://api.groq.com.attacker.example/openai/v1",
    "https://openai.azure.com.attacker.example/openai/",
    "https://notapi.openai.com/v1",
    "not a url",
    "",
]


@pytest.mark.parametrize(("base_url", "expected"), DETECTED)
def test_well_known_hosts_are_detected(base_url: str, expected: str) -> None:
    assert detect_provider_name(base_url) == expected


@pytest.mark.parametrize("base_url", NOT_DETECTED)
def test_other_servers_are_not_guessed(base_url: str) -> None:
    assert detect_provider_name(base_url) is None


def test_every_built_in_value_is_in_the_semantic_conventions_registry_and_documented() -> None:
    registry = {member.value for member in GenAiProviderNameValues} | NEWER_THAN_THE_SEMCONV_PACKAGE
    doc = (ROOT / "docs" / "telemetry.md").read_text()
    values = {value for key, value in vars(ProviderName).items() if key.isupper()}
    assert {name for _, name, _ in KNOWN_HOSTS} <= values
    for value in values:
        assert value in registry, value
        assert f"`{value}`" in doc, f"{value} missing from docs/telemetry.md"


def test_clients_that_declare_their_provider() -> None:
    azure = openai.AzureOpenAI(azure_endpoint="http://127.0.0.1:9", api_key="k", api_version=API_VERSION)
    async_azure = openai.AsyncAzureOpenAI(
        azure_endpoint="http://127.0.0.1:9", api_key="k", api_version=API_VERSION
    )
    assert declared_name(azure) == declared_name(async_azure) == "azure.ai.openai"
    assert declared_name(openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k")) is None
    if hasattr(openai, "BedrockOpenAI"):  # openai 3.x
        bedrock = openai.BedrockOpenAI(api_key="k", aws_region="us-east-1")
        assert declared_name(bedrock) == "aws.bedrock"


# --- The configured host map: pure matching ------------------------------------------------------


def test_host_rules_read_hosts_ports_patterns_and_urls() -> None:
    rules = host_rules(
        [
            ("ollama.lan", "ollama"),
            ("llm.internal:8000", "vllm"),
            ("*.gpu.internal", "tgi"),
            ("[::1]:9000", "lmstudio"),
            ("http://proxy.internal:4000/v1", "litellm"),
            ("llm.internal:not-a-port", "ignored"),
            (":8000", "ignored"),
        ]
    )
    assert rules[0] == HostRule("llm.internal", 8000, "vllm"), "a port-specific rule is tried first"
    assert {rule.name for rule in rules} == {"ollama", "vllm", "tgi", "lmstudio", "litellm"}
    assert configured_name("llm.internal", 8000, rules) == "vllm"
    assert configured_name("llm.internal", 8001, rules) is None
    assert configured_name("ollama.lan", 11434, rules) == "ollama"
    assert configured_name("node7.gpu.internal", 443, rules) == "tgi"
    assert configured_name("::1", 9000, rules) == "lmstudio"
    assert configured_name("proxy.internal", 4000, rules) == "litellm"


def test_a_port_specific_rule_beats_a_host_wide_one_whatever_the_order() -> None:
    rules = host_rules([("llm.internal", "ollama"), ("llm.internal:8000", "vllm")])
    assert configured_name("llm.internal", 8000, rules) == "vllm"
    assert configured_name("llm.internal", 11434, rules) == "ollama"


# --- End to end: the real SDK over HTTP ----------------------------------------------------------


def test_an_unknown_server_stays_openai_on_span_and_metrics(fake: FakeOpenAI, telemetry: Telemetry) -> None:
    chat(plain_client(fake))
    assert provider(telemetry) == "openai"
    assert counted_provider_names(telemetry) == {"openai"}


def test_the_azure_client_is_azure_ai_openai_on_success_failure_and_stream(
    fake: FakeOpenAI, telemetry: Telemetry, azure_routes: None
) -> None:
    client = azure_client(fake)
    completion = chat(client)
    assert completion.choices[0].message.content
    fake.plan("rate_limit")
    with pytest.raises(openai.RateLimitError):
        chat(client)
    text = "".join(c.choices[0].delta.content or "" for c in chat(client, stream=True) if c.choices)
    assert text
    spans = telemetry.spans()
    assert [attrs(s)[names.GEN_AI_PROVIDER_NAME] for s in spans] == ["azure.ai.openai"] * 3
    assert attrs(spans[1])[names.ERROR_TYPE] == "RateLimitError"
    assert fake.requests[0].path.startswith("/openai/deployments/gpt-4o-mini/chat/completions")
    assert counted_provider_names(telemetry) == {"azure.ai.openai"}
    durations = telemetry.points(names.METRIC_OPERATION_DURATION)
    assert {p.attributes[names.GEN_AI_PROVIDER_NAME] for p in durations} == {"azure.ai.openai"}


def test_set_provider_name_names_the_client_and_its_copies_only(
    fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    named, other = plain_client(fake), plain_client(fake)
    otel_aitrack.set_provider_name(named, "vllm")
    chat(named)
    chat(named.with_options(timeout=30))  # a copy: same HTTP client, same base URL
    chat(other)  # another client to the same server
    chat(named.with_options(base_url=f"http://localhost:{fake.port}/v1"))  # a copy pointed elsewhere
    otel_aitrack.set_provider_name(named, None)
    chat(named)
    names_seen = [attrs(s)[names.GEN_AI_PROVIDER_NAME] for s in telemetry.spans()]
    assert names_seen == ["vllm", "vllm", "openai", "openai", "openai"]
    assert telemetry.value(names.METRIC_CALLS, gen_ai__provider__name="vllm") == 2
    assert telemetry.value(names.METRIC_CALLS, gen_ai__provider__name="openai") == 3


def test_set_provider_name_does_not_touch_the_client(fake: FakeOpenAI, telemetry: Telemetry) -> None:
    client = plain_client(fake)
    before = dict(vars(client))
    otel_aitrack.set_provider_name(client, "vllm")
    assert dict(vars(client)) == before
    assert type(client) is openai.OpenAI
    completion = chat(client)
    assert completion.choices[0].message.content


async def test_set_provider_name_on_an_async_client(fake: FakeOpenAI, telemetry: Telemetry) -> None:
    client = openai.AsyncOpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    otel_aitrack.set_provider_name(client, "ollama")
    await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert provider(telemetry) == "ollama"


def test_track_provider_name_applies_to_openai_calls_only(
    fake: FakeOpenAI,
    telemetry: Telemetry,
    anthropic_client: anthropic.Anthropic,
) -> None:
    """A block that falls back to Anthropic keeps `anthropic` on the fallback's span."""
    client = plain_client(fake)
    fake.plan("server_error")
    with otel_aitrack.track("answer", provider_name="vllm"):
        try:
            chat(client)
        except openai.InternalServerError:
            anthropic_client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES)
    spans = telemetry.spans()
    assert [attrs(s)[names.GEN_AI_PROVIDER_NAME] for s in spans] == ["vllm", "anthropic"]
    assert [attrs(s).get(names.ERROR_TYPE) for s in spans] == ["InternalServerError", None]
    stats = otel_aitrack.stats()["answer"]
    assert (stats.total_calls, stats.total_failed_calls) == (2, 1)


def test_track_beats_the_client_name_and_nested_blocks_inherit_it(
    fake: FakeOpenAI, telemetry: Telemetry
) -> None:
    client = plain_client(fake)
    otel_aitrack.set_provider_name(client, "vllm")
    with otel_aitrack.track("outer", provider_name="ollama"):
        chat(client)
        with otel_aitrack.track("inner"):
            chat(client)
        with otel_aitrack.track("inner", provider_name="lmstudio"):
            chat(client)
    chat(client)
    names_seen = [attrs(s)[names.GEN_AI_PROVIDER_NAME] for s in telemetry.spans()]
    assert names_seen == ["ollama", "ollama", "lmstudio", "vllm"]


@pytest.fixture
def host_mapped(fake: FakeOpenAI) -> Iterator[Telemetry]:
    fake.reset()
    with instrumented(provider_names={f"127.0.0.1:{fake.port}": "vllm", "localhost": "ollama"}) as seen:
        yield seen


def test_the_configured_host_map_names_the_loopback_server(
    fake: FakeOpenAI, host_mapped: Telemetry, azure_routes: None
) -> None:
    chat(plain_client(fake))
    chat(azure_client(fake))  # the host map wins over the client's own declaration
    chat(plain_client(fake).with_options(base_url=f"http://localhost:{fake.port}/v1"))
    names_seen = [attrs(s)[names.GEN_AI_PROVIDER_NAME] for s in host_mapped.spans()]
    assert names_seen == ["vllm", "vllm", "ollama"]
    assert counted_provider_names(host_mapped) == {"vllm", "ollama"}


def test_a_client_name_beats_the_host_map(fake: FakeOpenAI, host_mapped: Telemetry) -> None:
    client = plain_client(fake)
    otel_aitrack.set_provider_name(client, "tgi")
    chat(client)
    assert provider(host_mapped) == "tgi"


def test_the_host_map_from_the_environment(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_AITRACK_PROVIDER_NAMES", f"other.host=x, 127.0.0.1:{fake.port}=ollama")
    fake.reset()
    with instrumented() as seen:
        chat(plain_client(fake))
    assert provider(seen) == "ollama"


def test_a_new_instrument_forgets_the_previous_host_map(fake: FakeOpenAI) -> None:
    fake.reset()
    client = plain_client(fake)
    with instrumented(provider_names={"127.0.0.1": "vllm"}) as seen:
        chat(client)
    assert provider(seen) == "vllm"
    with instrumented() as seen:
        chat(client)
    assert provider(seen) == "openai"


def test_the_base_url_is_worked_out_once_not_per_call(
    fake: FakeOpenAI, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    worked_out: list[str] = []
    real = compatible.base_url_facts

    def counting(text: str, rules: tuple[HostRule, ...]) -> compatible.BaseUrl:
        worked_out.append(text)
        return real(text, rules)

    monkeypatch.setattr(compatible, "base_url_facts", counting)
    compatible.configure(())
    client = plain_client(fake)
    for _ in range(5):
        chat(client)
    chat(plain_client(fake))  # another client, the same base URL text: still no new work
    assert worked_out == [fake.base_url + "/"]
    assert len(telemetry.spans()) == 6


def test_bad_names_are_logged_and_ignored_never_raised(
    fake: FakeOpenAI, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    client = plain_client(fake)
    with caplog.at_level(logging.WARNING, logger="otel_aitrack"):
        otel_aitrack.set_provider_name(client, "   ")
        otel_aitrack.set_provider_name(client, 42)
        otel_aitrack.set_provider_name(42, "vllm")  # not a client: cannot be named
        with otel_aitrack.track("x", provider_name=""):
            chat(client)
    assert provider(telemetry) == "openai"
    assert len([r for r in caplog.records if "provider name" in r.getMessage()]) == 3
    assert any("set_provider_name() needs an openai SDK client" in r.getMessage() for r in caplog.records)
