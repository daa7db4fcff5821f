"""track(): context manager and decorator, nested, isolated across threads and tasks."""

from __future__ import annotations

import asyncio
import threading

import openai

import otel_aitrack
from otel_aitrack import names
from otel_aitrack.context import current_tracking
from tests.conftest import Telemetry
from tests.support import attrs

MESSAGES = [{"role": "user", "content": "hi"}]


def test_decorator_on_a_sync_function(client: openai.OpenAI, telemetry: Telemetry) -> None:
    @otel_aitrack.track("translate", task="translate a reply", user="u-1")
    def translate() -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    translate()
    a = attrs(telemetry.span())
    assert (a[names.GEN_AI_PROMPT_NAME], a[names.AITRACK_TASK], a[names.USER_ID]) == (
        "translate",
        "translate a reply",
        "u-1",
    )
    assert translate.__name__ == "translate"


async def test_decorator_on_an_async_function(async_client: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    @otel_aitrack.track("translate")
    async def translate() -> str:
        await async_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return "done"

    assert await translate() == "done"
    assert attrs(telemetry.span())[names.GEN_AI_PROMPT_NAME] == "translate"


async def test_async_with(async_client: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    async with otel_aitrack.track("translate"):
        await async_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert attrs(telemetry.span())[names.GEN_AI_PROMPT_NAME] == "translate"


def test_nested_blocks_inherit_what_they_do_not_set(client: openai.OpenAI, telemetry: Telemetry) -> None:
    with otel_aitrack.track("outer", user="u-9", task="outer task"):
        with otel_aitrack.track("inner", task="inner task"):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    inner, outer = (attrs(s) for s in telemetry.spans())
    assert (inner[names.GEN_AI_PROMPT_NAME], inner[names.AITRACK_TASK], inner[names.USER_ID]) == (
        "inner",
        "inner task",
        "u-9",
    )
    assert (outer[names.GEN_AI_PROMPT_NAME], outer[names.AITRACK_TASK]) == ("outer", "outer task")
    assert current_tracking().prompt_type == names.DEFAULT_PROMPT_TYPE


def test_the_same_block_object_can_be_reentered() -> None:
    block = otel_aitrack.track("again")
    with block, block:
        assert current_tracking().prompt_type == "again"
    assert current_tracking().prompt_type == names.DEFAULT_PROMPT_TYPE


def test_threads_do_not_see_each_others_prompt_type() -> None:
    seen: dict[str, str] = {}
    barrier = threading.Barrier(4)

    @otel_aitrack.track("shared-decorator")
    def inside(name: str) -> None:
        with otel_aitrack.track(name):
            barrier.wait()
            seen[name] = current_tracking().prompt_type

    threads = [threading.Thread(target=inside, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {f"t{i}": f"t{i}" for i in range(4)}


async def test_tasks_do_not_see_each_others_prompt_type() -> None:
    async def inside(name: str) -> str:
        with otel_aitrack.track(name):
            await asyncio.sleep(0.01)
            return current_tracking().prompt_type

    results = await asyncio.gather(*(inside(f"task{i}") for i in range(20)))
    assert results == [f"task{i}" for i in range(20)]


def test_a_bad_prompt_type_is_not_raised_into_the_app(caplog) -> None:
    with otel_aitrack.track(""):
        assert current_tracking().prompt_type == names.DEFAULT_PROMPT_TYPE
    assert "not a prompt type name" in caplog.text
