"""An app's JSON stats or Prometheus metrics, fetched and translated at scrape time (a custom
collector: nothing is polled between scrapes)."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from redline.sidecars.adapter.config import AdapterConfig
from redline.sidecars.adapter.translate import translate_families, translate_json

log = logging.getLogger("redline.adapter")

MAX_BODY = 64 * 1024 * 1024


class FetchSource:
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

    def counts(self) -> dict[str, float]:
        counts: dict[str, float] = {"parse_errors": self.parse_errors}
        if self.kind == "scrape":
            counts["unmapped_names"] = self.unmapped
        return counts

    def collect(self) -> Iterator[Metric]:
        try:
            with urllib.request.urlopen(self.pattern, timeout=self.config.fetch_timeout) as r:
                body = r.read(MAX_BODY).decode("utf-8", "replace")
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
