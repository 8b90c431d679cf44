"""The adapter: its sources, one recorder and the registry /metrics renders; `run_once` for
`--once`. The live loop is in serve.py, so that `--once` imports no asyncio and no HTTP."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from prometheus_client.registry import Collector

from redline.exporters.exposition import new_registry, render
from redline.exporters.instruments import (
    DEFAULT_MAX_SERIES,
    Counter,
    InstrumentCollector,
    SeriesCap,
)
from redline.exporters.red import ServerRecorder
from redline.sidecars.adapter.config import AdapterConfig
from redline.sidecars.adapter.logs import LogSource
from redline.sidecars.adapter.self_metrics import SelfCollector, Source

if TYPE_CHECKING:  # imported when --statsd, --scrape or --json-url is given
    from redline.sidecars.adapter.fetch import FetchSource
    from redline.sidecars.adapter.statsd import StatsdSource

log = logging.getLogger("redline.adapter")
FOLDED_SERIES = "redline_adapter_folded_series"  # _total
FOLDED_SERIES_HELP = ("Observations recorded in a RED family's _OTHER label set: past 2,000 label "
                      "sets a family folds new ones (the ambassador's --max-series default).")


class Adapter:
    def __init__(self, config: AdapterConfig) -> None:
        self.config = config
        self.recorder = ServerRecorder(config.service, config.buckets, routes=config.routes)
        # The RED families' series cap (instruments.py), counted when it folds: the recorder
        # is the process's, shared by every source, so the count is the process's too.
        self.folded = Counter(FOLDED_SERIES, FOLDED_SERIES_HELP, ())
        self.recorder.collector().cap_series(SeriesCap(DEFAULT_MAX_SERIES, self.folded, ()))
        self.log_sources = [LogSource(pattern, config, self.recorder)
                            for pattern in config.access_logs]
        self.sources: list[Source] = list(self.log_sources)
        collectors: list[Collector] = []
        self.statsd: StatsdSource | None = None
        self.fetch_sources: list[FetchSource] = []
        if config.statsd is not None:
            from redline.sidecars.adapter.plain import PlainSeries
            from redline.sidecars.adapter.statsd import StatsdSource
            from redline.sidecars.adapter.translate import StatsdTranslator

            assert config.mapping is not None
            translator = StatsdTranslator(config.mapping, self.recorder, config.routes,
                                          PlainSeries(config.max_series_per_rule))
            self.statsd = StatsdSource(config.statsd, translator)
            self.sources.append(self.statsd)
            collectors.append(translator.plain)
        self.fetched = bool(config.scrape_url or config.json_url)
        if self.fetched:
            from redline.sidecars.adapter.fetch import FetchSource

            fetched = [FetchSource(url, kind, config) for url, kind in
                       ((config.scrape_url, "scrape"), (config.json_url, "json")) if url]
            self.fetch_sources = fetched
            self.sources += fetched
            # The app's own numbers, translated at scrape time: no recorder of our own, so
            # that no RED family is exposed twice.
            collectors += fetched
        else:
            collectors.insert(0, self.recorder.collector())
        self.registry = new_registry("adapter", *collectors, SelfCollector(self.sources),
                                     InstrumentCollector([self.folded]))
        self.stopping = False

    async def readiness(self) -> tuple[bool, str]:
        if self.stopping:
            return False, "stopping"
        # Fetched sources are checked at scrape time; readiness does not fetch them.
        problems = [problem for source in self.log_sources
                    if (problem := source.problem()) is not None]
        if self.statsd is not None and not self.statsd.up():
            problems.append(f"{self.statsd.pattern}: the socket is not bound yet")
        return (not problems), ("; ".join(problems) or "ready")

    def poll(self) -> int:
        read = 0
        for source in self.log_sources:
            try:
                read += source.tailer.poll()
            except Exception:  # a bad file must not stop the other sources
                log.exception("reading failed", extra={"source": source.pattern})
        return read

    def run_once(self) -> int:
        """Read every file from its start to its end, print the exposition, exit."""
        for source in self.log_sources:
            source.read_once()
        body, _ = render(self.registry, "text/plain")
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return 0
