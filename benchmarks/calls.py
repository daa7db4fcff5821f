"""The calls the benchmarks make: the real openai SDK against the benchmark's fake, over loopback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai

MESSAGES = [{"role": "user", "content": "hi"}]
MODEL = "gpt-4o-mini"
NOT_FOUND_MODEL = "not_found"  # the fake answers 404 (model_not_found)
STREAM_MODEL = "gpt-4o-mini-100-chunks"  # the benchmark's fake streams STREAM_CHUNKS chunks
STREAM_CHUNKS = 100
API_KEY = "sk-proj-benchmark000000"

Call = Callable[[openai.OpenAI], Any]


def new_client(base_url: str) -> openai.OpenAI:
    """No retries: one attempt per call, so that every figure is per request."""
    return openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)


def success(client: openai.OpenAI, model: str = MODEL) -> Any:
    return client.chat.completions.create(model=model, messages=MESSAGES)


def failure(client: openai.OpenAI, model: str = NOT_FOUND_MODEL) -> Any:
    """A failed call, the error caught as an application would."""
    try:
        return client.chat.completions.create(model=model, messages=MESSAGES)
    except openai.APIError as error:
        return error


def stream(client: openai.OpenAI, model: str = STREAM_MODEL) -> int:
    """A stream read to its end; returns how many chunks it had."""
    chunks = 0
    try:
        for _ in client.chat.completions.create(model=model, messages=MESSAGES, stream=True):
            chunks += 1
    except openai.APIError:  # a stream that fails midway (the fake's `stream_error`)
        pass
    return chunks


def abandoned_stream(client: openai.OpenAI, model: str = MODEL) -> None:
    """A stream whose first chunk is read and the rest never: dropped without `close()`."""
    chunks = iter(client.chat.completions.create(model=model, messages=MESSAGES, stream=True))
    next(chunks)


PATHS: dict[str, Call] = {"success": success, "failure": failure, "stream": stream}
