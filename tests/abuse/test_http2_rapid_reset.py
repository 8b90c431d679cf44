"""Rapid reset at full size against a real ambassador (#18, CVE-2023-44487): thousands of
streams per write, every header block new, so none is decoded from the observer's cache
(tests/abuse/h2_rapid_reset.py). Observing one such read cost up to 890 ms of the event loop
before its bounds (h2streams.py); now each connection stops being observed at the bound,
counted in redline_ambassador_limits_total, and:

- every byte still reaches the app unchanged (the app, tests/abuse/h2_sink.py, hashes what it
  received per connection; the attacker hashes what it sent);
- meanwhile the ambassador answers /healthz and a gRPC call on another connection, through a
  second port to a real grpcio server, within 100 ms, with RSS under 64 MB (tests/abuse/
  watch.py), and that call is still recorded;
- nothing is charged to the app, and the log has no traceback.

The attacker and the app run at nice 19, as in tests/abuse/test_http2.py (which says why)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.abuse.test_http2 import LOW_PRIORITY, ROOT, attacked
from tests.process import wait_port
from tests.sidecars.ambassador.conftest import AmbassadorProcess


def _start(module: str, prefix: list[str], *args: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([*prefix, sys.executable, "-m", module, *args], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    wait_port(port)
    return proc, port


def _stop(proc: subprocess.Popen[str]) -> str:
    """Close its stdin (it ends) and return what it printed after its port."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    out = proc.stdout.read()  # a few lines: they fit the pipe while it ran
    proc.stdout.close()
    return out


@pytest.fixture
def sink() -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc, port = _start("tests.abuse.h2_sink", LOW_PRIORITY)
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            _stop(proc)


@pytest.fixture
def grpc_port() -> Iterator[int]:
    proc, port = _start("tests.abuse.grpc_upstream", [])
    try:
        yield port
    finally:
        _stop(proc)


@pytest.fixture
def ambassador(sink: tuple[subprocess.Popen[str], int],
               grpc_port: int) -> Iterator[AmbassadorProcess]:
    """ports[0] fronts the sink (attacked), ports[1] the grpcio server (the probe's)."""
    pairs = [arg for port in (sink[1], grpc_port) for arg in (
        "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{port}", "--protocol", "h2c")]
    proc = AmbassadorProcess(*pairs, "--drain-delay", "0", "--drain-timeout", "5",
                             listen=False)
    try:
        yield proc
    finally:
        assert proc.stop() == 0
    assert not [entry for entry in proc.logs
                if "exc" in entry or "Traceback" in str(entry.get("msg", ""))]


@pytest.mark.parametrize(("attack", "limit"), [
    ("rapid_reset", "http2_rapid_reset"),
    ("stream_flood", "http2_streams_per_read"),
])
def test_observation_costs_are_bounded_and_every_byte_still_flows(
        ambassador: AmbassadorProcess, sink: tuple[subprocess.Popen[str], int], attack: str,
        limit: str) -> None:
    # Every probe recorded and nothing charged to the app: checked by `attacked`.
    stats, watch = attacked(ambassador, attack, module="tests.abuse.h2_rapid_reset",
                            port=ambassador.ports[0], timeout=120)
    connections = stats["connections"]
    assert connections >= 1 and stats["streams"] >= 20_000 * connections
    # Each connection stopped being observed at its bound, once, and it is counted.
    assert ambassador.wait_value("redline_ambassador_limits_total", connections,
                                 limit=limit) == connections
    assert ambassador.value("redline_ambassador_http2_unobserved_connections_total",
                            reason="client_limit") == connections
    # The bytes, all of them, unchanged: what the app received is what was sent.
    received = [json.loads(line) for line in _stop(sink[0]).splitlines()]
    # (wait_port's connection sent nothing: not the attacker's)
    assert sorted(entry["sha256"] for entry in received if entry["bytes"]) == sorted(
        stats["sent"])
    print(f"{attack}: {connections} connections, {stats['streams']} streams; slowest "
          f"probes {watch.slowest}, peak RSS {watch.peak_mb:.1f} MB")
