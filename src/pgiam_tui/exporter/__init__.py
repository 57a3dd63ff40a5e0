"""Headless exporters of the Monitor's snapshots (Prometheus metrics)."""
