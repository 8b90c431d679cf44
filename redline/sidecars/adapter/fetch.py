"""An app's JSON stats or Prometheus metrics, fetched and translated at scrape time (a custom
collector: nothing is polled between scrapes). The fetch is bounded in size and time and
stops at SIGTERM (httpget.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from redline.sidecars.adapter.config import AdapterConfig
from redline.sidecars.adapter.httpget import (
    BodyTooLargeError,
    FetchAbortedError,
    Fetcher,
    FetchError,
    FetchTimeoutError,
)
from redline.sidecars.adapter.plain import PlainSeries
from redline.sidecars.adapter.translate import translate_families, translate_json

log = logging.getLogger("redline.adapter")

_ACCEPT = {"json": "application/json", "scrape": "text/plain;version=0.0.4"}


class FetchSource:
    def __init__(self, url: str, kind: str, config: AdapterConfig) -> None:
        assert config.mapping is not None
        self.pattern = url
        self.kind = kind
        self.config = config
        self.mapping = config.mapping
        self.fetcher = Fetcher(config.fetch_timeout, config.max_body_bytes, _ACCEPT[kind])
        self.parse_errors = 0
        self.timeouts = 0
        self.oversized = 0
        self.capped_series = 0
        self.unmapped = 0
        self.last_ok = False

    def up(self) -> bool:
        return self.last_ok

    def counts(self) -> dict[str, float]:
        counts: dict[str, float] = {
            "parse_errors": self.parse_errors, "fetch_timeouts": self.timeouts,
            "oversized_fetches": self.oversized, "capped_series": self.capped_series}
        if self.kind == "scrape":
            counts["unmapped_names"] = self.unmapped
        return counts

    def close(self) -> None:
        """Stop a fetch in progress at once (SIGTERM), and any later one."""
        self.fetcher.close()

    def collect(self) -> Iterator[Metric]:
        plain = PlainSeries(self.config.max_series_per_rule)  # per fetch: no state kept
        config = self.config
        try:
            body = self.fetcher.get(self.pattern)
            if self.kind == "json":
                families, bad = translate_json(json.loads(body), self.mapping,
                                               config.service, config.routes, plain)
            else:
                families, bad = translate_families(
                    list(text_string_to_metric_families(body.decode("utf-8", "replace"))),
                    self.mapping, config.service, config.routes, plain)
                self.unmapped = bad  # of this fetch: a gauge, since every scrape fetches again
                bad = 0
        except FetchAbortedError:
            self.last_ok = False
            return  # stopping: not the app's fault, nothing to count
        except Exception as exc:  # down, timed out, too big, garbage: counted, /metrics answers
            self.parse_errors += 1
            self.timeouts += isinstance(exc, FetchTimeoutError)
            self.oversized += isinstance(exc, BodyTooLargeError)
            self.last_ok = False
            log.warning("fetching the source failed", extra={
                "source": self.pattern,
                "error": str(exc) if isinstance(exc, FetchError) else repr(exc)})
            return
        self.parse_errors += bad
        self.capped_series += plain.capped
        self.last_ok = True
        yield from families
