"""The load generator: concurrent keep-alive clients that request the demo routes in their
weights, at a target rate, for a bounded time. Pure choice of what to request lives in
behaviour.py; this is the thin IO shell around it.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field

from redline.demo.behaviour import APP_ROUTES, choose, concrete_path

REQUEST_TIMEOUT_S = 10.0


@dataclass
class LoadResult:
    statuses: Counter[str] = field(default_factory=Counter)  # "200", "500", or "error"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: str) -> None:
        with self.lock:
            self.statuses[outcome] += 1

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


def parse_target(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"--target: expected http://HOST:PORT, got {url!r}")
    return parts.hostname, parts.port or 80


def _worker(host: str, port: int, interval: float, deadline: float, seed: int,
            result: LoadResult, stop: threading.Event) -> None:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT_S)
    next_at = time.monotonic() + rng.random() * interval  # spread the workers' first requests
    while not stop.is_set() and next_at < deadline:
        stop.wait(max(0.0, next_at - time.monotonic()))
        next_at += interval
        route = choose(APP_ROUTES, rng)
        body = b'{"cart": 1}' if route.method == "POST" else None
        try:
            conn.request(route.method, concrete_path(route, rng), body=body,
                         headers={"User-Agent": "redline-demo-load/1"})
            answer = conn.getresponse()
            answer.read()
            result.add(str(answer.status))
        except (OSError, http.client.HTTPException):
            result.add("error")  # counted, then a fresh connection: the app may be restarting
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT_S)
    conn.close()


def run_load(target: str, *, rate: float, concurrency: int, duration: float,
             seed: int | None = None, stop: threading.Event | None = None,
             result: LoadResult | None = None) -> LoadResult:
    """Send about `rate` requests per second from `concurrency` clients for `duration` seconds
    (or until `stop` is set); every request's outcome is counted (into `result` if given, so a
    caller can watch the counts grow)."""
    if rate <= 0 or concurrency < 1 or duration <= 0:
        raise ValueError("--rate and --duration must be > 0 and --concurrency >= 1")
    host, port = parse_target(target)
    stop = stop or threading.Event()
    result = result or LoadResult()
    deadline = time.monotonic() + duration
    seeds = random.Random(seed)
    workers = [threading.Thread(target=_worker, daemon=True, name=f"load-{i}",
                                args=(host, port, concurrency / rate, deadline,
                                      seeds.randrange(2**32), result, stop))
               for i in range(concurrency)]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.join()
    except KeyboardInterrupt:  # Ctrl-C: let every client finish its request, then report
        stop.set()
        for worker in workers:
            worker.join()
    return result
