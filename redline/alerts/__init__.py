"""Alerts: SLO burn-rate rules, USE rules and sidecar health rules, rendered for Prometheus."""
