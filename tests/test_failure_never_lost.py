"""A failure is never lost: whatever internal step fails, the call still ends as a failure, counted.

Each test breaks one step of a failed call's ending (or hands the instrumentation an exception that
breaks it) and checks what must survive: the span ends with status ERROR and `error.type`, the call is
counted in `aitrack.calls` and `stats()`, the consecutive failures move, and the internal error is
counted in `aitrack.instrumentation.errors`. Only the detail that failed is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest
from openai._base_client import SyncAPIClient
from opentelemetry.trace import StatusCode

import otel_aitrack
from otel_aitrack import call as call_module
from otel_aitrack import names
from otel_aitrack.book import FailureBook
from otel_aitrack.call import Call
from otel_aitrack.instruments import Instruments
from otel_aitrack.providers.openai import OpenAIProvider
from otel_aitrack.redaction import REDACTED, Redactor
from tests.conftest import API_KEY, Telemetry, instrumented
from tests.fakes.openai_server import FakeOpenAI
from tests.support import attrs

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def lenient(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production behaviour: internal errors are swallowed (the suite's strict mode would re-raise)."""
    monkeypatch.setenv("OTEL_AITRACK_STRICT", "0")


def fail_twice(client: openai.OpenAI, fake: FakeOpenAI) -> list[BaseException]:
    """Two 404s under one prompt type, as the application sees them."""
    fake.plan("not_found", "not_found")
    raised = []
    with otel_aitrack.track("summarize_ticket"):
        for _ in range(2):
            with pytest.raises(openai.NotFoundError) as caught:
                client.chat.completions.create(model="gpt-5-nano-x", messages=MESSAGES)
            raised.append(caught.value)
    return raised


def assert_counted_failures(telemetry: Telemetry, error_type: str = "NotFoundError", count: int = 2) -> None:
    spans = telemetry.spans()
    assert len(spans) == count
    for span in spans:
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[names.ERROR_TYPE] == error_type
    stats = otel_aitrack.stats()["summarize_ticket"]
    assert (stats.total_calls, stats.total_failed_calls, stats.consecutive_failures) == (count, count, count)
    assert stats.last_error_code == error_type
    assert telemetry.value(names.METRIC_CALLS, gen_ai__prompt__name="summarize_ticket") == count
    consecutive = telemetry.value(names.METRIC_CONSECUTIVE_FAILURES, gen_ai__prompt__name="summarize_ticket")
    assert consecutive == count


def internal_errors(telemetry: Telemetry) -> dict[str, int]:
    return {
        point.attributes[names.ERROR_TYPE]: point.value
        for point in telemetry.points(names.METRIC_INSTRUMENTATION_ERRORS)
    }


def boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("instrumentation bug")


# --- exceptions that break the instrumentation's readers --------------------------------------------


