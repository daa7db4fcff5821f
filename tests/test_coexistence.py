"""Beside another OpenAI instrumentation: no crash, one aitrack call per SDK call, each side removable.

Runs against every peer importable here: OpenTelemetry's official `opentelemetry-instrumentation-
genai-openai` (installed by the `test` extra, so always), and, when installed, its older
`opentelemetry-instrumentation-openai-v2`, OpenLLMetry's `opentelemetry-instrumentation-openai` and
OpenInference's `openinference-instrumentation-openai`. Both instrumentation orders; the real openai SDK
over HTTP to the loopback fake; both sides export into the same in-memory SDK, told apart by scope.
See docs/coexistence.md.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import openai.resources.chat.completions as chat_module
import pydantic
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import otel_aitrack
from otel_aitrack import names
from tests.conftest import API_KEY, Telemetry
from tests.fakes.openai_server import FakeOpenAI
from tests.support import OPENTELEMETRY_INSTRUMENT, attrs, console_app_env, console_spans, run_ok

OUR_SCOPE = "otel_aitrack"
MESSAGES = [{"role": "user", "content": "Summarize ticket #42"}]


@dataclass(frozen=True)
class Peer:
    """Another OpenAI instrumentation, as these tests drive it."""

    id: str
    distribution: str
    module: str
    scope: str  # the instrumentation scope of its spans
    wraps_sdk_methods: bool  # wraps `chat.completions.create` & co (its span is our parent), not lower
    unwraps: bool  # its uninstrument() really takes its wrappers off

    def instrumentor(self) -> Any:
        return importlib.import_module(self.module).OpenAIInstrumentor()

    def import_error(self) -> ImportError | None:
        """Why it cannot be used here: not installed, or installed but broken beside this openai."""
        try:
            importlib.import_module(self.module)
        except ImportError as error:
            return error
        return None


PEERS = [
    Peer(
        "official",
        "opentelemetry-instrumentation-genai-openai",
        "opentelemetry.instrumentation.genai.openai",
        "opentelemetry.instrumentation.genai.openai",
        wraps_sdk_methods=True,
        unwraps=True,
    ),
    Peer(
        "openai_v2",
        "opentelemetry-instrumentation-openai-v2",
        "opentelemetry.instrumentation.openai_v2",
        "opentelemetry.instrumentation.openai_v2",
        wraps_sdk_methods=True,
        unwraps=True,
    ),
    Peer(
        "openllmetry",
        "opentelemetry-instrumentation-openai (OpenLLMetry)",
        "opentelemetry.instrumentation.openai",
        "opentelemetry.instrumentation.openai.v1",
        wraps_sdk_methods=True,
        # 0.62.4 hands `unwrap` a module path and "Class.method", which it cannot resolve: its
        # uninstrument() leaves every wrapper in place, with or without otel-aitrack.
        unwraps=False,
    ),
    Peer(
        "openinference",
        "openinference-instrumentation-openai",
        "openinference.instrumentation.openai",
        "openinference.instrumentation.openai",
        wraps_sdk_methods=False,  # wraps `OpenAI.request`, below the resource methods: our child
        unwraps=True,
    ),
]
OFFICIAL = PEERS[0]
AVAILABLE = [peer for peer in PEERS if peer.import_error() is None]


@dataclass
class SideBySide:
    """otel-aitrack and a peer, instrumented into the same in-memory SDK."""

    seen: Telemetry
    ours: otel_aitrack.AITrackInstrumentor
    theirs: Any
    peer: Peer

    def instrument(self, instrumentor: Any) -> None:
        instrumentor.instrument(
            tracer_provider=self.seen.tracer_provider,
            meter_provider=self.seen.meter_provider,
            logger_provider=self.seen.logger_provider,
        )

    def our_spans(self) -> list[ReadableSpan]:
        return [s for s in self.seen.spans() if s.instrumentation_scope.name == OUR_SCOPE]

    def their_spans(self) -> list[ReadableSpan]:
        return [s for s in self.seen.spans() if s.instrumentation_scope.name == self.peer.scope]

    def our_points(self, metric: str) -> list[Any]:
        data = self.seen.reader.get_metrics_data()
        return [
            point
            for resource in (data.resource_metrics if data else ())
            for scope in resource.scope_metrics
            if scope.scope.name == OUR_SCOPE
            for found in scope.metrics
            if found.name == metric
            for point in found.data.data_points
        ]

    def counted_calls(self) -> int:
        return sum(point.value for point in self.our_points(names.METRIC_CALLS))


def _uninstrument(instrumentor: Any) -> None:
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


def _peer_id(peer: Peer) -> str:
    return peer.id


# The peers this run must test (CI names the ones it installed): one that fails to import fails the run
# instead of silently skipping every side-by-side test.
REQUIRED = {name.strip() for name in os.environ.get("AITRACK_TEST_PEERS", "").split(",") if name.strip()}


@pytest.mark.parametrize("peer", PEERS, ids=_peer_id)
def test_which_peers_are_tested_here(peer: Peer) -> None:
    """One line per peer that the tests below leave out, and why (CI installs the official one)."""
    error = peer.import_error()
    if error is not None:
        assert peer.id not in REQUIRED, f"{peer.distribution} must be tested here: {error!r}"
        pytest.skip(f"{peer.distribution} not tested here: {error!r}")


@pytest.fixture(params=AVAILABLE, ids=_peer_id)
def peer(request: pytest.FixtureRequest) -> Peer:
    return request.param


@pytest.fixture(params=["ours_first", "peer_first"])
def both(request: pytest.FixtureRequest, fake: FakeOpenAI, peer: Peer) -> Iterator[SideBySide]:
    fake.reset()
    otel_aitrack.reset_stats()
    pair = SideBySide(Telemetry(), otel_aitrack.AITrackInstrumentor(), peer.instrumentor(), peer)
    first, second = (pair.ours, pair.theirs) if request.param == "ours_first" else (pair.theirs, pair.ours)
    pair.instrument(first)
    pair.instrument(second)
    try:
        yield pair
    finally:
        _uninstrument(pair.theirs)
        _uninstrument(pair.ours)
        otel_aitrack.reset_stats()


@pytest.fixture
def client(fake: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)


@pytest.fixture
def async_client(fake: FakeOpenAI) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)


def chat(client: openai.OpenAI, **extra: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **extra)


def summarize_ticket(client: openai.OpenAI, fake: FakeOpenAI) -> dict[str, Any]:
    """Success, failure, stream: what the user gets back, in comparable form."""
    with otel_aitrack.track("summarize_ticket"):
        completion = chat(client)
        fake.plan("not_found")
        try:
            chat(client)
        except openai.NotFoundError as error:
            failure = (type(error), str(error), error.status_code, error.code)
        stream = chat(client, stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    return {
        "result": (type(completion), completion.choices[0].message.content, completion.model),
        "failure": failure,
        "stream": (type(stream), text),
    }


def assert_parent_child(pair: SideBySide, ours: list[ReadableSpan]) -> None:
    """The peer's span of a call is its parent (method wrappers) or its child (request wrappers)."""
    theirs = {span.context.span_id: span for span in pair.their_spans()}
    assert theirs, "the peer recorded nothing"
    for span in ours:
        if pair.peer.wraps_sdk_methods and not pair.peer.unwraps:
            # Its wrappers of earlier tests are still there, outermost, exporting to their old SDKs.
            assert span.parent is not None, span.name
        elif pair.peer.wraps_sdk_methods:
            assert span.parent is not None and span.parent.span_id in theirs, span.name
            assert theirs[span.parent.span_id].context.trace_id == span.context.trace_id
        else:
            children = [t for t in theirs.values() if t.parent and t.parent.span_id == span.context.span_id]
            assert len(children) == 1, span.name


