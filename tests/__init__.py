"""otel-aitrack's test suite."""
