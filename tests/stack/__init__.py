"""The stack tier: the built collector, Prometheus and the Grafana files, run for real (`-m stack`)."""
