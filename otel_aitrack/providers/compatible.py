"""`gen_ai.provider.name` of an openai-SDK call: the openai SDK also talks to OpenAI-compatible servers.

The first answer wins:

1. `track(..., provider_name="vllm")` around the call;
2. `set_provider_name(client, "vllm")` for the client (or a copy of it made with `with_options()`);
3. the configured host map: `instrument(provider_names={...})` or `OTEL_AITRACK_PROVIDER_NAMES`;
4. what the client declares: `AzureOpenAI` → `azure.ai.openai`, `BedrockOpenAI` or an openai 3.x
   `provider=bedrock(...)` → `aws.bedrock`, `provider=vertex(...)` → `gcp.vertex_ai`;
5. the base URL's well-known host (`KNOWN_HOSTS`);
6. `openai` (vLLM, Ollama, LiteLLM, a proxy: any server we cannot tell apart).

What depends on the base URL alone is worked out once per base URL and cached: a call costs a context
variable read and a few dictionary look-ups, never a URL parse or a pattern match.
"""

from __future__ import annotations

import fnmatch
import logging
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from .. import names
from ..context import current_tracking, provider_name_value
from ..names import ProviderName
from .http import server_attributes

_logger = logging.getLogger(__name__)

# (host pattern, name, path part): the first rule whose `*` pattern matches the base URL's host, and
# whose path part (when not empty) occurs in its path, names the provider. Values: the GenAI semantic
# conventions' registry of gen_ai.provider.name; hosts: each provider's OpenAI-compatible base URL.
KNOWN_HOSTS: tuple[tuple[str, str, str], ...] = (
    ("api.openai.com", ProviderName.OPENAI, ""),
    ("*.openai.azure.com", ProviderName.AZURE_AI_OPENAI, ""),
    ("*.cognitiveservices.azure.com", ProviderName.AZURE_AI_OPENAI, ""),
    # Azure AI Foundry resources serve Azure OpenAI under `/openai/...` and AI Inference under `/models`.
    ("*.services.ai.azure.com", ProviderName.AZURE_AI_OPENAI, "/openai"),
    ("*.services.ai.azure.com", ProviderName.AZURE_AI_INFERENCE, ""),
    ("*.models.ai.azure.com", ProviderName.AZURE_AI_INFERENCE, ""),
    ("models.inference.ai.azure.com", ProviderName.AZURE_AI_INFERENCE, ""),
    ("bedrock-runtime*.amazonaws.com", ProviderName.AWS_BEDROCK, ""),
    ("bedrock-runtime*.amazonaws.com.cn", ProviderName.AWS_BEDROCK, ""),
    ("bedrock-mantle*.api.aws", ProviderName.AWS_BEDROCK, ""),
    ("generativelanguage.googleapis.com", ProviderName.GCP_GEMINI, ""),
    ("aiplatform.googleapis.com", ProviderName.GCP_VERTEX_AI, ""),
    ("*-aiplatform.googleapis.com", ProviderName.GCP_VERTEX_AI, ""),
    ("api.anthropic.com", ProviderName.ANTHROPIC, ""),
    ("api.cohere.ai", ProviderName.COHERE, ""),
    ("api.cohere.com", ProviderName.COHERE, ""),
    ("api.deepseek.com", ProviderName.DEEPSEEK, ""),
    ("api.groq.com", ProviderName.GROQ, ""),
    ("api.mistral.ai", ProviderName.MISTRAL_AI, ""),
    ("api.moonshot.ai", ProviderName.MOONSHOT_AI, ""),
    ("api.moonshot.cn", ProviderName.MOONSHOT_AI, ""),
    ("api.perplexity.ai", ProviderName.PERPLEXITY, ""),
    ("api.x.ai", ProviderName.X_AI, ""),
)

