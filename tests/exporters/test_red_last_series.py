"""ServerRecorder and ClientRecorder keep the series their last request used (last_series.py,
red.LastMethod): whatever the order of requests, every series, bucket, sum, exemplar, gauge
and fold count is what looking each request's series up afresh gives, with and without a
series cap reached."""

from __future__ import annotations

from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redline.exporters import red
from redline.exporters.instruments import SeriesCap

GET = b"GET"  # one object, as a connection's repeated head gives it: kept by identity

# method, route, status, error, duration, scheme, trace_id, whether the request is started. To
# a ClientRecorder, the route is the server's address and the scheme its port (PORTS).
Request = tuple[str | bytes, str, int | None, str | None, float, str, str | None, bool]

# Few values, some more likely than others: requests then often repeat, or differ from the one
# before in one part only.
requests = st.tuples(
    st.sampled_from([GET, GET, b"POST", "GET", b"BREW"]),
    st.sampled_from(["/a", "/b", "".join(["/", "a"])]),  # "/a" twice: equal, not identical
    st.sampled_from([200, 200, 200, 404, 503, 700, None]),
    st.sampled_from([None, None, None, None, red.TIMEOUT, "odd"]),
    st.sampled_from([0.001, 0.005, 0.3, 20.0, float("nan")]),
    st.sampled_from(["http", "http", "https"]),
    st.sampled_from([None, None, "t1", "t2"]),
    st.booleans(),
)


PORTS = {"http": 80, "https": 443}
Recorder = red.ServerRecorder | red.ClientRecorder


def looked_up(recorder: Recorder, request: Request, step: str) -> None:
    """What the recorder did before it kept its last series: each request's gauge cell and
    histogram child found by its key."""
    method, route, status, error, duration, scheme, trace_id, _ = request
    normalized = red.normalize_method(method)
    where: str | int = scheme if isinstance(recorder, red.ServerRecorder) else PORTS[scheme]
    active = (normalized, where) if isinstance(recorder, red.ServerRecorder) else (route, where)
    if step == "start":
        recorder.active.add(active, 1)
        return
    if step == "finish":
        recorder.active.add(active, -1)
    key = (normalized, red.fold_status(status), route, where, red.error_type(status, error))
    child = recorder.duration.child(key)
    if trace_id is None:
        child.observe(duration)
    else:
        child.observe_with_exemplar(duration, {"trace_id": trace_id})


def recorded(recorder: Recorder, request: Request, step: str) -> None:
    method, route, status, error, duration, scheme, trace_id, _ = request
    if isinstance(recorder, red.ClientRecorder):  # no record(): every request is started
        if step == "start":
            recorder.request_started(route, PORTS[scheme])
        else:
            recorder.request_finished(method, route, PORTS[scheme], status, duration,
                                      error=error, trace_id=trace_id)
        return
    if step == "start":
        recorder.request_started(method, scheme)
    elif step == "finish":
        recorder.request_finished(method, route, status, duration, scheme=scheme, error=error,
                                  trace_id=trace_id)
    else:
        recorder.record(method, route, status, duration, scheme=scheme, error=error,
                        trace_id=trace_id)


def state(recorder: Recorder) -> object:
    histogram = [(labels, [*child.counts], repr(child.total),
                  None if child.exemplars is None else
                  [None if e is None else (e[0], repr(e[1])) for e in child.exemplars])
                 for labels, child in recorder.duration.series()]
    return histogram, recorder.active.series(), recorder.duration.cap.folded_total


def same_as_looked_up(sequence: list[Request], max_series: int | None = None,
                      kind: type[Recorder] = red.ServerRecorder) -> None:
    kept, fresh = kind("shop"), kind("shop")
    if max_series is not None:
        kept.collector().cap_series(SeriesCap(max_series))
        fresh.collector().cap_series(SeriesCap(max_series))
    if kind is red.ClientRecorder:  # every request is started
        sequence = [(*request[:7], True) for request in sequence]
    # The started requests all start, then all finish (in flight together); the others are
    # recorded where they come, between the starts.
    steps = [(request, "start" if request[7] else "record") for request in sequence]
    steps += [(request, "finish") for request in sequence if request[7]]
    for request, step in steps:
        recorded(kept, request, step)
        looked_up(fresh, request, step)
        assert state(kept) == state(fresh)


@settings(max_examples=300, deadline=None)
@given(st.lists(requests, min_size=1, max_size=4), st.lists(st.integers(0, 3), max_size=40),
       st.sampled_from([None, 1, 3, 6]), st.sampled_from([red.ServerRecorder, red.ClientRecorder]))
def test_every_series_is_the_one_each_request_names(
        kinds: list[Request], picks: list[int], max_series: int | None,
        kind: type[Recorder]) -> None:
    # A few kinds of request, each repeated: series repeat, and change, as a sidecar's do.
    same_as_looked_up([kinds[pick % len(kinds)] for pick in picks], max_series, kind)


BASE: Request = (GET, "/a", 200, None, 0.1, "http", "t1", False)


@pytest.mark.parametrize(("part", "other"), [(0, b"POST"), (1, "/b"), (2, 201), (5, "https")])
@pytest.mark.parametrize("started", [False, True])
@pytest.mark.parametrize("kind", [red.ServerRecorder, red.ClientRecorder])
def test_a_request_one_part_apart_from_the_last_lands_in_its_own_series(
        part: int, other: object, started: bool, kind: type[Recorder]) -> None:
    base: Request = (*BASE[:7], started)  # both started: the gauge's key changes too
    changed: list[object] = list(base)
    changed[part] = other
    apart = cast(Request, tuple(changed))
    same_as_looked_up([base, base, apart, apart, base, apart], kind=kind)


def test_a_gauge_cell_in_flight_across_a_change_of_series() -> None:
    recorder = red.ServerRecorder("shop")
    recorder.request_started(GET)
    recorder.request_started(b"POST", "https")
    recorder.request_finished(GET, "/a", 200, 0.1)
    assert recorder.active.value(("GET", "http")) == 0
    assert recorder.active.value(("POST", "https")) == 1
    recorder.request_finished(b"POST", "/a", 200, 0.1, scheme="https")
    assert recorder.active.value(("POST", "https")) == 0


def test_a_client_gauge_cell_in_flight_across_a_change_of_peer() -> None:
    recorder = red.ClientRecorder("shop")
    recorder.request_started("db", 5432)
    recorder.request_started("db", 5433)
    recorder.request_finished(GET, "db", 5432, 200, 0.1)
    assert recorder.active.value(("db", 5432)) == 0
    assert recorder.active.value(("db", 5433)) == 1
    recorder.request_finished(GET, "db", 5433, 200, 0.1)
    assert recorder.active.value(("db", 5433)) == 0
