"""The node exporter process: what it was asked to do, its collectors behind /metrics, and
what its /readyz means.

Readiness, for a DaemonSet: a node exporter pod is ready when a scrape of it would report its
node. Its readiness gates a rolling update (`maxUnavailable`: a new version that cannot read the
host is not rolled on to the next node) and which endpoints a Service lists. So:
- every collector runs once before the port opens (a start-up pass, as a scrape would): a
  collector whose source is missing is logged at start, not at the first scrape;
- then /readyz answers 200 while the host's procfs answers: `<procfs>/stat` (CPU, the run
  queue, boot time; a few kB) is read and parsed at every probe, so a hostPath mount that is
  empty or was never the host's /proc reports 503 naming the file and the error, and a mount
  that comes back makes the pod ready again without a restart;
- a single collector failing (no PSI, no conntrack module) leaves the pod ready: that is a
  property of the node, reported by `node_scrape_collector_success{collector} 0`, and taking
  the pod out would hide the rest of the node's metrics.
SIGTERM closes the port and exits 0 at once: scrapes are rendered in one step of the event
loop, so none is left half done, and Kubernetes takes a terminating pod out of its endpoints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from redline.admin import AdminServer
from redline.exporters.exposition import new_registry
from redline.exporters.node import procfs
from redline.exporters.node.collectors import COLLECTORS, NodeCollector, Roots
from redline.exporters.node.roots import read
from redline.signals import until_stopped

log = logging.getLogger("redline.node_exporter")


@dataclass(frozen=True)
class NodeExporterConfig:
    """What `redline node-exporter` was asked to do, checked by its command."""

    roots: Roots = field(default_factory=Roots)
    collectors: tuple[str, ...] = tuple(COLLECTORS)
    listen: tuple[str, int] = ("0.0.0.0", 9100)


class NodeExporter:
    def __init__(self, config: NodeExporterConfig) -> None:
        self.config = config
        self._reported: set[str] = set()
        self.collector = NodeCollector(config.roots, list(config.collectors), self._on_error)
        self.registry = new_registry("node-exporter", self.collector)

    def _on_error(self, name: str, exc: Exception) -> None:
        if name not in self._reported:  # once per collector, not once per scrape
            self._reported.add(name)
            log.warning("collector failed; reported as node_scrape_collector_success 0",
                        extra={"collector": name, "error": str(exc)})

    def start_up_pass(self) -> None:
        """Run every collector once, as a scrape does, and drop the result."""
        for _ in self.collector.collect():
            pass

    async def readiness(self) -> tuple[bool, str]:
        path = self.config.roots.proc("stat")
        try:
            procfs.parse_stat(read(path))
        except OSError as exc:
            return False, f"cannot read {path}: {exc.strerror or exc}"
        except ValueError as exc:
            return False, f"{path} is not a procfs stat file: {exc}"
        return True, "ready"


async def serve(config: NodeExporterConfig) -> int:
    """Serve /metrics, /healthz and /readyz on config.listen until SIGTERM or SIGINT."""
    exporter = NodeExporter(config)
    exporter.start_up_pass()
    admin = AdminServer(exporter.registry, exporter.readiness)
    port = await admin.start(*config.listen)
    ready, detail = await exporter.readiness()
    log.info("node exporter listening", extra={
        "listen": f"{config.listen[0]}:{port}", "admin": port,
        "collectors": list(config.collectors), "ready": ready, "readiness": detail})
    await until_stopped()
    await admin.close()
    return 0
