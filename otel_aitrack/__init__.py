"""otel-aitrack: every failed AI provider call, recorded — which AI feature, why, and since when.

Quick start::

    from otel_aitrack import AITrackInstrumentor, track, stats

    AITrackInstrumentor().instrument()          # or: opentelemetry-instrument python app.py

    with track("summarize_ticket", task="summarize a support ticket", user=user_id):
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])

    stats()["summarize_ticket"].failure_rate    # e.g. 40.0

An OpenAI-compatible server spoken to with the openai SDK (vLLM, Ollama, a proxy) is `openai` unless
named: per client with `set_provider_name(client, "vllm")`, per block with
`track(..., provider_name="vllm")`, or by host with `instrument(provider_names={"llm.internal": "vllm"})`
(`OTEL_AITRACK_PROVIDER_NAMES`). Azure, Groq, Gemini, Mistral, … are recognized by client and host.

Every SDK call becomes one CLIENT span carrying the error code, message, full traceback, HTTP status,
provider error code and request id of a failure; metrics count calls and failures per prompt type.
The telemetry names are listed in docs/telemetry.md.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry._logs import get_logger
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.metrics import get_meter
from opentelemetry.trace import get_tracer

from . import guard, runtime
from .book import BOOK, PromptStats, reset_stats, stats
from .config import check_keywords, load_settings
from .context import track
from .instruments import instruments_of
from .labels import Labels
from .package import _instruments
from .patch import patch_all, unpatch_all
from .providers import compatible
from .providers.compatible import set_provider_name
from .redaction import Redactor
from .version import __version__

__all__ = [
    "AITrackInstrumentor",
    "PromptStats",
    "__version__",
    "reset_stats",
    "set_provider_name",
    "stats",
    "track",
]

_SCOPE = "otel_aitrack"
_SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"


class AITrackInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments every supported provider SDK that is installed (openai 2.x, 3.x; anthropic 1.x, 2.x).

    Keyword arguments of `instrument()` (all optional): `tracer_provider`, `meter_provider`,
    `logger_provider`, and the settings of docs/telemetry.md (`traceback_max_length`,
    `message_max_length`, `content_max_length`, `redact_patterns`, `max_prompt_types`,
    `capture_content`, `provider_names`), which override their `OTEL_AITRACK_*` environment variables.
    A wrong keyword raises `TypeError` / `ValueError` naming it; a bad environment value is logged and
    its default used. Setup and teardown are serialized: safe from several threads at once.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def instrument(self, **kwargs: Any) -> Any:
        check_keywords(kwargs)  # also when already instrumented: a setup mistake is always told
        with runtime.SETUP.lock:
            return super().instrument(**kwargs)

    def uninstrument(self, **kwargs: Any) -> Any:
        with runtime.SETUP.lock:
            return super().uninstrument(**kwargs)

    def _instrument(self, **kwargs: Any) -> None:
        settings = load_settings(kwargs)
        BOOK.max_prompt_types = settings.max_prompt_types
        compatible.configure(settings.provider_names)
        meter = get_meter(_SCOPE, __version__, kwargs.get("meter_provider"), schema_url=_SCHEMA_URL)
        instruments = instruments_of(meter, BOOK)
        guard.on_internal_error(instruments.count_internal_error)
        instruments.handoff.on_error(guard.reporter("histogram record"))
        instruments.handoff.on_dropped(instruments.count_dropped)
        redactor = Redactor(settings.redact_patterns)
        runtime.activate(
            runtime.Runtime(
                tracer=get_tracer(_SCOPE, __version__, kwargs.get("tracer_provider"), schema_url=_SCHEMA_URL),
                instruments=instruments,
                settings=settings,
                redactor=redactor,
                book=BOOK,
                logger=get_logger(_SCOPE, __version__, kwargs.get("logger_provider")),
                labels=Labels(redactor),
            )
        )
        patch_all()

    def _uninstrument(self, **kwargs: Any) -> None:
        unpatch_all()
        current = runtime.active()
        runtime.deactivate()
        if current is not None:
            with guard.guard("metric hand-off close"):
                current.instruments.close()
