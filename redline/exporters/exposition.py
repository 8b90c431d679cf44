"""Exposition: one registry per process, rendered as Prometheus text or OpenMetrics.

Exemplars exist only in OpenMetrics, so the format follows the scraper's Accept header:
Prometheus asks for OpenMetrics when exemplar storage is enabled, and gets plain text otherwise.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from redline import __version__, build
from redline.exporters.textformat import TextRenderer

BUILD_INFO = "redline_build_info"


class BuildInfoCollector:
    """`redline_build_info{version, python_version, component, extensions} 1`, as
    node_exporter does; `extensions`: the compiled modules in (redline/build.py)."""

    def __init__(self, component: str) -> None:
        self._component = component

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            BUILD_INFO,
            "A metric with a constant '1' value labelled by the redline version and component.",
            labels=("version", "python_version", "component", "extensions"),
        )
        family.add_metric((__version__, platform.python_version(), self._component,
                           build.describe()), 1)
        yield family


def new_registry(component: str, *collectors: Collector) -> CollectorRegistry:
    """A registry holding redline_build_info and the given collectors (no process defaults)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BuildInfoCollector(component))
    for collector in collectors:
        registry.register(collector)
    return registry


_render_text = TextRenderer()


def render(registry: CollectorRegistry, accept: str | None = None) -> tuple[bytes, str]:
    """Render the registry for a scraper's Accept header; returns (body, content type)."""
    encoder, content_type = choose_encoder(accept or "")
    if content_type.startswith("text/plain"):
        return _render_text(registry), content_type  # the same bytes, faster
    return encoder(registry), content_type
