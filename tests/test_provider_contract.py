"""The provider contract: five required answers, hooks that default to nothing, categories in one place."""

from __future__ import annotations

from typing import Any

import pytest

from otel_aitrack.names import Category
from otel_aitrack.providers.anthropic import AnthropicProvider
from otel_aitrack.providers.base import Endpoint, ErrorDetails, Provider, ResponseDetails, StreamState
from otel_aitrack.providers.bedrock import BedrockProvider
from otel_aitrack.providers.google import GoogleProvider
from otel_aitrack.providers.openai import OpenAIProvider

REQUIRED = {"request_attributes", "response_details", "is_stream", "stream_state", "error_details"}


class Minimal(Provider):
    """What a new provider must write, and nothing else."""

    name = "example"
    package = "example_sdk"
    endpoints = ()

    def request_attributes(self, endpoint: Endpoint, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {}

    def response_details(self, endpoint: Endpoint, result: Any, capture: bool) -> ResponseDetails:
        return ResponseDetails()

    def is_stream(self, result: Any) -> bool:
        return False

    def stream_state(self, endpoint: Endpoint, stream: Any, capture: bool) -> StreamState:
        raise NotImplementedError

    def error_details(self, error: BaseException) -> ErrorDetails:
        status = getattr(error, "status_code", None)
        return ErrorDetails(status, None, None, self.category(error, type(error).__name__, status, None))


def test_the_required_part_is_the_abstract_part() -> None:
    assert Provider.__abstractmethods__ == REQUIRED


def test_a_provider_missing_an_answer_cannot_be_made_and_is_told_which() -> None:
    class Forgetful(Provider):
        name, package, endpoints = "x", "x", ()

        def request_attributes(
            self, endpoint: Endpoint, instance: Any, kwargs: dict[str, Any]
        ) -> dict[str, Any]:
            return {}

    with pytest.raises(TypeError, match="error_details"):
        Forgetful()  # type: ignore[abstract]


def test_the_hooks_default_to_nothing_to_do() -> None:
    provider = Minimal()
    assert (provider.retry_hooks(), provider.send_hooks(), provider.own_span_hooks()) == ((), (), ())
    assert provider.own_span_of_call((), {}) is None
    assert provider.input_messages(Endpoint("m", "C.f", "chat", False), {}) == {}
    with pytest.raises(LookupError, match="Minimal has no deferred endpoint"):
        provider.defer_request(Endpoint("m", "C.f", "chat", False, deferred=True), object(), lambda r: r)


def test_the_default_categories_read_the_class_status_and_code() -> None:
    provider = Minimal()
    assert provider.category(None, "RateLimitError", 429, None) == Category.RATE_LIMIT
    assert provider.category(TimeoutError(), "TimeoutError", None, None) == Category.TIMEOUT
    assert provider.category(None, "APIError", 429, "insufficient_quota") == Category.QUOTA


@pytest.mark.parametrize(
    ("provider", "stream_event", "expected"),
    [
        (OpenAIProvider(), ("ResponseFailedEvent", "server_error"), Category.OTHER),
        (AnthropicProvider(), ("APIStatusError", "overloaded_error"), Category.SERVER),
        (GoogleProvider(), ("ServerError", "UNAVAILABLE"), Category.SERVER),
        (BedrockProvider(), ("ThrottlingException", "throttlingException"), Category.RATE_LIMIT),
    ],
    ids=["openai", "anthropic", "google", "bedrock"],
)
def test_each_provider_categorises_a_stream_error_event_in_its_one_place(
    provider: Provider, stream_event: tuple[str, str], expected: str
) -> None:
    error_type, code = stream_event
    assert provider.category(None, error_type, None, code) == expected


@pytest.mark.parametrize(
    "provider", [OpenAIProvider(), AnthropicProvider(), GoogleProvider(), BedrockProvider()]
)
def test_every_shipped_provider_is_a_complete_provider(provider: Provider) -> None:
    assert isinstance(provider, Provider)
    assert provider.endpoints and provider.package and provider.name
