"""The adapter process: tail access logs into RED metrics, serve them on the admin port."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import logging
import signal
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from redline.exporters.exposition import new_registry, render
from redline.exporters.red import DEFAULT_BUCKETS, ServerRecorder
from redline.exporters.routes import RouteTemplater
from redline.sidecars.adapter.formats import LogFormat
from redline.sidecars.adapter.mapping import Mapping
from redline.sidecars.adapter.pipeline import LogPipeline
from redline.sidecars.adapter.tailer import Tailer, read_once
from redline.sidecars.adapter.translate import (
    StatsdTranslator,
    translate_families,
    translate_json,
)
from redline.sidecars.admin import AdminServer

log = logging.getLogger("redline.adapter")


@dataclass
class AdapterConfig:
    service: str
    access_logs: list[str] = field(default_factory=list)
    log_format: LogFormat | None = None
    statsd: tuple[str, int] | None = None
    scrape_url: str | None = None
    json_url: str | None = None
    mapping: Mapping | None = None
    fetch_timeout: float = 2.0
    admin: tuple[str, int] | None = ("0.0.0.0", 9902)
    routes: RouteTemplater = field(default_factory=RouteTemplater)
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    from_start: bool = False
    poll_interval: float = 0.25
    max_line_bytes: int = 256 * 1024


class LogSource:
    """One --access-log pattern: its files, its pipeline and its counters."""

    def __init__(self, pattern: str, config: AdapterConfig, recorder: ServerRecorder) -> None:
        assert config.log_format is not None
        self.pattern = pattern
        self.pipeline = LogPipeline(config.log_format, recorder, config.routes)
        self.tailer = Tailer([pattern], self._lines, from_start=config.from_start,
                             max_line=config.max_line_bytes,
                             on_dropped=self.pipeline.count_error)

    def _lines(self, data: bytes) -> None:
        self.pipeline.feed(data.decode("utf-8", "replace"))

    def up(self) -> bool:
        return bool(self.tailer.files) or bool(glob.glob(self.pattern))


class StatsdSource(asyncio.DatagramProtocol):
    """statsd / DogStatsD datagrams on UDP, translated by the mapping."""

    def __init__(self, address: tuple[str, int], translator: StatsdTranslator) -> None:
        self.pattern = f"statsd://{address[0]}:{address[1]}"
        self.address = address
        self.translator = translator
        self.bound = False

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            self.translator.feed(data)
        except Exception:  # one bad packet never stops the listener
            self.translator.parse_errors += 1
            log.exception("statsd packet failed")

    def up(self) -> bool:
        return self.bound


class FetchSource:
    """An app's JSON stats or Prometheus metrics, fetched and translated at scrape time."""

    def __init__(self, url: str, kind: str, config: AdapterConfig) -> None:
        assert config.mapping is not None
        self.pattern = url
        self.kind = kind
        self.config = config
        self.mapping = config.mapping
        self.parse_errors = 0
        self.unmapped = 0
        self.last_ok = False

    def up(self) -> bool:
        return self.last_ok

    def collect(self) -> Iterator[Metric]:
        try:
            with urllib.request.urlopen(self.pattern, timeout=self.config.fetch_timeout) as r:
                body = r.read(64 * 1024 * 1024).decode("utf-8", "replace")
            if self.kind == "json":
                families, bad = translate_json(json.loads(body), self.mapping,
                                               self.config.service, self.config.routes)
            else:
                families, bad = translate_families(
                    list(text_string_to_metric_families(body)), self.mapping,
                    self.config.service, self.config.routes)
                self.unmapped = bad  # of this fetch: a gauge, since every scrape fetches again
                bad = 0
        except Exception as exc:  # down, timed out, garbage: counted, /metrics still answers
            self.parse_errors += 1
            self.last_ok = False
            log.warning("fetching the source failed", extra={"source": self.pattern,
                                                            "error": str(exc)})
            return
        self.parse_errors += bad
        self.last_ok = True
        yield from families


