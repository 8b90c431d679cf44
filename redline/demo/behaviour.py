"""How the demo app behaves, as pure functions of a random source: which routes exist, how long
each takes, how often each fails, and what its access-log line looks like.

The shapes are chosen so every dashboard panel has something to show: fast reads, a slower
checkout that fails a few percent of the time and calls an external dependency, a heavy-tailed
search (p99 far above p50), ids in the path that the route templater must fold, and gRPC calls
to an inventory service that answer NOT_FOUND now and then (an answer, not an error) and fail
with INTERNAL or UNAVAILABLE more rarely.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

LATENCY_CAP_S = 5.0  # a sample from a heavy tail must not stall a worker for minutes


@dataclass(frozen=True)
class Route:
    method: str
    template: str           # as the route templater will name it, `{id}` for the id segment
    median_s: float         # of a log-normal latency
    sigma: float            # its spread: 0.3 is tight, 1.2 is a heavy tail
    error_ratio: float      # share of requests answered 500
    weight: float           # share of the load generator's requests
    calls_dependency: bool = False
    inventory_method: str | None = None  # the gRPC method of the inventory it calls first


APP_ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/items", 0.004, 0.3, 0.001, 0.40),
    Route("GET", "/api/items/{id}", 0.008, 0.4, 0.002, 0.30, inventory_method="GetStock"),
    Route("GET", "/api/search", 0.040, 1.2, 0.005, 0.15),
    Route("POST", "/api/checkout", 0.120, 0.5, 0.04, 0.15, calls_dependency=True,
          inventory_method="Reserve"),
)
# The "external" payment service the checkout calls through the outbound ambassador.
DEPENDENCY_ROUTES: tuple[Route, ...] = (
    Route("POST", "/charge", 0.030, 0.4, 0.01, 1.0),
)




@dataclass(frozen=True)
class GrpcMethod:
    name: str
    median_s: float
    sigma: float
    failures: tuple[tuple[str, float], ...]  # (gRPC status name, share of calls); the rest OK


# The inventory, a gRPC service the app calls (through an ambassador with --protocol h2c).
INVENTORY_SERVICE = "demo.Inventory"
INVENTORY_METHODS: tuple[GrpcMethod, ...] = (
    GrpcMethod("GetStock", 0.003, 0.4, (("NOT_FOUND", 0.08), ("UNAVAILABLE", 0.005))),
    GrpcMethod("Reserve", 0.010, 0.5, (("INTERNAL", 0.02), ("UNAVAILABLE", 0.01))),
)


def outcome(method: GrpcMethod, rng: random.Random) -> str:
    """The status name this call answers with: OK, or one of the method's failures."""
    draw = rng.random()
    for status, share in method.failures:
        if draw < share:
            return status
        draw -= share
    return "OK"


def routes_for(role: str) -> tuple[Route, ...]:
    if role == "app":
        return APP_ROUTES
    if role == "dependency":
        return DEPENDENCY_ROUTES
    raise ValueError(f"--role: expected app or dependency, got {role!r}")


def latency(route: Route | GrpcMethod, rng: random.Random) -> float:
    """Seconds this request takes (log-normal around the route's median, capped)."""
    return min(rng.lognormvariate(math.log(route.median_s), route.sigma), LATENCY_CAP_S)


def fails(route: Route, rng: random.Random) -> bool:
    return rng.random() < route.error_ratio


def concrete_path(route: Route, rng: random.Random) -> str:
    """A path the load generator requests: ids drawn from a wide range, so the templater folds
    thousands of distinct paths into one route."""
    return route.template.replace("{id}", str(rng.randrange(1, 100_000)))


def choose(routes: tuple[Route, ...], rng: random.Random) -> Route:
    return rng.choices(routes, weights=[r.weight for r in routes])[0]


def access_log_line(remote: str, method: str, target: str, status: int, size: int,
                    seconds: float, user_agent: str, now: float | None = None) -> str:
    """nginx `combined` followed by `$request_time`, which `redline adapter --format nginx`
    reads (the app logs like an nginx in front of it would)."""
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))
    agent = user_agent.replace('"', "'")
    return (f'{remote} - - [{stamp}] "{method} {target} HTTP/1.1" {status} {size} "-" '
            f'"{agent}" {seconds:.3f}\n')
