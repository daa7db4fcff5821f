"""What is patched: each provider's endpoints (and retry hook), wrapped and unwrapped as one list."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from typing import Any

from .layering import unwrap_ours, wrap_innermost
from .providers.anthropic import AnthropicProvider
from .providers.base import Provider
from .providers.bedrock import BedrockProvider
from .providers.google import GoogleProvider
from .providers.openai import OpenAIProvider
from .wrappers import method_wrapper, own_span_stand_in, response_reader, retry_counter, send_counter

_logger = logging.getLogger(__name__)

PROVIDERS: tuple[Provider, ...] = (OpenAIProvider(), AnthropicProvider(), GoogleProvider(), BedrockProvider())

# What this process patched, so `uninstrument()` restores exactly that.
_patched: list[tuple[str, str]] = []
# Our wrapper of each, found and taken out wherever other instrumentations left it (layering.py).
_ours: dict[tuple[str, str], Any] = {}


def patch_all() -> None:
    for provider in PROVIDERS:
        for module, method, wrapper in _targets(provider):
            if (module, method) in _patched or not _wrap(module, method, wrapper):
                continue
            _patched.append((module, method))


def unpatch_all() -> None:
    while _patched:
        module, method = _patched.pop()
        owner_path, _, name = method.rpartition(".")
        owner = _resolve(importlib.import_module(module), owner_path)
        unwrap_ours(owner, name, _ours.pop((module, method)))


def patched() -> tuple[tuple[str, str], ...]:
    return tuple(_patched)


def _targets(provider: Provider) -> Iterator[tuple[str, str, Any]]:
    for endpoint in provider.endpoints:
        yield endpoint.module, endpoint.method, method_wrapper(provider, endpoint)
    for module, method in provider.retry_hooks():
        yield module, method, retry_counter
    for module, method in provider.send_hooks():
        yield module, method, send_counter
    for module, method in provider.response_hooks():
        yield module, method, response_reader
    for module, function in provider.own_span_hooks():
        yield module, function, own_span_stand_in(provider)


def _wrap(module: str, method: str, wrapper: Any) -> bool:
    """Wrap one method; an SDK (or a method of it) that is not installed is skipped quietly."""
    try:
        imported = importlib.import_module(module)
        owner_path, _, name = method.rpartition(".")
        getattr(_resolve(imported, owner_path), name)
    except (ImportError, AttributeError):
        _logger.debug("otel-aitrack: %s.%s not available, not instrumented", module, method)
        return False
    _ours[(module, method)] = wrap_innermost(module, method, wrapper)
    return True


def _resolve(obj: object, dotted: str) -> object:
    for part in filter(None, dotted.split(".")):
        obj = getattr(obj, part)
    return obj
