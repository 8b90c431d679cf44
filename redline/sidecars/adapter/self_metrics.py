"""The adapter's own metrics (`redline_adapter_*`): each source reports its counts by name."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

COUNTERS = {
    "lines": "Log lines or statsd lines read.",
    "parse_errors": "Lines, packets or fetches that could not be read.",
    "rotations": "Log files rotated away (renamed or deleted).",
    "truncations": "Log files truncated in place (copytruncate).",
    "unmapped": "statsd names that no mapping rule took.",
    "read_errors": "Failed opens and reads of log files; one per poll while a file stays "
                   "unreadable.",
    "dropped_long_lines": "Lines longer than --max-line-bytes, dropped (also parse errors).",
    "rejected_values": "statsd values refused: negative counts or durations, NaN, infinite "
                       "(also once scaled by the sample rate).",
    "clamped_sample_rates": "statsd samples with a rate below 0.001, counted as at 0.001.",
    "capped_series": "Samples of a mapping rule past --max-series-per-rule series: counters "
                     "added to the rule's _OTHER series, gauges dropped (per fetch for "
                     "--scrape and --json-url).",
    "fetch_timeouts": "Fetches of the app stopped at --fetch-timeout (also parse errors).",
    "oversized_fetches": "Fetches of the app whose body was over --max-body-bytes, not "
                         "parsed (also parse errors).",
}
UNMAPPED_NAMES = "Metric families in the last fetch of the app that no mapping rule took."


class Source(Protocol):
    pattern: str

    def up(self) -> bool: ...

    def counts(self) -> dict[str, float]: ...


class SelfCollector:
    def __init__(self, sources: Sequence[Source]) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        counters = {name: CounterMetricFamily(f"redline_adapter_{name}", help_text,
                                              labels=("source",))
                    for name, help_text in COUNTERS.items()}
        up = GaugeMetricFamily("redline_adapter_source_up",
                               "1 when the source can be read.", labels=("source",))
        unmapped_names = GaugeMetricFamily("redline_adapter_unmapped_names", UNMAPPED_NAMES,
                                           labels=("source",))
        for source in self._sources:
            label = (source.pattern,)
            for name, value in source.counts().items():
                family = unmapped_names if name == "unmapped_names" else counters[name]
                family.add_metric(label, value)
            up.add_metric(label, 1 if source.up() else 0)
        yield from (family for family in counters.values() if family.samples)
        yield up
        if unmapped_names.samples:
            yield unmapped_names
