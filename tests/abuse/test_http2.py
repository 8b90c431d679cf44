"""The ambassador's h2c port under HTTP/2 abuse, as real processes on 127.0.0.1 (#17, #18).

A real h2c server (grpcio, tests/abuse/grpc_upstream.py) behind a real ambassador
(`--protocol h2c`); each attack (tests/abuse/h2_attacks.py) runs in a process of its own for a
few seconds. While it runs, the ambassador must keep its RSS under 64 MB and answer /healthz on
its admin port and a gRPC call on another connection within 100 ms; afterwards nothing may be
recorded as the app's error, no request may be left in flight, the probe's calls must have been
recorded, and its log has no traceback. Where observation has to give up on a connection (bytes
it cannot read, a header block over --max-header-bytes) it counts it in
redline_ambassador_http2_unobserved_connections_total and keeps relaying.

The probe's call goes through a second h2c port of the same ambassador process to a second
grpcio server that is not attacked: grpcio's own server, attacked directly on this machine,
failed or delayed direct calls for seconds under the HPACK bomb, rapid reset and the 10 MiB
readers, so a probe through the attacked app would time grpcio, not the ambassador. Each test
has its own upstreams and ambassador: an attack may leave grpcio holding memory or cancelling
calls, and one attack's peak must not be charged to the next. The attack and the attacked app
run at the lowest CPU priority (nice 19): on two cores their own CPU would otherwise delay the
probes as much as anything the ambassador does."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.abuse.grpc_upstream import ECHO, OPTIONS
from tests.abuse.watch import Watch
from tests.process import wait_port
from tests.sidecars.ambassador.conftest import AmbassadorProcess

ROOT = Path(__file__).resolve().parents[2]
ATTACK_SECONDS = 3.0
LOW_PRIORITY = ["nice", "-n", "19"]
# What a client that gave up may be recorded as: its own doing, not the app's.
CLIENT_SIDE_ERRORS = ("", "client_closed")


@pytest.fixture
def upstream_ports() -> Iterator[tuple[int, int]]:
    """Two grpcio servers: the attacked app, and the probe's."""
    procs = [subprocess.Popen([*prefix, sys.executable, "-m", "tests.abuse.grpc_upstream"],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
             for prefix in (LOW_PRIORITY, [])]
    try:
        ports = []
        for proc in procs:
            assert proc.stdout is not None
            ports.append(int(proc.stdout.readline()))
            wait_port(ports[-1])
        yield ports[0], ports[1]
    finally:
        for proc in procs:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.close()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()


@pytest.fixture
def ambassador(upstream_ports: tuple[int, int]) -> Iterator[AmbassadorProcess]:
    """ports[0] fronts the attacked app, ports[1] the probe's."""
    pairs = [arg for port in upstream_ports for arg in (
        "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{port}", "--protocol", "h2c")]
    proc = AmbassadorProcess(*pairs, "--drain-delay", "0", "--drain-timeout", "5",
                             listen=False)
    try:
        yield proc
    finally:
        assert proc.stop() == 0
    tracebacks = [entry for entry in proc.logs
                  if "exc" in entry or "Traceback" in str(entry.get("msg", ""))]
    assert not tracebacks


class GrpcCall:
    """The probe: a unary call on a channel (an HTTP/2 connection) of its own, as the app's
    real clients make them."""

    def __init__(self, port: int) -> None:
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=OPTIONS)
        grpc.channel_ready_future(self.channel).result(timeout=5)
        self.echo = self.channel.unary_unary(ECHO)

    def __call__(self) -> None:
        try:
            answer = self.echo(b"probe", timeout=2)
        except grpc.RpcError as error:  # Watch counts OSError and AssertionError as failures
            raise AssertionError(f"gRPC call through the ambassador: {error}") from error
        assert answer == b"probe"

    def close(self) -> None:
        self.channel.close()


