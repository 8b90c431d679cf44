"""Lean metric instruments for hot paths, written at scrape time by redline (sliced.py), or
through prometheus_client's families (`collect`) where its encoders render.

prometheus_client's own Histogram takes a lock and walks every bucket per observation. The
ambassador records one observation per proxied request, so these instruments keep plain Python
state instead: one dict lookup for the label child, one bucket search, a few integer increments.

Concurrency contract: observations come from one thread (the event loop or the tailer); scrapes
may come from any thread. Child creation and scrape snapshots hold a lock, so a scrape never sees
a dict changing size. A scrape racing an observation can see the bucket incremented before the
sum, which Prometheus tolerates (both are still monotonic).

Series cap: a family admits `SeriesCap.max_series` label sets. Past it, a new label set is
recorded in one of the family's folded label sets (`fold_labels`: every value `_OTHER`, the
service kept, `error_type` kept empty or set to `_OTHER`: two at most), so totals and error
ratios stay right while the family's memory and scrape size stay bounded; each folded
observation is counted.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import TYPE_CHECKING

from mypy_extensions import mypyc_attr  # a dependency: it means something to mypyc only

# prometheus_client's families are built only by `collect` (its encoders, tests): the
# ambassador's scrapes are written from the instruments (sliced.py), and importing any part of
# prometheus_client runs its package's `__init__`, 5.5 MB of a sidecar's memory.
if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

LabelValues = tuple[str, ...]
# A bucket's exemplar: labels, value, Unix time (prometheus_client's Exemplar in `collect`).
Exemplar = tuple[dict[str, str], float, float]

# Series per family before new label sets fold. A series is ~0.6 KiB held and ~3 KiB of text
# per scrape (a histogram's 16 lines); 2,000 keeps one family's scrape near 6 MiB in a 128 MiB
# sidecar, above what an app's routes (200 by default) x methods x statuses make in practice.
DEFAULT_MAX_SERIES = 2000
OTHER = "_OTHER"  # a folded label value, as OpenTelemetry's `_OTHER` method and the adapter's
KEPT_LABEL = "service_name"  # one recorder's identity: folding it would hide the service
FLAG_LABEL = "error_type"  # folded to "" or `_OTHER`: whether the requests failed stays known


def fold_labels(labelnames: LabelValues, labels: LabelValues) -> LabelValues:
    """The label set a family records past its series cap, for a label set it did not admit."""
    return tuple(value if name == KEPT_LABEL else
                 (OTHER if value else "") if name == FLAG_LABEL else OTHER
                 for name, value in zip(labelnames, labels, strict=True))


class SeriesCap:
    """How many series each family holds, and where folded observations are counted: one cap
    may be shared by every family of a process (`InstrumentCollector.cap_series`)."""

    def __init__(self, max_series: int = DEFAULT_MAX_SERIES, counter: Counter | None = None,
                 key: Hashable = ()) -> None:
        if max_series < 1:
            raise ValueError(f"max_series: expected at least 1 series, got {max_series}")
        self.max_series = max_series
        self.folded_total = 0
        self._counter = counter
        self._key = key
        if counter is not None:
            counter.cell(key)  # shown from 0, before the first fold

    def folded(self) -> None:
        self.folded_total += 1
        if self._counter is not None:
            self._counter.inc(self._key)


def validate_buckets(buckets: Sequence[float]) -> tuple[float, ...]:
    """Return finite, strictly increasing, positive bucket bounds (without +Inf)."""
    bounds = tuple(float(b) for b in buckets if not math.isinf(float(b)))
    if not bounds:
        raise ValueError("buckets: expected at least one finite boundary")
    for low, high in itertools.pairwise(bounds):
        if not low < high:
            raise ValueError(f"buckets: expected strictly increasing values, got {low} then {high}")
    if bounds[0] <= 0 or any(math.isnan(b) for b in bounds):
        raise ValueError(f"buckets: expected positive numbers, got {bounds[0]}")
    return bounds


def format_bound(bound: float) -> str:
    """Format a bucket bound the way prometheus_client does (`0.005`, `1.0`, `+Inf`)."""
    if math.isinf(bound):
        return "+Inf"
    return repr(float(bound))


def bucket_index(bounds: tuple[float, ...], value: float) -> int:
    """bisect_left(bounds, value) for strictly increasing bounds: the first bound >= value,
    exactly Prometheus' `le` semantics (a NaN, which compares false, lands in the first
    bucket as with bisect). A loop over the bounds: compiled, it is native float compares
    (one for a request faster than the first bound), where bisect_left is a generic call."""
    index = 0
    for bound in bounds:
        if not bound < value:
            return index
        index += 1
    return index


class HistogramChild:
    """One label combination of a histogram. `counts` are per bucket, cumulated at scrape."""

    __slots__ = ("_bounds", "counts", "exemplars", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last slot is +Inf
        self.total = 0.0
        self.exemplars: list[Exemplar | None] | None = None

    def observe(self, value: float) -> None:
        self.counts[bucket_index(self._bounds, value)] += 1
        self.total += value

    def observe_weighted(self, value: float, weight: int) -> None:
        """`observe` the same value `weight` times, in one step: a sampled statsd timer
        (`@0.01`) stands for 100 observations, and must not cost 100."""
        self.counts[bucket_index(self._bounds, value)] += weight
        self.total += value * weight

    def observe_many(self, values: list[float]) -> None:
        """`observe` each value, in order (the same counts and the same float sum), at C
        speed: the log adapter observes a block's lines at once. Counts come from the sorted
        values, one bisect per bound instead of one per value."""
        total = functools.reduce(operator.add, values, self.total)  # the same left fold
        counts, bounds = self.counts, self._bounds
        if math.isnan(total):  # a NaN among them: sorting would misplace it
            for value in values:
                counts[bucket_index(bounds, value)] += 1
        else:
            ordered = sorted(values)
            below = 0
            for index, bound in enumerate(bounds):
                # bisect_left(bounds, v) == index  <=>  bounds[index - 1] < v <= bound
                upto = bisect_right(ordered, bound, below)
                counts[index] += upto - below
                below = upto
            counts[-1] += len(ordered) - below
        self.total = total

    def observe_with_exemplar(self, value: float, labels: dict[str, str]) -> None:
        index = bucket_index(self._bounds, value)
        self.counts[index] += 1
        self.total += value
        if self.exemplars is None:
            self.exemplars = [None] * len(self.counts)
        self.exemplars[index] = (labels, value, time.time())


class Histogram:
    """A histogram family with label children cached by their label-value key.

    The key may be any hashable (for example a tuple holding an int status code); `label_values`
    turns a key into label strings once, when the child is created.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        label_values: Callable[[Hashable], LabelValues],
        unit: str = "",
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.bounds = validate_buckets(buckets)
        self.unit = unit
        self._label_values = label_values
        self.cap = SeriesCap()
        self._children: dict[Hashable, tuple[LabelValues, HistogramChild]] = {}
        # Past the cap: children by folded label set, not by key (a key per folded request
        # would grow without bound, the thing the cap prevents).
        self._folded: dict[LabelValues, tuple[LabelValues, HistogramChild]] = {}
        self._lock = threading.Lock()

    def child(self, key: Hashable) -> HistogramChild:
        entry = self._children.get(key)
        if entry is None:
            with self._lock:
                entry = self._children.get(key)
                if entry is None:
                    labels = self._label_values(key)
                    if len(labels) != len(self.labelnames):
                        raise ValueError(
                            f"{self.name}: expected {len(self.labelnames)} label values, "
                            f"got {len(labels)}"
                        )
                    if len(self._children) + len(self._folded) >= self.cap.max_series:
                        self.cap.folded()
                        labels = fold_labels(self.labelnames, labels)
                        entry = self._folded.get(labels)
                        if entry is None:
                            entry = self._folded[labels] = (labels, HistogramChild(self.bounds))
                        return entry[1]
                    entry = (labels, HistogramChild(self.bounds))
                    self._children[key] = entry
        return entry[1]

    def own_child(self, key: Hashable) -> HistogramChild | None:
        """The key's child if the family admitted it; None if it was never created, or was
        folded past the cap. A caller may keep only such a child for its key: `child` counts
        each use of a folded key."""
        entry = self._children.get(key)
        return None if entry is None else entry[1]

    def series(self) -> list[tuple[LabelValues, HistogramChild]]:
        """A snapshot of the (labels, child) pairs, admitted ones first, then folded ones."""
        with self._lock:
            return [*self._children.values(), *self._folded.values()]

    def collect(self) -> Metric:
        """The family with the samples HistogramMetricFamily.add_metric would make, built
        without its per-bucket list and zip (those were most of a 10,000-series scrape)."""
        from prometheus_client.metrics_core import HistogramMetricFamily
        from prometheus_client.samples import Exemplar as SampleExemplar
        from prometheus_client.samples import Sample

        family = HistogramMetricFamily(
            self.name, self.documentation, labels=self.labelnames, unit=self.unit
        )
        names = [format_bound(b) for b in (*self.bounds, math.inf)]
        bucket, count, total = family.name + "_bucket", family.name + "_count", family.name + "_sum"
        samples = family.samples
        append = samples.append
        for labels, child in self.series():
            counts = list(child.counts)
            if not any(counts):
                continue  # created but never observed (e.g. a log series seen only untimed)
            exemplars = child.exemplars
            base = dict(zip(self.labelnames, labels, strict=True))
            cumulative = 0
            for index, bucket_count in enumerate(counts):
                cumulative += bucket_count
                bucket_labels = base.copy()
                bucket_labels["le"] = names[index]
                exemplar = exemplars[index] if exemplars is not None else None
                append(Sample(bucket, bucket_labels, cumulative, None,
                              None if exemplar is None else SampleExemplar(*exemplar)))
            append(Sample(count, base, cumulative, None))
            append(Sample(total, dict(base), child.total, None))
        return family