# openai SDK clients that declare their provider, by class name along the MRO (a provider module never
# imports its SDK), and the openai 3.x `provider=` factories by the name they give their runtime.
_CLIENT_CLASSES = {
    "AzureOpenAI": ProviderName.AZURE_AI_OPENAI,
    "AsyncAzureOpenAI": ProviderName.AZURE_AI_OPENAI,
    "BedrockOpenAI": ProviderName.AWS_BEDROCK,
    "AsyncBedrockOpenAI": ProviderName.AWS_BEDROCK,
}
_SDK_PROVIDERS = {"bedrock": ProviderName.AWS_BEDROCK, "vertex": ProviderName.GCP_VERTEX_AI}
_declared_by_class: dict[type, str | None] = {}

_CACHE_SIZE = 256


class HostRule(NamedTuple):
    """One entry of the configured host map: `pattern` (a host or a `*` pattern), optional port, name."""

    pattern: str
    port: int | None
    name: str


@dataclass(frozen=True)
class BaseUrl:
    """What a client's base URL tells, worked out once per base URL."""

    text: str
    server: dict[str, Any]  # server.address, server.port
    configured: str | None  # from the configured host map
    detected: str | None  # from KNOWN_HOSTS


# --- Pure functions ------------------------------------------------------------------------------