class _HostileProperty:
    """A property that can be set (the SDK's constructor sets it) but raises when read."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        raise ValueError(f"{self.name} cannot be read")

    def __set__(self, instance: object, value: object) -> None:
        pass


class StatusCodeRaises(openai.NotFoundError):
    status_code = _HostileProperty()  # type: ignore[assignment]


class CodeRaises(openai.NotFoundError):
    code = _HostileProperty()  # type: ignore[assignment]


def sdk_raises(monkeypatch: pytest.MonkeyPatch, make: Callable[[BaseException], BaseException]) -> None:
    """The SDK raises `make(error it would have raised)` for every error status."""
    original = SyncAPIClient._make_status_error_from_response

    def replaced(self: Any, response: Any) -> BaseException:
        return make(original(self, response))

    monkeypatch.setattr(SyncAPIClient, "_make_status_error_from_response", replaced)


def as_class(cls: type[openai.NotFoundError]) -> Callable[[BaseException], BaseException]:
    def make(error: BaseException) -> BaseException:
        assert isinstance(error, openai.APIStatusError)
        return cls(error.message, response=error.response, body=error.body)

    return make


@pytest.mark.parametrize("cls", [StatusCodeRaises, CodeRaises], ids=["status_code", "code"])
def test_an_exception_whose_property_raises_is_still_a_counted_failure(
    client: openai.OpenAI,
    fake: FakeOpenAI,
    telemetry: Telemetry,
    monkeypatch: pytest.MonkeyPatch,
    cls: type[openai.NotFoundError],
) -> None:
    sdk_raises(monkeypatch, as_class(cls))
    raised = fail_twice(client, fake)
    assert all(type(error) is cls for error in raised)
    assert_counted_failures(telemetry, cls.__name__)
    span = telemetry.spans()[-1]
    # Only the unreadable detail is missing: the request id and the message are still there.
    assert attrs(span)[names.AITRACK_REQUEST_ID].startswith("req_")
    assert "does not exist" in attrs(span)[names.AITRACK_ERROR_MESSAGE]
    assert internal_errors(telemetry) == {}, "an unreadable attribute is no internal error: it is read safely"


def test_a_cause_chain_3000_deep_is_printed_iteratively_and_bounded(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def deep_chain() -> BaseException:
        cause: BaseException | None = None
        for depth in range(3000):
            link = OSError(f"link {depth}")
            link.__cause__ = cause
            cause = link
        assert cause is not None
        return cause

    original = SyncAPIClient.request

    def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except openai.NotFoundError as error:
            raise error from deep_chain()

    monkeypatch.setattr(SyncAPIClient, "request", request)
    fail_twice(client, fake)
    assert_counted_failures(telemetry)
    stack = attrs(telemetry.spans()[-1])[names.AITRACK_ERROR_TRACEBACK]
    assert len(stack) <= 8192
    assert "earlier chained exceptions omitted by otel-aitrack" in stack
    assert "OSError: link 2999" in stack, "the nearest cause is printed"
    assert "OSError: link 0\n" not in stack, "the oldest ones are counted, not printed"
    last_line = stack.rstrip().splitlines()[-1]
    assert last_line.startswith("openai.NotFoundError: "), "the call's own exception is printed last"
    assert "does not exist or you do not have access to it." in last_line
    assert internal_errors(telemetry) == {}


def test_a_string_where_a_number_belongs_is_refused_at_instrument_naming_the_keyword(
    fake: FakeOpenAI,
) -> None:
    with pytest.raises(TypeError, match="traceback_max_length"), instrumented(traceback_max_length="4096"):
        pass  # pragma: no cover - never reached
    # Nothing was left half set up: the application's calls run uninstrumented.
    client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices


# --- each step of the ending broken in turn ----------------------------------------------------------

# The steps of a call's ending, by name: (owner, attribute) that `broken` makes raise.
STEPS: dict[str, tuple[Any, str]] = {
    "error details": (OpenAIProvider, "error_details"),
    "error message": (Call, "_message"),
    "traceback": (call_module, "full_traceback"),
    "exception event": (Call, "_emit_exception"),
    "failure attributes": (call_module, "_failure_attributes"),
    "histograms": (Instruments, "record_call"),
    "response details": (OpenAIProvider, "response_details"),
    "token attributes": (call_module, "token_attributes"),
    "success count": (FailureBook, "record_success"),
    "failure count": (FailureBook, "record_failure"),
}
FAILURE_STEPS = [
    "error details",
    "error message",
    "exception event",
    "failure attributes",
    "histograms",
    "traceback",
]
SUCCESS_STEPS = ["histograms", "response details", "success count", "token attributes"]


@pytest.fixture
def broken(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, lenient: None) -> str:
    """The step named by the test's parameter, made to raise (internal errors swallowed, not re-raised)."""
    owner, attribute = STEPS[request.param]
    monkeypatch.setattr(owner, attribute, boom)
    return str(request.param)


