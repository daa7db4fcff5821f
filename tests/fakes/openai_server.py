"""The fake OpenAI server now lives in the package as the demo's provider; re-exported for the tests."""

from otel_aitrack.cli.fake_provider import *  # noqa: F403
from otel_aitrack.cli.fake_provider import __all__  # noqa: F401
