"""Micro-benchmark of the ambassador's per-request hot path: route templating and RED recording.

Side by side in one run, alternating, medians of the rounds:
- recorder: redline's ServerRecorder.request_started + request_finished against the same work
  done with prometheus_client's own Gauge and Histogram (.labels(...).inc/dec/observe);
- templater: RouteTemplater.route on cache hits (repeated paths) and on misses (every path new,
  as with ids in paths), and the heuristic alone.

    .venv/bin/python benchmarks/bench_hot_path.py [--rounds 5] [--calls 200000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Gauge, Histogram

from redline.exporters import red
from redline.exporters.routes import RouteTemplater, heuristic_template

METHODS = [b"GET", b"GET", b"GET", b"POST", b"PUT"]
STATUSES = [200, 200, 200, 201, 404, 500]
ROUTES = [f"/api/v1/resource{i}/{{id}}" for i in range(20)]


def workload(calls: int) -> list[tuple[bytes, str, int, float]]:
    rng = random.Random(1)
    return [(rng.choice(METHODS), rng.choice(ROUTES), rng.choice(STATUSES), rng.random() / 4)
            for _ in range(calls)]


def bench_redline_recorder(work: list[tuple[bytes, str, int, float]]) -> float:
    recorder = red.ServerRecorder("bench")
    started, finished = recorder.request_started, recorder.request_finished
    begin = time.perf_counter()
    for method, route, status, duration in work:
        started(method)
        finished(method, route, status, duration)
    return len(work) / (time.perf_counter() - begin)


def bench_client_python(work: list[tuple[bytes, str, int, float]]) -> float:
    registry = CollectorRegistry()
    histogram = Histogram("http_server_request_duration_seconds", "d", list(red.SERVER_LABELS),
                          buckets=red.DEFAULT_BUCKETS, registry=registry)
    active = Gauge("http_server_active_requests", "a", list(red.SERVER_ACTIVE_LABELS),
                   registry=registry)
    begin = time.perf_counter()
    for method, route, status, duration in work:
        # The same per-request work: normalise the method, derive error_type, label, observe.
        name = red.normalize_method(method)
        active.labels("bench", name, "http").inc()
        active.labels("bench", name, "http").dec()
        histogram.labels("bench", name, str(status), route, "http",
                         red.error_type(status, None)).observe(duration)
    return len(work) / (time.perf_counter() - begin)


def bench_templater_hits(calls: int) -> float:
    templater = RouteTemplater()
    paths = [f"/api/v1/resource{i % 20}/{i % 500}".encode() for i in range(calls)]
    begin = time.perf_counter()
    for path in paths:
        templater.route(path)
    return calls / (time.perf_counter() - begin)


def bench_templater_misses(calls: int) -> float:
    templater = RouteTemplater()
    paths = [f"/api/v1/resource{i % 20}/{i}?page={i % 7}".encode() for i in range(calls)]
    begin = time.perf_counter()
    for path in paths:
        templater.route(path)
    return calls / (time.perf_counter() - begin)


def bench_heuristic(calls: int) -> float:
    paths = [f"/users/{i}/orders/550e8400-e29b-41d4-a716-{i:012d}" for i in range(calls)]
    begin = time.perf_counter()
    for path in paths:
        heuristic_template(path)
    return calls / (time.perf_counter() - begin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    work = workload(args.calls)
    cases: dict[str, Callable[[], float]] = {
        "recorder: redline ServerRecorder": lambda: bench_redline_recorder(work),
        "recorder: prometheus_client Histogram+Gauge": lambda: bench_client_python(work),
        "templater: cache hits": lambda: bench_templater_hits(args.calls),
        "templater: cache misses (new id each call)": lambda: bench_templater_misses(args.calls),
        "heuristic_template alone": lambda: bench_heuristic(args.calls),
    }
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):  # alternate the cases each round, so drift hits all alike
        for name, case in cases.items():
            results[name].append(case())
    print(f"| case | calls/s (median of {args.rounds}) | per call |")
    print("|---|---:|---:|")
    for name, rates in results.items():
        rate = statistics.median(rates)
        print(f"| {name} | {rate:,.0f} | {1e6 / rate:.2f} µs |")
    ours = statistics.median(results["recorder: redline ServerRecorder"])
    anchor = statistics.median(results["recorder: prometheus_client Histogram+Gauge"])
    print(f"\nrecorder ratio redline / prometheus_client: {ours / anchor:.2f}x")


if __name__ == "__main__":
    main()
