"""Tests of the `otel-aitrack` command, run as a user runs it: in a subprocess."""