class _SelfCollector:
    def __init__(self, adapter: Adapter) -> None:
        self._adapter = adapter

    def collect(self) -> Iterator[Metric]:
        sources = self._adapter.sources
        families = {
            "lines": CounterMetricFamily(
                "redline_adapter_lines", "Log lines or statsd lines read.", labels=("source",)),
            "parse_errors": CounterMetricFamily(
                "redline_adapter_parse_errors",
                "Lines, packets or fetches that could not be read.", labels=("source",)),
            "rotations": CounterMetricFamily(
                "redline_adapter_rotations", "Log files rotated away (renamed or deleted).",
                labels=("source",)),
            "truncations": CounterMetricFamily(
                "redline_adapter_truncations", "Log files truncated in place (copytruncate).",
                labels=("source",)),
            "unmapped": CounterMetricFamily(
                "redline_adapter_unmapped", "statsd names that no mapping rule took.",
                labels=("source",)),
        }
        up = GaugeMetricFamily("redline_adapter_source_up",
                               "1 when the source can be read.", labels=("source",))
        unmapped_names = GaugeMetricFamily(
            "redline_adapter_unmapped_names",
            "Metric families in the last fetch of the app that no mapping rule took.",
            labels=("source",))
        for source in sources:
            name = (source.pattern,)
            if isinstance(source, LogSource):
                families["lines"].add_metric(name, source.pipeline.lines)
                families["parse_errors"].add_metric(name, source.pipeline.parse_errors)
                families["rotations"].add_metric(name, source.tailer.stats.rotations)
                families["truncations"].add_metric(name, source.tailer.stats.truncations)
            elif isinstance(source, StatsdSource):
                families["lines"].add_metric(name, source.translator.lines)
                families["parse_errors"].add_metric(name, source.translator.parse_errors)
                families["unmapped"].add_metric(name, source.translator.unmapped)
            else:
                families["parse_errors"].add_metric(name, source.parse_errors)
                if source.kind == "scrape":
                    unmapped_names.add_metric(name, source.unmapped)
            up.add_metric(name, 1 if source.up() else 0)
        yield from (family for family in families.values() if family.samples)
        yield up
        if unmapped_names.samples:
            yield unmapped_names


class Adapter:
    def __init__(self, config: AdapterConfig) -> None:
        self.config = config
        self.recorder = ServerRecorder(config.service, config.buckets, routes=config.routes)
        self.sources: list[LogSource | StatsdSource | FetchSource] = []
        self.log_sources = [LogSource(pattern, config, self.recorder)
                            for pattern in config.access_logs]
        self.sources += self.log_sources
        collectors: list[Collector] = []
        if config.statsd is not None:
            assert config.mapping is not None
            translator = StatsdTranslator(config.mapping, self.recorder, config.routes)
            self.statsd: StatsdSource | None = StatsdSource(config.statsd, translator)
            self.sources.append(self.statsd)
            collectors.append(translator.plain)
        else:
            self.statsd = None
        fetched = [FetchSource(url, kind, config) for url, kind in
                   ((config.scrape_url, "scrape"), (config.json_url, "json")) if url]
        self.sources += fetched
        if fetched:
            # The app's own numbers, translated at scrape time: no recorder of our own, so
            # that no RED family is exposed twice.
            collectors += fetched
        else:
            collectors.insert(0, self.recorder.collector())
        self.registry = new_registry("adapter", *collectors, _SelfCollector(self))
        self.admin = AdminServer(self.registry, self._readiness,
                                 render_in_thread=bool(fetched))
        self.admin_port = 0
        self.statsd_port = 0
        self._stopping = False

    async def _readiness(self) -> tuple[bool, str]:
        if self._stopping:
            return False, "stopping"
        # Fetched sources are checked at scrape time; readiness does not fetch them.
        down = [source.pattern for source in self.sources
                if not isinstance(source, FetchSource) and not source.up()]
        return (not down), ("ready" if not down else f"no file matches {', '.join(down)}")

    def poll(self) -> int:
        read = 0
        for source in self.log_sources:
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
        if self.statsd is not None:
            statsd = self.statsd
            transport, _ = await loop.create_datagram_endpoint(
                lambda: statsd, local_addr=statsd.address)
            statsd.bound = True
            self.statsd_port = transport.get_extra_info("sockname")[1]
        self.poll()  # the first pass decides where each file starts
        log.info("adapter started", extra={
            "admin": self.admin_port, "service": self.config.service,
            "sources": [source.pattern for source in self.sources],
            "statsd": self.statsd_port,
            "files": [f for s in self.log_sources for f in s.tailer.files]})
        while not stop.is_set():
            busy = self.poll() > 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0 if busy else self.config.poll_interval)
        self._stopping = True
        self.poll()  # what was written up to the signal still counts
        for source in self.log_sources:
            source.tailer.close()
        await self.admin.close()
        return 0

    def run_once(self) -> int:
        """Read every file from its start to its end, print the exposition, exit."""
        for source in self.log_sources:
            read_once([source.pattern], source._lines, self.config.max_line_bytes,
                      source.pipeline.count_error)
        body, _ = render(self.registry, "text/plain")
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return 0