def attacked(ambassador: AmbassadorProcess, attack: str, module: str = "tests.abuse.h2_attacks",
             port: int | None = None, timeout: float = 60) -> tuple[dict[str, Any], Watch]:
    """Run one attack of `module` against `port` (the ambassador's first h2c port) under
    watch, a gRPC probe on its second port; what the attack did."""
    call = GrpcCall(ambassador.ports[1])
    healthz = f"http://127.0.0.1:{ambassador.admin_port}/healthz"
    try:
        with Watch(ambassador.proc.pid, {
                "healthz": lambda: urllib.request.urlopen(healthz, timeout=2).read(),
                "grpc call": call}) as watch:
            result = subprocess.run(
                [*LOW_PRIORITY, sys.executable, "-m", module, attack,
                 str(ambassador.port if port is None else port), str(ATTACK_SECONDS)],
                cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    finally:
        call.close()
    assert result.returncode == 0, result.stderr
    no_app_errors(ambassador)
    # Observation went on for the other connections: every probe call was recorded.
    assert ambassador.wait_value("rpc_server_duration_seconds_count", watch.rounds,
                                 rpc_method="Echo", rpc_grpc_status_code="0") >= watch.rounds
    stats: dict[str, Any] = json.loads(result.stdout)
    return stats, watch


def unobserved(ambassador: AmbassadorProcess) -> float:
    """Connections whose client sent what observation could not follow."""
    return ambassador.value("redline_ambassador_http2_unobserved_connections_total",
                            reason="client_framing")


def no_app_errors(ambassador: AmbassadorProcess) -> None:
    """Nothing charged to the app (no server-fault error_type, no 5xx), and no request or call
    left in flight once the attack's connections are gone."""
    charged = [(name, labels) for name, labels, value in ambassador.samples()
               if name.startswith(("http_server_", "rpc_server_")) and value
               and (labels.get("error_type", "") not in CLIENT_SIDE_ERRORS
                    or labels.get("http_response_status_code", "").startswith("5"))]
    assert not charged
    assert ambassador.wait_value("http_server_active_requests", 0) == 0


def test_garbage_after_the_preface(ambassador: AmbassadorProcess) -> None:
    stats, _ = attacked(ambassador, "garbage_after_preface")
    assert stats["connections"] >= 10
    connections = ambassador.wait_value("tcp_server_connections_total", stats["connections"],
                                        network_protocol_name="http2")
    assert connections >= stats["connections"]


def test_a_header_block_that_never_ends(ambassador: AmbassadorProcess) -> None:
    stats, _ = attacked(ambassador, "continuation_flood")
    assert stats["continuation_bytes"] >= 1 << 20  # the flood was sent, not refused at once
    assert unobserved(ambassador) >= 1  # the block outgrew --max-header-bytes


def test_a_huge_header_block(ambassador: AmbassadorProcess) -> None:
    stats, _ = attacked(ambassador, "huge_header_block")
    assert stats["connections"] >= 1 and stats["block_bytes"] >= 1 << 20
    assert unobserved(ambassador) >= stats["connections"]


def test_an_hpack_bomb(ambassador: AmbassadorProcess) -> None:
    stats, _ = attacked(ambassador, "hpack_bomb")
    assert stats["bombs"] >= 10  # each one 64 MB once decoded
    assert unobserved(ambassador) >= 1  # the decoded list outgrew --max-header-bytes


def test_rapid_reset(ambassador: AmbassadorProcess) -> None:
    stats, _ = attacked(ambassador, "rapid_reset")
    assert stats["streams"] == 10_000


def test_a_client_that_never_reads_a_10_mib_response(ambassador: AmbassadorProcess) -> None:
    stats, _ = attacked(ambassador, "slow_reader")
    # Then read: every byte arrives, and the call ends OK (no deadlock, nothing dropped).
    assert stats["received"] == [{"bytes": stats["expected_bytes"], "grpc_status": "0"}] * 4


def test_one_byte_at_a_time(ambassador: AmbassadorProcess) -> None:
    stats, watch = attacked(ambassador, "one_byte_at_a_time")
    assert stats["answered"] == stats["connections"]
    # Trickled, they are still read as calls: recorded beside the probe's.
    assert ambassador.value("rpc_server_duration_seconds_count", rpc_method="Echo",
                            rpc_grpc_status_code="0") >= stats["answered"] + watch.rounds


def test_settings_and_ping_flood(ambassador: AmbassadorProcess) -> None:
    stats, _ = attacked(ambassador, "settings_ping_flood")
    assert stats["frames"] >= 1000
