"""Plain counters and gauges that mapping rules name directly (not RED), sans IO, with a cap
on the series each rule makes.

A rule whose labels come from the source (`$1` of a statsd name, a JSON key, a tag) makes one
series per distinct value: 40,000 random names would be 40,000 series in every scrape. Past
`max_series` series of one rule, a new label combination of a *counter* is added to one series
whose labels are all `_OTHER` (the rule's total stays right, as the route cap's `/{other}`
keeps the request total), and one of a *gauge* is dropped (gauge values do not add up). Both
are counted in `capped`. Series already admitted keep updating.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from redline.exporters.routes import strip_controls
from redline.sidecars.adapter.limits import MAX_SERIES_PER_RULE
from redline.sidecars.adapter.mapping import Mapped, Rule

FOLDED = "_OTHER"

PlainKey = tuple[str, str, tuple[tuple[str, str], ...]]  # name, kind, sorted labels


class PlainSeries:
    def __init__(self, max_series: int = MAX_SERIES_PER_RULE) -> None:
        self.values: dict[PlainKey, float] = {}
        self.max_series = max_series
        self.capped = 0
        self._per_rule: dict[Rule, int] = {}

    def record(self, mapped: Mapped, value: float, *, add: bool) -> None:
        """Set the series of `mapped` to `value`, or add `value` to it."""
        rule = mapped.rule
        key = (rule.name, rule.kind,
               tuple(sorted((k, strip_controls(v)) for k, v in mapped.labels.items())))
        values = self.values
        if key not in values:
            admitted = self._per_rule.get(rule, 0)
            if admitted >= self.max_series:
                self.capped += 1
                if rule.kind != "counter":
                    return
                key = (rule.name, rule.kind, tuple((k, FOLDED) for k, _ in key[2]))
            else:
                self._per_rule[rule] = admitted + 1
        values[key] = values.get(key, 0.0) + value if add else value

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for (name, kind, labels), value in sorted(self.values.items()):
            family = families.get(name)
            if family is None:
                family = families[name] = (
                    CounterMetricFamily(name, f"{name}, mapped by redline adapter",
                                        labels=[k for k, _ in labels])
                    if kind == "counter" else
                    GaugeMetricFamily(name, f"{name}, mapped by redline adapter",
                                      labels=[k for k, _ in labels]))
            family.add_metric([v for _, v in labels], value)  # type: ignore[attr-defined]
        yield from families.values()
