"""Scaling on RED: HPA, KEDA and VPA objects from the SLO spec, and a replay of what they do."""
