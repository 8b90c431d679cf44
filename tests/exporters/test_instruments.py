"""The lean instruments: a block observed at once equals the same values observed one by one."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from redline.exporters.instruments import HistogramChild

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
