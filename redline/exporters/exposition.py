"""Exposition: one registry per process, rendered as Prometheus text or OpenMetrics.

Exemplars exist only in OpenMetrics, so the format follows the scraper's Accept header:
Prometheus asks for OpenMetrics when exemplar storage is enabled, and gets plain text otherwise.
Both are written by redline (sliced.py), in pieces a caller may pause between, with
prometheus_client's bytes; its encoders render what redline's writers do not handle.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from redline import __version__, build
from redline.exporters.sliced import pieces
from redline.exporters.textformat import FallbackError

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


class Registry(CollectorRegistry):
    """A CollectorRegistry that lists its collectors in order (the order `collect` uses), so
    that they can be rendered in pieces (sliced.py)."""

    def __init__(self) -> None:
        super().__init__(auto_describe=False)
        self.collectors: list[Collector] = []

    def register(self, collector: Collector) -> None:
        super().register(collector)
        self.collectors.append(collector)

    def unregister(self, collector: Collector) -> None:
        super().unregister(collector)
        self.collectors.remove(collector)


def new_registry(component: str, *collectors: Collector) -> Registry:
    """A registry holding redline_build_info and the given collectors (no process defaults)."""
    registry = Registry()
    registry.register(BuildInfoCollector(component))
    for collector in collectors:
        registry.register(collector)
    return registry


def collectors_of(registry: Collector) -> Sequence[Collector]:
    """What `sliced.pieces` renders for a registry: its collectors when it lists them."""
    return registry.collectors if isinstance(registry, Registry) else (registry,)


def render(registry: Collector, accept: str | None = None) -> tuple[bytes, str]:
    """Render the registry for a scraper's Accept header; returns (body, content type)."""
    try:
        parts, content_type = pieces(collectors_of(registry), accept)
        return b"".join(parts), content_type
    except FallbackError:
        return render_by_encoder(registry, accept)


def render_by_encoder(registry: Collector, accept: str | None) -> tuple[bytes, str]:
    """prometheus_client's rendering, for what redline's writers leave to it."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
