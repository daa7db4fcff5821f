"""What the bundled stack (collector, Prometheus, Grafana) reads, shipped in the package.

`promql` holds every PromQL expression of the dashboard, the alert rules and `otel-aitrack failures`;
the generator in a source checkout (`python -m grafana.src.generate`) writes the Grafana and
Prometheus files from it, and the CLI imports it from the installed wheel.
"""
