"""The adapter process: tail access logs into RED metrics, serve them on the admin port."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from redline.exporters.exposition import new_registry, render
from redline.exporters.red import DEFAULT_BUCKETS, ServerRecorder
from redline.exporters.routes import RouteTemplater
from redline.sidecars.adapter.formats import LogFormat
from redline.sidecars.adapter.pipeline import LogPipeline
from redline.sidecars.adapter.tailer import Tailer, read_once
from redline.sidecars.admin import AdminServer

log = logging.getLogger("redline.adapter")


@dataclass
class AdapterConfig:
    service: str
    access_logs: list[str]
    log_format: LogFormat
    admin: tuple[str, int] | None = ("0.0.0.0", 9902)
    routes: RouteTemplater = field(default_factory=RouteTemplater)
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    from_start: bool = False
    poll_interval: float = 0.25
    max_line_bytes: int = 256 * 1024


class LogSource:
    """One --access-log pattern: its files, its pipeline and its counters."""

    def __init__(self, pattern: str, config: AdapterConfig, recorder: ServerRecorder) -> None:
        self.pattern = pattern
        self.pipeline = LogPipeline(config.log_format, recorder, config.routes)
        self.tailer = Tailer([pattern], self._lines, from_start=config.from_start,
                             max_line=config.max_line_bytes,
                             on_dropped=self.pipeline.count_error)

    def _lines(self, data: bytes) -> None:
        self.pipeline.feed(data.decode("utf-8", "replace"))

    def up(self) -> bool:
        return bool(self.tailer.files) or bool(glob.glob(self.pattern))


class _SelfCollector:
    def __init__(self, sources: list[LogSource]) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        names: list[tuple[str, str, Callable[[LogSource], int]]] = [
            ("redline_adapter_lines", "Log lines read.",
             lambda s: s.pipeline.lines),
            ("redline_adapter_parse_errors", "Log lines that could not be read as a request.",
             lambda s: s.pipeline.parse_errors),
            ("redline_adapter_rotations", "Log files rotated away (renamed or deleted).",
             lambda s: s.tailer.stats.rotations),
            ("redline_adapter_truncations", "Log files truncated in place (copytruncate).",
             lambda s: s.tailer.stats.truncations),
        ]
        for name, documentation, value in names:
            family = CounterMetricFamily(name, documentation, labels=("source",))
            for source in self._sources:
                family.add_metric((source.pattern,), value(source))
            yield family
        up = GaugeMetricFamily("redline_adapter_source_up",
                               "1 when the source can be read (a log file matches).",
                               labels=("source",))
        for source in self._sources:
            up.add_metric((source.pattern,), 1 if source.up() else 0)
        yield up


class Adapter:
    def __init__(self, config: AdapterConfig) -> None:
        self.config = config
        self.recorder = ServerRecorder(config.service, config.buckets, routes=config.routes)
        self.sources = [LogSource(pattern, config, self.recorder)
                        for pattern in config.access_logs]
        self.registry = new_registry("adapter", self.recorder.collector(),
                                     _SelfCollector(self.sources))
        self.admin = AdminServer(self.registry, self._readiness)
        self.admin_port = 0
        self._stopping = False

    async def _readiness(self) -> tuple[bool, str]:
        if self._stopping:
            return False, "stopping"
        down = [source.pattern for source in self.sources if not source.up()]
        return (not down), ("ready" if not down else f"no file matches {', '.join(down)}")

    def poll(self) -> int:
        read = 0
        for source in self.sources:
            try:
                read += source.tailer.poll()
            except Exception:  # a bad file must not stop the other sources
                log.exception("reading failed", extra={"source": source.pattern})
        return read

    async def run_until_signalled(self) -> int:
        if self.config.admin is not None:
            self.admin_port = await self.admin.start(*self.config.admin)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        self.poll()  # the first pass decides where each file starts
        log.info("adapter started", extra={
            "admin": self.admin_port, "service": self.config.service,
            "sources": self.config.access_logs,
            "files": [f for s in self.sources for f in s.tailer.files]})
        while not stop.is_set():
            busy = self.poll() > 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0 if busy else self.config.poll_interval)
        self._stopping = True
        self.poll()  # what was written up to the signal still counts
        for source in self.sources:
            source.tailer.close()
        await self.admin.close()
        return 0

    def run_once(self) -> int:
        """Read every file from its start to its end, print the exposition, exit."""
        for source in self.sources:
            read_once([source.pattern], source._lines, self.config.max_line_bytes,
                      source.pipeline.count_error)
        body, _ = render(self.registry, "text/plain")
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return 0
