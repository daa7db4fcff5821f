"""The demo's OpenTelemetry SDK with OTLP/HTTP exporters, for when OTEL_EXPORTER_OTLP_ENDPOINT is set.

The demo imports this module only then: the SDK and the exporter come with the `cli` extra, and
without the endpoint the demo uses neither (nothing leaves the machine but loopback calls to the fake
provider). The exporters read the standard OTEL_EXPORTER_OTLP_* settings themselves.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

DEFAULT_SERVICE_NAME = "aitrack-demo"
# Often enough that Prometheus sees the demo move; OTEL_METRIC_EXPORT_INTERVAL overrides it.
EXPORT_INTERVAL_MILLIS = 5000
FLUSH_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class OtlpExport:
    endpoint: str
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def instrument_kwargs(self) -> dict[str, Any]:
        return {"tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}

    def shutdown(self) -> None:
        """Send what is left (the last spans, the final metric values), traces and metrics at once,
        within about FLUSH_TIMEOUT_SECONDS: `docker compose stop` kills after 10 s."""
        flushes = [
            threading.Thread(target=self.tracer_provider.shutdown, daemon=True),
            threading.Thread(
                target=self.meter_provider.shutdown,
                kwargs={"timeout_millis": FLUSH_TIMEOUT_SECONDS * 1000},
                daemon=True,
            ),
        ]
        for flush in flushes:
            flush.start()
        deadline = time.monotonic() + FLUSH_TIMEOUT_SECONDS + 1
        for flush in flushes:
            flush.join(max(0.0, deadline - time.monotonic()))


def start_export(endpoint: str) -> OtlpExport:
    """Providers exporting to the collector at `endpoint` (the exporters read it from the environment)."""
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": DEFAULT_SERVICE_NAME}))
    # Shut down by `OtlpExport.shutdown`, within a bounded time, rather than again at exit.
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(timeout=_timeout("TRACES"))))
    interval = _export_interval_millis()
    exporter = OTLPMetricExporter(timeout=_timeout("METRICS"))
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=interval)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader], shutdown_on_exit=False)
    return OtlpExport(endpoint, tracer_provider, meter_provider)


def _export_interval_millis() -> float:
    try:
        return float(os.environ.get("OTEL_METRIC_EXPORT_INTERVAL") or EXPORT_INTERVAL_MILLIS)
    except ValueError:
        return EXPORT_INTERVAL_MILLIS


def _timeout(signal: str) -> float | None:
    """The exporter's timeout: yours when OTEL_EXPORTER_OTLP[_<SIGNAL>]_TIMEOUT is set, else the flush's."""
    configured = ("OTEL_EXPORTER_OTLP_TIMEOUT", f"OTEL_EXPORTER_OTLP_{signal}_TIMEOUT")
    return None if any(os.environ.get(name) for name in configured) else FLUSH_TIMEOUT_SECONDS
