"""One source for the AI call failures dashboard and alerts: run `python -m grafana.src.generate`."""