class Cell:
    __slots__ = ("labels", "value")

    def __init__(self, labels: LabelValues) -> None:
        self.labels = labels
        self.value = 0.0


class _Scalar:
    """Shared mechanism of Gauge and Counter: one float cell per label key."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        label_values: Callable[[Hashable], LabelValues] | None = None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._label_values = label_values
        self.cap = SeriesCap()
        self._cells: dict[Hashable, Cell] = {}
        self._folded: dict[LabelValues, Cell] = {}  # past the cap, as Histogram's
        self._lock = threading.Lock()

    def cell(self, key: Hashable) -> Cell:
        cell = self._cells.get(key)
        if cell is None:
            with self._lock:
                cell = self._cells.get(key)
                if cell is None:
                    labels = self._label_values(key) if self._label_values else key
                    if not isinstance(labels, tuple) or len(labels) != len(self.labelnames):
                        raise ValueError(
                            f"{self.name}: expected {len(self.labelnames)} label values, "
                            f"got {labels!r}"
                        )
                    if len(self._cells) + len(self._folded) >= self.cap.max_series:
                        self.cap.folded()
                        labels = fold_labels(self.labelnames, labels)
                        cell = self._folded.get(labels)
                        if cell is None:
                            cell = self._folded[labels] = Cell(labels)
                        return cell
                    cell = Cell(labels)
                    self._cells[key] = cell
        return cell

    def own_cell(self, key: Hashable) -> Cell | None:
        """The key's cell if the family admitted it; None if it was never created, or was
        folded past the cap (kept by a caller, as Histogram.own_child)."""
        return self._cells.get(key)

    def value(self, key: Hashable) -> float:
        cell = self._cells.get(key)
        return cell.value if cell is not None else 0.0

    def series(self) -> list[tuple[LabelValues, float]]:
        """A snapshot of the (labels, value) pairs, admitted ones first, then folded ones."""
        with self._lock:
            return [(cell.labels, cell.value)
                    for cells in (self._cells, self._folded) for cell in cells.values()]


class Gauge(_Scalar):
    """A gauge family (active requests and the like)."""

    def add(self, key: Hashable, amount: float) -> None:
        cell = self._cells.get(key)  # twice per request: the common case without a call
        if cell is None:
            cell = self.cell(key)
        cell.value += amount

    def set(self, key: Hashable, value: float) -> None:
        self.cell(key).value = value

    def collect(self) -> Metric:
        from prometheus_client.metrics_core import GaugeMetricFamily

        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, value in self.series():
            family.add_metric(labels, value)
        return family


class Counter(_Scalar):
    """A counter family; `name` is given without the `_total` suffix the exposition adds."""

    def inc(self, key: Hashable, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError(f"{self.name}: counters only go up, got {amount}")
        self.cell(key).value += amount

    def collect(self) -> Metric:
        from prometheus_client.metrics_core import CounterMetricFamily

        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, value in self.series():
            family.add_metric(labels, value)
        return family


# Interpreted modules (rpc.py) subclass it to add a family; mypyc's compiled classes refuse
# interpreted subclasses unless told.
@mypyc_attr(allow_interpreted_subclasses=True)
class InstrumentCollector:
    """Adapts a set of instruments to prometheus_client's Collector protocol."""

    def __init__(self, instruments: Sequence[Histogram | Gauge | Counter]) -> None:
        self.instruments = tuple(instruments)

    def collect(self) -> Iterator[Metric]:
        self.refresh()
        for instrument in self.instruments:
            yield instrument.collect()

    def refresh(self) -> None:
        """Set the instruments whose values live elsewhere (read at scrape time): none here.
        Every render calls it before it reads the instruments, through `collect` or directly
        (sliced.py writes them without `collect`)."""

    def cap_series(self, cap: SeriesCap) -> None:
        """Cap every family of these instruments with `cap` (and count folds where it says)."""
        for instrument in self.instruments:
            instrument.cap = cap