@pytest.mark.parametrize("broken", FAILURE_STEPS, indirect=True)
def test_a_broken_step_leaves_out_only_its_own_detail(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry, broken: str
) -> None:
    step = broken
    fail_twice(client, fake)
    spans = telemetry.spans()
    assert len(spans) == 2
    assert all(span.status.status_code is StatusCode.ERROR for span in spans)
    assert all(span.attributes[names.ERROR_TYPE] == "NotFoundError" for span in spans)
    stats = otel_aitrack.stats()["summarize_ticket"]
    assert (stats.total_failed_calls, stats.consecutive_failures) == (2, 2)
    assert internal_errors(telemetry)["RuntimeError"] >= 2
    span = attrs(spans[-1])
    if step == "histograms":
        assert telemetry.points(names.METRIC_OPERATION_DURATION) == []
    else:
        assert telemetry.value(names.METRIC_CALLS, gen_ai__prompt__name="summarize_ticket") == 2
    if step == "error message":  # the message could not be redacted: the class name, never the raw text
        assert span[names.AITRACK_ERROR_MESSAGE] == "NotFoundError"
    if step == "traceback":
        assert names.AITRACK_ERROR_TRACEBACK not in span
        assert "does not exist" in span[names.AITRACK_ERROR_MESSAGE]
    if step == "exception event":
        assert spans[-1].events == ()
    if step == "error details":
        assert names.HTTP_RESPONSE_STATUS_CODE not in span


def test_a_broken_redactor_exports_no_text_it_could_not_check(
    client: openai.OpenAI,
    fake: FakeOpenAI,
    telemetry: Telemetry,
    monkeypatch: pytest.MonkeyPatch,
    lenient: None,
) -> None:
    for method in ("redact", "clean", "spans"):
        monkeypatch.setattr(Redactor, method, boom)
    fake.plan("unauthorized", "unauthorized")  # the 401's message echoes the key
    with otel_aitrack.track("summarize_ticket"):
        for _ in range(2):
            with pytest.raises(openai.AuthenticationError):
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    spans = telemetry.spans()
    assert [span.attributes[names.ERROR_TYPE] for span in spans] == ["AuthenticationError"] * 2
    span = attrs(spans[-1])
    assert span[names.AITRACK_ERROR_MESSAGE] == "AuthenticationError"
    assert span[names.GEN_AI_PROMPT_NAME] == REDACTED, "a label that could not be checked is not exported"
    assert names.AITRACK_ERROR_TRACEBACK not in span
    assert all(API_KEY not in span.to_json() for span in spans)
    stats = otel_aitrack.stats()[REDACTED]
    assert (stats.total_failed_calls, stats.consecutive_failures) == (2, 2)
    assert API_KEY not in repr(otel_aitrack.stats())


@pytest.mark.parametrize("broken", ["failure count"], indirect=True)
def test_a_broken_failure_book_still_ends_and_counts_the_call_in_the_metrics(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry, broken: str
) -> None:
    fail_twice(client, fake)
    spans = telemetry.spans()
    assert [span.attributes[names.ERROR_TYPE] for span in spans] == ["NotFoundError"] * 2
    assert telemetry.value(names.METRIC_CALLS, gen_ai__prompt__name="summarize_ticket") == 2


def test_in_strict_mode_the_internal_error_surfaces_and_the_call_still_ended(
    client: openai.OpenAI, fake: FakeOpenAI, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(call_module, "full_traceback", boom)
    fake.plan("not_found")
    with otel_aitrack.track("summarize_ticket"), pytest.raises(RuntimeError, match="instrumentation bug"):
        client.chat.completions.create(model="gpt-5-nano-x", messages=MESSAGES)
    span = telemetry.span()
    assert span.end_time is not None and span.status.status_code is StatusCode.ERROR
    assert otel_aitrack.stats()["summarize_ticket"].total_failed_calls == 1


# --- the success path: the span always ends ----------------------------------------------------------


@pytest.mark.parametrize("broken", SUCCESS_STEPS, indirect=True)
def test_a_broken_step_of_a_success_still_ends_its_span(
    client: openai.OpenAI, telemetry: Telemetry, broken: str
) -> None:
    step = broken
    with otel_aitrack.track("summarize_ticket"):
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.choices[0].message.content
    span = telemetry.span()
    assert span.end_time is not None
    assert span.status.status_code is StatusCode.UNSET
    assert internal_errors(telemetry) == {"RuntimeError": 1}
    if step != "success count":
        assert otel_aitrack.stats()["summarize_ticket"].total_calls == 1
