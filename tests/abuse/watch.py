"""The abuse suite's watcher (#17): while an attack runs, the attacked process is probed the way
its users reach it and its memory is read, and the bounds every attack must keep are asserted
when the attack ends. One watcher for every part, so that "kept answering" means the same
thing for the ambassador, the adapter and the webhook."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

MAX_RSS_MB = 64.0
MAX_ANSWER_S = 0.1
PROBE_EVERY_S = 0.05
# A watch is part of a test: it never outlives a test that forgot to end it.
MAX_WATCH_S = 120.0

Probe = Callable[[], object]


def _status_kib(pid: int, field: str) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith(field + ":"):
            return int(row.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def rss_mb(pid: int) -> float:
    """The process's resident size now."""
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_kib(pid: int) -> int:
    """The process's largest resident size so far (VmHWM): a peak between two probes shows."""
    return _status_kib(pid, "VmHWM")


def http_ok(url: str) -> None:
    """A probe: GET `url` on a new connection and read the answer, which must be 200."""
    with urllib.request.urlopen(url, timeout=2) as response:
        response.read()
        assert response.status == 200, f"{url} answered {response.status}"


class Watch:
    """Every 50 ms while the `with` block runs: each probe (a name and a callable that raises
    `OSError` or `AssertionError` if the process failed to answer) timed, and the process's
    RSS. On a clean exit: at least one round of probes ran, every probe answered within
    `max_answer_s`, and the peak RSS stayed under `max_rss_mb` (None: not checked, for
    processes whose caller checks growth instead)."""

    def __init__(self, pid: int, probes: Mapping[str, Probe], *,
                 max_answer_s: float = MAX_ANSWER_S,
                 max_rss_mb: float | None = MAX_RSS_MB) -> None:
        self.pid = pid
        self.probes = dict(probes)
        self.max_answer_s = max_answer_s
        self.max_rss_mb = max_rss_mb
        self.slowest = dict.fromkeys(self.probes, 0.0)
        self.failures: dict[str, str] = {}
        self.peak_mb = 0.0
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        deadline = time.monotonic() + MAX_WATCH_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.peak_mb = max(self.peak_mb, rss_mb(self.pid))
            for name, probe in self.probes.items():
                self._time(name, probe)
            self.rounds += 1
            self._stop.wait(PROBE_EVERY_S)

    def _time(self, name: str, probe: Probe) -> None:
        started = time.monotonic()
        try:
            probe()
            took = time.monotonic() - started
        except (OSError, AssertionError) as error:
            self.failures.setdefault(name, repr(error))
            took = float("inf")
        self.slowest[name] = max(self.slowest[name], took)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(5)
        if kind is not None:
            return  # the test's own failure says more
        assert self.rounds >= 1, "no probe ran during the attack"
        for name, took in self.slowest.items():
            assert took < self.max_answer_s, (
                f"{name} took {took:.3f} s (limit {self.max_answer_s} s)"
                + (f": {self.failures[name]}" if name in self.failures else ""))
        if self.max_rss_mb is not None:
            assert self.peak_mb < self.max_rss_mb, (
                f"RSS reached {self.peak_mb:.1f} MB (limit {self.max_rss_mb} MB)")
