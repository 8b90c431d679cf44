"""The lean instruments: a block observed at once equals the same values observed one by one;
the series cap folds what is past it into one label set, and counts it; a value lands in the
bucket bisect_left gives."""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.metrics_core import HistogramMetricFamily
from prometheus_client.samples import Exemplar

from redline.exporters.instruments import (
    DEFAULT_MAX_SERIES,
    OTHER,
    Counter,
    Gauge,
    Histogram,
    HistogramChild,
    InstrumentCollector,
    SeriesCap,
    bucket_index,
    fold_labels,
)
from redline.exporters.red import ServerRecorder

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
value = st.one_of(st.sampled_from([*BOUNDS, 0.0, -0.0, math.inf, -math.inf, math.nan]),
                  st.floats(min_value=-1, max_value=20, allow_nan=False))


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(value, max_size=80), max_size=5))
def test_property_observe_many_equals_observe_one_by_one(blocks: list[list[float]]) -> None:
    one_by_one, at_once = HistogramChild(BOUNDS), HistogramChild(BOUNDS)
    for block in blocks:
        for v in block:
            one_by_one.observe(v)
        at_once.observe_many(block)
    assert at_once.counts == one_by_one.counts
    assert same(at_once.total, one_by_one.total)  # the same float sum, bit for bit


def test_a_value_on_a_bound_counts_in_that_bucket() -> None:
    child = HistogramChild(BOUNDS)
    child.observe_many([0.005, 0.0051, 10.0, 10.5])
    assert child.counts[0] == 1 and child.counts[1] == 1
    assert child.counts[len(BOUNDS) - 1] == 1 and child.counts[-1] == 1


# --- the series cap ---------------------------------------------------------------------------

def test_label_sets_past_the_cap_fold_into_one_counted_label_set() -> None:
    limits = Counter("limits", "Limits reached.", ("limit",))
    cap = SeriesCap(3, limits, ("max_series",))
    recorder = ServerRecorder("shop")
    recorder.collector().cap_series(cap)
    assert limits.value(("max_series",)) == 0 and limits.series() == [(("max_series",), 0.0)]
    for index in range(10):
        recorder.record("GET", f"/r{index}", 200, 0.01)
    recorder.record("GET", "/r0", 200, 0.01)  # admitted before the cap: still its own series
    recorder.record("POST", "/new", 503, 0.01)  # a failure past the cap stays a failure
    series = {labels: child for labels, child in recorder.duration.series()}
    assert len(series) == 5  # 3 admitted, the folded success and the folded failure
    assert sum(series[("shop", "GET", "200", "/r0", "http", "")].counts) == 2
    assert sum(series[("shop", OTHER, OTHER, OTHER, OTHER, "")].counts) == 7
    assert sum(series[("shop", OTHER, OTHER, OTHER, OTHER, OTHER)].counts) == 1
    assert limits.value(("max_series",)) == 8 and cap.folded_total == 8
    total = sum(sum(child.counts) for child in series.values())
    assert total == 12  # nothing lost: the rate over every series is right


def test_counters_and_gauges_fold_as_histograms_do() -> None:
    counter = Counter("things", "Things.", ("service_name", "kind"))
    gauge = Gauge("open", "Open things.", ("service_name", "kind"))
    InstrumentCollector([counter, gauge]).cap_series(SeriesCap(2))
    for kind in ("a", "b", "c", "d"):
        counter.inc(("shop", kind))
        gauge.add(("shop", kind), 1)
    for kind in ("c", "d"):  # the ones folded go down in the folded series too
        gauge.add(("shop", kind), -1)
    assert dict(counter.series()) == {("shop", "a"): 1, ("shop", "b"): 1, ("shop", OTHER): 2}
    assert dict(gauge.series()) == {("shop", "a"): 1, ("shop", "b"): 1, ("shop", OTHER): 0}


def test_the_default_cap_and_bad_caps() -> None:
    assert Histogram("h", "H.", ("a",), BOUNDS, lambda key: (str(key),)).cap.max_series == \
        DEFAULT_MAX_SERIES
    with pytest.raises(ValueError, match="max_series: expected at least 1 series, got 0"):
        SeriesCap(0)


def test_fold_labels_keeps_the_service_and_whether_it_failed() -> None:
    names = ("service_name", "http_route", "error_type")
    assert fold_labels(names, ("shop", "/a", "")) == ("shop", OTHER, "")
    assert fold_labels(names, ("shop", "/a", "timeout")) == ("shop", OTHER, OTHER)


def test_histogram_collect_makes_the_samples_add_metric_makes() -> None:
    """collect() builds its samples itself (faster); they must equal add_metric's."""
    recorder = ServerRecorder("shop")
    for index, status in enumerate([200, 404, 503, None, 42]):
        recorder.record("GET", f"/r{index}", status, index / 3,
                        trace_id="ab" if index % 2 else None)
    recorder.duration.child(("GET", 200, "/never", "http", ""))  # created, never observed
    expected = HistogramMetricFamily(
        "http_server_request_duration", "Duration of HTTP server requests, until the last "
        "byte of the response.", labels=recorder.duration.labelnames, unit="seconds")
    for labels, child in recorder.duration.series():
        if any(child.counts):
            cumulative = list(itertools.accumulate(child.counts))
            names = [*(repr(b) for b in recorder.duration.bounds), "+Inf"]
            exemplars = child.exemplars or [None] * len(cumulative)
            expected.add_metric(labels, [(n, c) if e is None else (n, c, Exemplar(*e))
                                         for n, c, e in zip(names, cumulative, exemplars,
                                                            strict=True)], child.total)
    assert recorder.duration.collect() == expected


@given(st.lists(st.floats(min_value=1e-9, max_value=1e9), min_size=1, max_size=16,
                unique=True).map(lambda bounds: tuple(sorted(bounds))), value)
def test_the_bucket_of_a_value_is_bisect_lefts(bounds: tuple[float, ...], x: float) -> None:
    assert bucket_index(bounds, x) == bisect_left(bounds, x)
    assert bucket_index(BOUNDS, x) == bisect_left(BOUNDS, x)
