"""The provider SDKs this instrumentation supports, as the OpenTelemetry loader reads them."""

from __future__ import annotations

# Empty on purpose: no single SDK is required. The loader reads the `instruments-any` extra of
# pyproject.toml and loads the instrumentor when any one provider SDK is installed.
_instruments: tuple[str, ...] = ()
_instruments_any = ("openai >= 1.40", "anthropic >= 1.0", "google-genai >= 1.20", "boto3 >= 1.34.116")
