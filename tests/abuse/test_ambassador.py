"""The ambassador under abuse, as real processes on 127.0.0.1 (#17). Each attack is bounded in
time, and while it runs the ambassador must keep its memory (RSS under 64 MB), answer /healthz
and a proxied request on another connection within 100 ms, count the limit reached in
redline_ambassador_limits_total, and record nothing as the app's failure."""

from __future__ import annotations

import contextlib
import http.client
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import pytest

from tests.process import wait_port
from tests.sidecars.ambassador.conftest import AmbassadorProcess

MAX_RSS_MB = 64
MAX_ANSWER_S = 0.1
# The upstream app in a process of its own: its threads must not share this process's GIL
# with the attack and the probes.
UPSTREAM = """
import sys, time
from tests.sidecars.ambassador.upstream import UpstreamServer
with UpstreamServer() as server:
    print(server.port, flush=True)
    sys.stdin.read()
"""
# The attack in a process of its own too, so that the probes time the ambassador and not this
# process's GIL: CONNECTIONS connections pipeline GETs for SECONDS and never read a response.
PIPELINE_ATTACK = """
import contextlib, socket, sys, time
port, connections, seconds = map(int, sys.argv[1:])
attackers = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
burst = b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n" * 2000
for attacker in attackers:
    attacker.setblocking(False)
print("connected", flush=True)
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    sent = 0
    for attacker in attackers:
        with contextlib.suppress(BlockingIOError):  # its buffer is full
            sent += attacker.send(burst)
    # Paced a little: the point is never reading, not taking the CPU from the ambassador.
    time.sleep(0.002 if sent else 0.005)  # nothing sent: the ambassador stopped reading
"""


def rss_mb(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture(scope="module")
def upstream_port() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", UPSTREAM], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    port = int(proc.stdout.readline())
    wait_port(port)
    try:
        yield port
    finally:
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()


class Watch:
    """While an attack runs, every 50 ms: /healthz and a proxied GET on a connection of its
    own, timed, and the ambassador's peak RSS."""

    def __init__(self, ambassador: AmbassadorProcess) -> None:
        self.ambassador = ambassador
        self.slowest = {"healthz": 0.0, "proxied": 0.0}
        self.peak_mb = 0.0
        self.probes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        healthz = f"http://127.0.0.1:{self.ambassador.admin_port}/healthz"
        proxied = http.client.HTTPConnection("127.0.0.1", self.ambassador.port, timeout=2)
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, rss_mb(self.ambassador.proc.pid))
            self._time("healthz", lambda: urllib.request.urlopen(healthz, timeout=2).read())
            self._time("proxied", lambda: _get(proxied))
            self.probes += 1
            self._stop.wait(0.05)
        proxied.close()

    def _time(self, what: str, probe: Callable[[], object]) -> None:
        started = time.monotonic()
        try:
            probe()
            took = time.monotonic() - started
        except OSError:
            took = float("inf")
        self.slowest[what] = max(self.slowest[what], took)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(5)
        if kind is None:
            assert self.probes >= 1
            for what, took in self.slowest.items():
                assert took < MAX_ANSWER_S, f"{what} took {took:.3f} s"
            assert self.peak_mb < MAX_RSS_MB, f"RSS reached {self.peak_mb:.1f} MB"


def _get(connection: http.client.HTTPConnection) -> None:
    connection.request("GET", "/probe")
    response = connection.getresponse()
    response.read()
    assert response.status == 200


def no_app_errors(ambassador: AmbassadorProcess) -> None:
    """Nothing charged to the app: no timeout, no 5xx (a client that gave up is its own)."""
    charged = [(name, labels) for name, labels, value in ambassador.samples()
               if name.startswith("http_server_") and value
               and (labels.get("error_type", "") not in ("", "client_closed")
                    or labels.get("http_response_status_code", "").startswith("5"))]
    assert not charged


def test_pipelining_without_reading_stops_at_the_pipeline_limit(upstream_port: int) -> None:
    ambassador = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream_port}",
                                   "--protocol", "http1", "--drain-delay", "0")
    attack = subprocess.Popen([sys.executable, "-c", PIPELINE_ATTACK, str(ambassador.port),
                               "4", "3"], stdout=subprocess.PIPE, text=True)
    assert attack.stdout is not None
    try:
        with Watch(ambassador):
            assert attack.stdout.readline() == "connected\n"
            assert attack.wait(10) == 0
        assert ambassador.value("redline_ambassador_limits_total", limit="pipeline_full") >= 4
        no_app_errors(ambassador)
    finally:
        attack.kill()
        attack.wait()
        attack.stdout.close()
        assert ambassador.stop() == 0


def test_connections_past_max_connections_are_closed_at_once(upstream_port: int) -> None:
    ambassador = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream_port}",
                                   "--protocol", "http1", "--drain-delay", "0",
                                   "--max-connections", "50")
    idle: list[socket.socket] = []
    try:
        with Watch(ambassador):  # its proxied connection is one of the 50
            time.sleep(0.2)
            idle = [socket.create_connection(("127.0.0.1", ambassador.port))
                    for _ in range(300)]
            time.sleep(0.5)
            closed = 0
            for connection in idle:
                connection.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    closed += connection.recv(1) == b""
            time.sleep(0.3)
        assert 300 - 49 <= closed < 300
        assert ambassador.value("redline_ambassador_limits_total",
                                limit="max_connections") == closed
        assert ambassador.value("redline_ambassador_connections_open", side="client") <= 50
    finally:
        for connection in idle:
            connection.close()
        assert ambassador.stop() == 0