# --- One call counted once, whatever the order ------------------------------------------------


def test_success_failure_and_stream_are_each_counted_once(
    both: SideBySide, client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    summarize_ticket(client, fake)
    ours = both.our_spans()
    assert [span.name for span in ours] == ["chat gpt-4o-mini"] * 3
    ok, failed, streamed = (attrs(span) for span in ours)
    assert all(span.kind is SpanKind.CLIENT for span in ours)
    for a in (ok, failed, streamed):
        assert a[names.GEN_AI_OPERATION_NAME] == "chat"
        assert a[names.GEN_AI_PROVIDER_NAME] == "openai"
        assert a[names.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
        assert a[names.GEN_AI_PROMPT_NAME] == "summarize_ticket"
    assert ok[names.GEN_AI_USAGE_INPUT_TOKENS] > 0 and names.ERROR_TYPE not in ok
    assert ours[1].status.status_code is StatusCode.ERROR
    assert failed[names.ERROR_TYPE] == "NotFoundError"
    assert failed[names.HTTP_RESPONSE_STATUS_CODE] == 404
    assert failed[names.AITRACK_ERROR_PROVIDER_CODE] == "model_not_found"
    assert failed[names.AITRACK_ERROR_CATEGORY] == "not_found"
    assert failed[names.AITRACK_REQUEST_ID].startswith("req_")
    assert "in summarize_ticket" in failed[names.AITRACK_ERROR_TRACEBACK]
    assert "does not exist" in failed[names.AITRACK_ERROR_MESSAGE]
    assert streamed[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert_parent_child(both, ours)

    stats = otel_aitrack.stats()["summarize_ticket"]
    assert (stats.total_calls, stats.total_failed_calls, stats.consecutive_failures) == (3, 1, 0)
    assert stats.last_error_code == "NotFoundError"
    assert both.counted_calls() == 3
    durations = both.our_points(names.METRIC_OPERATION_DURATION)
    assert sum(point.count for point in durations) == 3


async def test_async_calls_are_each_counted_once(
    both: SideBySide, async_client: openai.AsyncOpenAI, fake: FakeOpenAI
) -> None:
    with otel_aitrack.track("classify_email"):
        await async_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        fake.plan("rate_limit")
        with pytest.raises(openai.RateLimitError):
            await async_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        stream = await async_client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
        )
        assert [chunk async for chunk in stream]
    ours = both.our_spans()
    assert [attrs(span).get(names.ERROR_TYPE) for span in ours] == [None, "RateLimitError", None]
    assert attrs(ours[2])[names.AITRACK_STREAM_OUTCOME] == "completed"
    assert_parent_child(both, ours)
    stats = otel_aitrack.stats()["classify_email"]
    assert (stats.total_calls, stats.total_failed_calls) == (3, 1)
    assert both.counted_calls() == 3


class Answer(pydantic.BaseModel):
    answer: str


def test_every_instrumented_method_is_counted_once(
    both: SideBySide, client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    with otel_aitrack.track("everything"):
        client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Answer)
        client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
        client.responses.create(model="gpt-4o-mini", input="hi")
        assert [event.type for event in client.responses.create(model="gpt-4o-mini", input="hi", stream=True)]
        client.embeddings.create(model="text-embedding-3-small", input="hello")
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi")
        fake.plan("stream_error")
        with pytest.raises(openai.APIError):
            for _ in chat(client, stream=True):
                pass
        aborted = chat(client, stream=True)
        next(iter(aborted))
        aborted.close()
    ours = both.our_spans()
    assert len(ours) == 8
    outcomes = [attrs(span).get(names.AITRACK_STREAM_OUTCOME) for span in ours]
    assert outcomes == [None, None, None, "completed", None, None, "error", "aborted"]
    stats = otel_aitrack.stats()["everything"]
    assert (stats.total_calls, stats.total_failed_calls) == (8, 1)
    assert both.counted_calls() == 8


def test_what_the_user_gets_is_what_the_peer_alone_gives(
    fake: FakeOpenAI, client: openai.OpenAI, peer: Peer
) -> None:
    """Same result types and values, same exception, same stream object type: we change nothing."""
    outcomes = []
    for arrangement in ("peer alone", "ours first", "peer first"):
        fake.reset()
        pair = SideBySide(Telemetry(), otel_aitrack.AITrackInstrumentor(), peer.instrumentor(), peer)
        order = {"peer alone": [pair.theirs], "ours first": [pair.ours, pair.theirs]}
        for instrumentor in order.get(arrangement, [pair.theirs, pair.ours]):
            pair.instrument(instrumentor)
        try:
            outcomes.append(summarize_ticket(client, fake))
        finally:
            _uninstrument(pair.theirs)
            _uninstrument(pair.ours)
            otel_aitrack.reset_stats()
    assert outcomes[0] == outcomes[1] == outcomes[2]


# --- Either side removable ------------------------------------------------------------------------


def test_uninstrumenting_ours_leaves_the_peer_working(
    both: SideBySide, client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    both.ours.uninstrument()
    chat(client)
    assert both.our_spans() == []
    assert both.their_spans(), "the peer's wrapper was removed with ours"
    assert otel_aitrack.stats() == {}

    both.instrument(both.ours)
    chat(client)
    assert len(both.our_spans()) == 1
    assert otel_aitrack.stats()["untracked"].total_calls == 1


def test_uninstrumenting_the_peer_leaves_ours_working(
    both: SideBySide, client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    both.theirs.uninstrument()
    both.seen.spans_exporter.clear()
    fake.plan("server_error")
    with pytest.raises(openai.InternalServerError):
        chat(client)
    ours = both.our_spans()
    assert len(ours) == 1 and attrs(ours[0])[names.ERROR_TYPE] == "InternalServerError"
    if both.peer.unwraps:
        assert both.their_spans() == []
    assert both.counted_calls() == 1


@pytest.mark.parametrize("last", ["ours_last", "peer_last"])
def test_uninstrumenting_both_in_any_order_restores_the_sdk(
    both: SideBySide, client: openai.OpenAI, last: str
) -> None:
    if not both.peer.unwraps:
        pytest.skip(f"{both.peer.distribution} does not take its wrappers off")
    first, second = (both.theirs, both.ours) if last == "ours_last" else (both.ours, both.theirs)
    first.uninstrument()
    second.uninstrument()
    assert vars(chat_module.Completions)["create"] is ORIGINAL_CREATE
    assert vars(chat_module.AsyncCompletions)["create"] is ORIGINAL_ASYNC_CREATE
    chat(client)
    assert both.seen.spans() == []


# Taken at import, before any instrumentation: the SDK's own functions.
ORIGINAL_CREATE = vars(chat_module.Completions)["create"]
ORIGINAL_ASYNC_CREATE = vars(chat_module.AsyncCompletions)["create"]


# --- The layering itself, with a stand-in peer: wrapt in, `opentelemetry...utils.unwrap` out -------


class Target:
    def method(self, trail: list[str]) -> list[str]:
        return [*trail, "sdk"]


ORIGINAL_METHOD = vars(Target)["method"]


def _tagging(tag: str) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return wrapped([*args[0], tag])

    return wrapper


@pytest.mark.parametrize("ours_first", [True, False])
@pytest.mark.parametrize("ours_leave_first", [True, False])
def test_ours_sits_innermost_and_either_side_leaves_without_removing_the_other(
    ours_first: bool, ours_leave_first: bool
) -> None:
    from opentelemetry.instrumentation.utils import unwrap
    from wrapt import wrap_function_wrapper

    from otel_aitrack.layering import unwrap_ours, wrap_innermost

    ours: list[Any] = []

    def wrap_ours() -> None:
        ours.append(wrap_innermost(__name__, "Target.method", _tagging("ours")))

    def wrap_theirs() -> None:
        wrap_function_wrapper(__name__, "Target.method", _tagging("theirs"))

    for step in (wrap_ours, wrap_theirs) if ours_first else (wrap_theirs, wrap_ours):
        step()
    try:
        assert Target().method([]) == ["theirs", "ours", "sdk"]
        if ours_leave_first:
            unwrap_ours(Target, "method", ours[0])
            assert Target().method([]) == ["theirs", "sdk"]
            unwrap(Target, "method")
        else:
            unwrap(Target, "method")  # the peer's way: takes off the outermost wrapper
            assert Target().method([]) == ["ours", "sdk"]
            unwrap_ours(Target, "method", ours[0])
        assert vars(Target)["method"] is ORIGINAL_METHOD
        assert Target().method([]) == ["sdk"]
    finally:
        Target.method = ORIGINAL_METHOD


def test_ours_goes_under_a_wrapper_that_another_unwrap_left_bound_to_the_class() -> None:
    """`unwrap()` of an outer wrapper puts the next one back bound to the class: still a link."""
    from opentelemetry.instrumentation.utils import unwrap
    from wrapt import wrap_function_wrapper

    from otel_aitrack.layering import unwrap_ours, wrap_innermost

    wrap_function_wrapper(__name__, "Target.method", _tagging("stale"))
    wrap_function_wrapper(__name__, "Target.method", _tagging("outer"))
    try:
        unwrap(Target, "method")
        assert type(vars(Target)["method"]).__name__ == "BoundFunctionWrapper"
        ours = wrap_innermost(__name__, "Target.method", _tagging("ours"))
        assert Target().method([]) == ["stale", "ours", "sdk"]
        unwrap_ours(Target, "method", ours)
        assert Target().method([]) == ["stale", "sdk"]
    finally:
        Target.method = ORIGINAL_METHOD


def test_a_stream_proxied_below_us_is_still_followed(
    fake: FakeOpenAI, client: openai.OpenAI, telemetry: Telemetry
) -> None:
    """A request-level peer (OpenInference) returns its own proxy of the SDK's stream to our wrapper."""
    from wrapt import ObjectProxy, wrap_function_wrapper

    class PeerStream(ObjectProxy):  # the shape of OpenInference's `_Stream`
        def __iter__(self) -> Any:
            return self

        def __next__(self) -> Any:
            return self.__wrapped__.__next__()

        def close(self) -> Any:
            return self.__wrapped__.close()

    def proxy_streams(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        result = wrapped(*args, **kwargs)
        return PeerStream(result) if isinstance(result, openai.Stream) else result

    original = vars(openai.OpenAI).get("request")
    wrap_function_wrapper(openai, "OpenAI.request", proxy_streams)
    try:
        stream = chat(client, stream=True)
        assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        aborted = chat(client, stream=True)
        next(iter(aborted))
        aborted.close()
    finally:
        if original is None:
            del openai.OpenAI.request
        else:
            openai.OpenAI.request = original
    outcomes = [attrs(span).get(names.AITRACK_STREAM_OUTCOME) for span in telemetry.spans()]
    assert outcomes == ["completed", "aborted"]


# --- Under the launcher: both entry points loaded -------------------------------------------------

APP = textwrap.dedent(
    """
    import json, sys, openai, otel_aitrack
    client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-proj-coexistKEY0123456789", max_retries=0)
    messages = [{"role": "user", "content": "hi"}]
    with otel_aitrack.track("launcher"):
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        try:
            client.chat.completions.create(model="server_error", messages=messages)
        except openai.InternalServerError as error:
            print("app saw", type(error).__name__, file=sys.stderr)
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        print("app read", text, file=sys.stderr)
    figures = otel_aitrack.stats().get("launcher")
    counted = [figures.total_calls, figures.total_failed_calls] if figures else None
    print("stats", json.dumps(counted), file=sys.stderr)
    """
)


@pytest.mark.parametrize(
    ("disabled", "ours_loaded", "theirs_loaded"),
    [("", True, True), ("openai", True, False), ("aitrack", False, True)],
)
def test_the_launcher_loads_both_and_each_can_be_disabled_by_entry_point_name(
    fake: FakeOpenAI, tmp_path: Path, disabled: str, ours_loaded: bool, theirs_loaded: bool
) -> None:
    if OFFICIAL not in AVAILABLE:
        pytest.skip(f"{OFFICIAL.distribution} not installed")
    fake.reset()
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = console_app_env("coexist-app", disabled=",".join(filter(None, ("httpx", disabled))))
    done = run_ok([OPENTELEMETRY_INSTRUMENT, sys.executable, app, fake.base_url], env=env, timeout=90)
    assert "app saw InternalServerError" in done.stderr
    assert "app read This is a test response." in done.stderr
    spans = console_spans(done.stdout)
    # The console exporter prints no scope: ours carry the prompt type, the official's do not (and the
    # other peers, when installed too, name their spans otherwise: `openai.chat`, `ChatCompletion`).
    ours = [s for s in spans if "gen_ai.prompt.name" in s["attributes"]]
    theirs = [s for s in spans if s["name"].startswith("chat ") and s not in ours]
    assert len(ours) == (3 if ours_loaded else 0), done.stdout
    assert len(theirs) == (3 if theirs_loaded else 0), done.stdout
    assert re.search(r"^stats (.*)$", done.stderr, re.M).group(1) == ("[3, 1]" if ours_loaded else "null")
    if ours_loaded:
        assert [s["attributes"].get("error.type") for s in ours] == [None, "InternalServerError", None]
        assert ours[1]["attributes"]["aitrack.error.category"] == "server"
    if ours_loaded and theirs_loaded:
        their_ids = {s["context"]["span_id"] for s in theirs}
        assert all(s["parent_id"] in their_ids for s in ours), "the official span is the parent of ours"
    assert "coexistKEY" not in done.stdout
