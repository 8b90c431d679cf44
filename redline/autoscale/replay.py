"""The simulator's IO shell: each target's query over the last `since`, from Prometheus, into
the pure HPA core (hpa.py).

A range is asked as a subquery, `(query)[since:step]`, through `redline stat`'s one HTTP call:
Prometheus evaluates the query at every step-aligned time in the range, which is what a range
query returns, with no second HTTP client to keep.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redline.autoscale import signals
from redline.autoscale.hpa import TOLERANCE, Decision, simulate
from redline.autoscale.model import Scaling
from redline.config import ConfigError
from redline.queries import SERVICE, scrape_targets
from redline.stat.command import query

Query = Callable[[str, str], list[dict[str, Any]]]
Series = dict[float, float]


@dataclass(frozen=True)
class ReplayConfig:
    prometheus: str = "http://127.0.0.1:9090"
    since: str = "1h"  # a PromQL duration
    step: int = 15  # seconds: the HPA controller's sync period
    replicas: int | None = None  # None: the pods observed at the start, else min_replicas
    pod_label: str = "instance"  # what tells one scraped pod from another
    keda: bool = True  # apply KEDA's fallback where a query had no value
    tolerance: float = TOLERANCE


@dataclass(frozen=True)
class Replay:
    service: str
    scaling: Scaling
    times: tuple[float, ...]
    values: dict[str, list[float | None]]  # target key -> value at each time
    observed: list[float | None]  # pods seen at each time
    decisions: list[Decision]


def series(prometheus: str, expr: str, config: ReplayConfig, run_query: Query,
           what: str) -> Series:
    """One series of `expr` over the range: time -> value. NaN reads as no value."""
    result = run_query(prometheus, f"({expr})[{config.since}:{config.step}s]")
    if len(result) > 1:
        raise ConfigError(f"{what}: the query returned {len(result)} series, expected one; "
                          f"add labels (namespace, cluster) to the scaling block to select "
                          f"one:\n{expr}")
    if not result:
        return {}
    return {float(t): float(v) for t, v in result[0]["values"] if not math.isnan(float(v))}


def replay(service: str, scaling: Scaling, config: ReplayConfig,
           run_query: Query = query) -> Replay:
    fetched = {target.key: series(config.prometheus, signals.query(service, scaling, target),
                                  config, run_query, f"{service}: {target.key}")
               for target in scaling.targets}
    pods = series(config.prometheus, scrape_targets(
        signals.source_metric(scaling.targets[0]), signals.matchers(service, scaling), SERVICE,
        config.pod_label), config, run_query, f"{service}: pods")
    stamps = [t for values in fetched.values() for t in values]
    if not stamps:
        raise ConfigError(f"Prometheus at {config.prometheus} has no data for service "
                          f"{service!r} in the last {config.since}: is it scraping redline's "
                          f"sidecars, and is the service name right?")
    first, last = min(stamps), max(stamps)
    times = tuple(first + i * config.step
                  for i in range(round((last - first) / config.step) + 1))
    values = {key: [got.get(t) for t in times] for key, got in fetched.items()}
    observed = [pods.get(t) for t in times]
    start = config.replicas or int(observed[0] or 0) or scaling.min_replicas
    decisions = simulate(scaling, times, values, start, keda=config.keda,
                         tolerance=config.tolerance)
    return Replay(service, scaling, times, values, observed, decisions)


def current_values(service: str, scaling: Scaling, prometheus: str,
                   run_query: Query = query) -> dict[str, float]:
    """Each target's value now, as KEDA or the adapter would read it (targets without a value
    left out): what hpa.desired_replicas takes."""
    values = {}
    for target in scaling.targets:
        result = run_query(prometheus, signals.query(service, scaling, target))
        if len(result) == 1 and not math.isnan(float(result[0]["value"][1])):
            values[target.key] = float(result[0]["value"][1])
    return values


def replays(found: Sequence[tuple[str, Scaling]], config: ReplayConfig,
            run_query: Query = query) -> list[Replay]:
    return [replay(service, scaling, config, run_query) for service, scaling in found]
