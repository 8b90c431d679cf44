"""Exposition: one registry per process, rendered as Prometheus text or OpenMetrics.

Exemplars exist only in OpenMetrics, so the format follows the scraper's Accept header:
Prometheus asks for OpenMetrics when exemplar storage is enabled, and gets plain text otherwise.
Both are written by redline (sliced.py), in pieces a caller may pause between, with
prometheus_client's bytes; its encoders render what redline's writers do not handle, and only
then is prometheus_client's package imported.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from redline import __version__, build
from redline.exporters.instruments import Gauge, InstrumentCollector
from redline.exporters.negotiate import negotiate
from redline.exporters.sliced import pieces
from redline.exporters.textformat import FallbackError

if TYPE_CHECKING:  # prometheus_client's package is imported only where its encoder renders
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector

BUILD_INFO = "redline_build_info"


def build_info(component: str) -> InstrumentCollector:
    """`redline_build_info{version, python_version, component, extensions} 1`, as
    node_exporter does; `extensions`: the compiled modules in (redline/build.py)."""
    info = Gauge(BUILD_INFO, "A metric with a constant '1' value labelled by the redline "
                             "version and component.",
                 ("version", "python_version", "component", "extensions"))
    # platform.python_version()'s answer, without importing platform for it
    python_version = sys.version.split()[0]
    info.set((__version__, python_version, component, build.describe()), 1)
    return InstrumentCollector([info])


class Registry:
    """The collectors of a process, in order (the order `collect` uses), so that they can be
    rendered in pieces (sliced.py). prometheus_client's CollectorRegistry is not used: importing
    it runs the package's `__init__`, 5.5 MB of the ambassador's memory, and redline renders
    its own scrapes. It keeps CollectorRegistry's contract where redline used it (the
    Collector protocol, `get_sample_value`), and checks no duplicate names: nor did
    CollectorRegistry with redline's collectors, which describe none."""

    def __init__(self) -> None:
        self.collectors: list[Collector] = []
        self._lock = threading.Lock()

    def register(self, collector: Collector) -> None:
        with self._lock:
            if collector in self.collectors:
                raise ValueError(f"{collector!r}: already registered")
            self.collectors.append(collector)

    def unregister(self, collector: Collector) -> None:
        with self._lock:
            self.collectors.remove(collector)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            collectors = list(self.collectors)
        for collector in collectors:
            yield from collector.collect()

    def get_sample_value(self, name: str, labels: dict[str, str] | None = None
                         ) -> float | None:
        """As CollectorRegistry's: the sample's value, or None (slow: for tests)."""
        wanted = labels or {}
        for metric in self.collect():
            for sample in metric.samples:
                if sample.name == name and sample.labels == wanted:
                    return sample.value
        return None


def new_registry(component: str, *collectors: Collector) -> Registry:
    """A registry holding redline_build_info and the given collectors (no process defaults)."""
    registry = Registry()
    registry.register(build_info(component))
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
    """prometheus_client's rendering, for what redline's writers leave to it (the only place
    the ambassador imports prometheus_client's package)."""
    from prometheus_client.exposition import choose_encoder

    # Given the content type negotiated, choose_encoder picks the same format and escaping
    # (tests/exporters/test_negotiate.py), and never meets a version it cannot compare.
    content_type = negotiate(accept).content_type
    return choose_encoder(content_type)[0](registry), content_type
