"""Benchmarks of otel-aitrack's overhead (not tests: no figure here is asserted). Entry point: overhead.py."""