def detect_provider_name(base_url: str) -> str | None:
    """The well-known provider of a base URL, or None for a server we cannot tell (vLLM, Ollama, …)."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").rstrip(".")
    return known_host_name(host, parts.path) if host else None


def known_host_name(host: str, path: str) -> str | None:
    for pattern, name, path_part in KNOWN_HOSTS:
        if fnmatch.fnmatchcase(host, pattern) and path_part in path:
            return name
    return None


def host_rules(host_map: Iterable[tuple[str, str]]) -> tuple[HostRule, ...]:
    """The configured host map as rules; a rule that names a port is tried before a host-wide one."""
    rules = [rule for rule in (host_rule(key, name) for key, name in host_map) if rule is not None]
    return tuple(sorted(rules, key=lambda rule: rule.port is None))


def host_rule(key: str, name: str) -> HostRule | None:
    """`host`, `host:port`, `*.lan`, `[::1]:8000` or a whole URL; None (logged) when unreadable."""
    parts = urlsplit(key if "://" in key else "//" + key)
    try:
        port = parts.port
    except ValueError:
        port, parts = None, urlsplit("")
    if not parts.hostname:
        _logger.warning("otel-aitrack: provider name host %r is not a host[:port]; ignored", key)
        return None
    return HostRule(parts.hostname.rstrip("."), port, name)


def configured_name(host: str, port: int | None, rules: tuple[HostRule, ...]) -> str | None:
    for rule in rules:
        if (rule.port is None or rule.port == port) and fnmatch.fnmatchcase(host, rule.pattern):
            return rule.name
    return None


def base_url_facts(text: str, rules: tuple[HostRule, ...]) -> BaseUrl:
    server = server_attributes(text)
    parts = urlsplit(text)
    host = (parts.hostname or "").rstrip(".")
    port = server.get(names.SERVER_PORT)
    configured = configured_name(host, port, rules) if host and rules else None
    detected = known_host_name(host, parts.path) if host else None
    return BaseUrl(text, server, configured, detected)


def declared_name(client: Any) -> str | None:
    """The provider an openai SDK client declares by its class or its openai 3.x `provider=`."""
    cls = type(client)
    try:
        name = _declared_by_class[cls]
    except KeyError:
        name = _declared_by_class.setdefault(cls, _class_provider(cls))
    if name is not None:
        return name
    runtime_name = getattr(getattr(client, "_provider_runtime", None), "name", None)
    return _SDK_PROVIDERS.get(runtime_name) if isinstance(runtime_name, str) else None


def _class_provider(cls: type) -> str | None:
    for klass in cls.__mro__:
        if klass.__module__.startswith("openai") and klass.__name__ in _CLIENT_CLASSES:
            return _CLIENT_CLASSES[klass.__name__]
    return None


# --- The base-URL half, cached per configuration ---------------------------------------------------


class ProviderNames:
    """The configured host map and the answers that depend only on a base URL, cached per base URL.

    Keyed first by the base URL object's identity (the SDK keeps one URL object per client, so the
    common call costs one look-up and no `str()`), then by its text. Both caches are bounded.
    """

    def __init__(self, host_map: Iterable[tuple[str, str]] = ()) -> None:
        self.rules = host_rules(host_map)
        self._by_object: dict[int, tuple[object, BaseUrl]] = {}
        self._by_text: dict[str, BaseUrl] = {}

    def base_url(self, value: object) -> BaseUrl:
        entry = self._by_object.get(id(value))
        if entry is not None and entry[0] is value:
            return entry[1]
        text = "" if value is None else str(value)
        facts = self._by_text.get(text)
        if facts is None:
            facts = base_url_facts(text, self.rules)
            _bounded(self._by_text)[text] = facts
        # The entry keeps `value` alive, so its id cannot be reused while the entry exists.
        _bounded(self._by_object)[id(value)] = (value, facts)
        return facts


def _bounded(cache: dict[Any, Any]) -> dict[Any, Any]:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    return cache


_current: list[ProviderNames] = [ProviderNames()]


def configure(host_map: Iterable[tuple[str, str]]) -> None:
    """Use this host map from now on (`instrument()` calls it); every cached base URL is forgotten."""
    _current[0] = ProviderNames(host_map)


def base_url_of(client: Any) -> BaseUrl:
    # `_base_url` is what the `base_url` property returns; openai 3.x's property costs ~1 us a read.
    value = getattr(client, "_base_url", None)
    return _current[0].base_url(value if value is not None else getattr(client, "base_url", None))


# --- Clients named by the user ---------------------------------------------------------------------

_named_clients: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
# A copy made with `client.with_options(...)` or `client.copy()` shares the original's HTTP client:
# it inherits the name while it talks to the same base URL. Keyed by that HTTP client.
_named_transports: weakref.WeakKeyDictionary[Any, tuple[str, str]] = weakref.WeakKeyDictionary()


def set_provider_name(client: object, name: str | None) -> None:
    """Record `name` as the `gen_ai.provider.name` of `client`'s calls; `None` forgets it.

    `client` is an openai SDK client (`OpenAI`, `AsyncOpenAI`, …) talking to an OpenAI-compatible
    server, e.g. `set_provider_name(client, "vllm")`. The client is not modified: the name is kept
    beside it, weakly, and goes when the client goes. Copies of it (`client.with_options(...)`) that
    keep its base URL get the same name. `track(provider_name=...)` still wins for a block.
    """
    value = provider_name_value(name, "set_provider_name()")
    if value is None and name is not None:
        return
    try:
        _name_client(client, value)
    except TypeError:
        _logger.warning(
            "otel-aitrack: set_provider_name() needs an openai SDK client, got %s; ignored",
            type(client).__name__,
        )


def _name_client(client: object, name: str | None) -> None:
    transport = getattr(client, "_client", None)
    text = base_url_of(client).text
    if name is None:
        _named_clients.pop(client, None)
        if transport is not None and _named_transports.get(transport, ("",))[0] == text:
            del _named_transports[transport]
        return
    _named_clients[client] = name
    if transport is not None:
        _named_transports[transport] = (text, name)


def named_client(client: Any, base_url: BaseUrl) -> str | None:
    """The name given with `set_provider_name` to this client, or to the client it was copied from."""
    try:
        name = _named_clients.get(client)
        if name is None:
            transport = getattr(client, "_client", None)
            entry = _named_transports.get(transport) if transport is not None else None
            name = entry[1] if entry is not None and entry[0] == base_url.text else None
    except TypeError:  # not weak-referenceable: never named
        return None
    return name


# --- The answer ------------------------------------------------------------------------------------


def provider_name(client: Any, base_url: BaseUrl) -> str:
    """`gen_ai.provider.name` of a call through the openai SDK `client` to `base_url` (precedence above)."""
    tracked = current_tracking().provider_name
    if tracked is not None:
        return tracked
    named = named_client(client, base_url) if _named_clients else None
    return named or base_url.configured or declared_name(client) or base_url.detected or ProviderName.OPENAI
