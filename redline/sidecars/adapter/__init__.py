"""The adapter: RED metrics from what the app already emits (access logs, stats)."""
