"""Grafana dashboards, alert rules and provisioning of otel-aitrack; the generator lives in `grafana/src`."""
