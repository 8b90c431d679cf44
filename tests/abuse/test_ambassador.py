"""The ambassador under abuse, as real processes on 127.0.0.1 (#17). Each attack is bounded in
time, and while it runs the ambassador must keep its memory (RSS under 64 MB), answer /healthz
and a proxied request on another connection within 100 ms, count the limit reached in
redline_ambassador_limits_total, and record nothing as the app's failure."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import cast

import pytest

from tests.abuse.watch import Watch, http_ok
from tests.process import wait_port
from tests.sidecars.ambassador.conftest import AmbassadorProcess

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


@contextlib.contextmanager
def watching(ambassador: AmbassadorProcess) -> Iterator[Watch]:
    """Watch the ambassador: /healthz on its admin port and a proxied GET on a connection of
    the probe's own, kept open across probes (it is one of the connections the attack meets)."""
    healthz = f"http://127.0.0.1:{ambassador.admin_port}/healthz"
    proxied = http.client.HTTPConnection("127.0.0.1", ambassador.port, timeout=2)
    try:
        with Watch(ambassador.proc.pid, {
                "healthz": lambda: http_ok(healthz),
                "proxied": lambda: _get(proxied)}) as watch:
            yield watch
    finally:
        proxied.close()


def _get(connection: http.client.HTTPConnection, path: str = "/probe") -> None:
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    assert response.status == 200


CLIENTS_FAULTS = ("", "client_closed", "bad_request")


def no_app_errors(ambassador: AmbassadorProcess) -> None:
    """Nothing charged to the app: no timeout, no 5xx (a client that gave up or sent a bad
    request is at fault itself)."""
    charged = [(name, labels) for name, labels, value in ambassador.samples()
               if name.startswith("http_server_") and value
               and (labels.get("error_type", "") not in CLIENTS_FAULTS
                    or labels.get("http_response_status_code", "").startswith("5"))]
    assert not charged


def run_attack(*args: str, timeout: float = 30) -> dict[str, object]:
    """An attack of tests/abuse/attacks.py in a process of its own; what it reported."""
    done = subprocess.run([sys.executable, "-m", "tests.abuse.attacks", *args],
                          capture_output=True, text=True, timeout=timeout, check=True)
    return cast(dict[str, object], json.loads(done.stdout.splitlines()[-1]))


def test_pipelining_without_reading_stops_at_the_pipeline_limit(upstream_port: int) -> None:
    ambassador = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream_port}",
                                   "--protocol", "http1", "--drain-delay", "0")
    attack = subprocess.Popen([sys.executable, "-c", PIPELINE_ATTACK, str(ambassador.port),
                               "4", "3"], stdout=subprocess.PIPE, text=True)
    assert attack.stdout is not None
    try:
        with watching(ambassador):
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
        with watching(ambassador):  # its proxied connection is one of the 50
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


def test_request_bodies_of_tiny_chunks_are_refused_past_the_free_ones(
        upstream_port: int) -> None:
    """13 MiB of 1-byte chunks took 2.8 s of the ambassador's CPU and stalled everything."""
    ambassador = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream_port}",
                                   "--protocol", "http1", "--drain-delay", "0")
    try:
        with watching(ambassador):
            time.sleep(0.1)
            result = run_attack("tiny-chunks", str(ambassador.port), "--mib", "13",
                                "--seconds", "3")
        assert result["answers"] == ["HTTP/1.1 400 Bad Request"]
        refused = ambassador.value("redline_ambassador_limits_total", limit="small_chunks")
        assert refused == result["connections"]
        assert ambassador.requests_recorded(error_type="bad_request",
                                            http_response_status_code="400") == refused
        no_app_errors(ambassador)
    finally:
        assert ambassador.stop() == 0


def test_random_paths_leave_room_for_a_real_route_that_recurs(upstream_port: int) -> None:
    """3,000 random paths filled the route cap and a real route was /{other} for good."""
    ambassador = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream_port}",
                                   "--protocol", "http1", "--drain-delay", "0")
    connection = http.client.HTTPConnection("127.0.0.1", ambassador.port, timeout=5)
    try:
        _get(connection)  # the watcher's route takes its place first
        with watching(ambassador):
            result = run_attack("random-paths", str(ambassador.port), "--paths", "3000")
        assert result["answered_200"] == 3000
        overflow = ambassador.value("redline_route_overflow_total")
        assert overflow == 3000 - 149  # the first three quarters of the cap of 200, but /probe
        for order in ("77", "78", "79"):
            _get(connection, f"/api/orders/{order}")
        assert ambassador.wait_recorded(2, http_route="/api/orders/{id}") == 2
        assert ambassador.value("redline_route_overflow_total") == overflow + 1
        no_app_errors(ambassador)
    finally:
        connection.close()
        assert ambassador.stop() == 0


def test_unfinished_heads_stop_at_the_process_budget(upstream_port: int) -> None:
    """1,500 connections holding 60 KB of unfinished head each took +78 MiB."""
    ambassador = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream_port}",
                                   "--protocol", "http1", "--drain-delay", "0")
    try:
        with watching(ambassador):
            result = run_attack("held-heads", str(ambassador.port), "--connections", "1000",
                                "--kib", "60", "--seconds", "1", timeout=60)
        answers = cast(dict[str, int], result["answers"])
        refused = answers.get("HTTP/1.1 503 Service Unavailable", 0)
        held = answers.get("(none)", 0)
        assert refused + held == 1000 and held <= 8 * 1024 // 60
        assert ambassador.value("redline_ambassador_limits_total",
                                limit="held_head_bytes") == refused
        assert ambassador.requests_recorded(http_response_status_code="503") == 0  # none
        no_app_errors(ambassador)
    finally:
        assert ambassador.stop() == 0
