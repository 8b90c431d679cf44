"""Grafana dashboards written with grafanalib: RED per service, USE per node."""
