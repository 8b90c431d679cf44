"""Requests parsers read differently, through a real ambassador (#17): bytes behind an upgrade
request wait for the app's answer and are framed as requests when it declines, CONNECT is
refused unless allowed, a tunnel left idle is closed and counted, and smuggling attempts (a
request line as a trailer, bare CR, padded chunk sizes, two Hosts) get 400; /healthz and a
proxied request on another connection keep answering meanwhile, and nothing is charged to
the app."""

from __future__ import annotations

import base64
import os
import socket
from typing import cast

from tests.abuse.attacks import SMUGGLING
from tests.abuse.test_ambassador import no_app_errors, run_attack, upstream_port, watching
from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.test_passthrough import read_all

__all__ = ["upstream_port"]  # the module's fixture, shared


def ambassador_for(port: int, *args: str) -> AmbassadorProcess:
    return AmbassadorProcess("--upstream", f"127.0.0.1:{port}", "--protocol", "http1",
                             "--drain-delay", "0", *args)


def test_requests_behind_a_declined_upgrade_are_framed_and_recorded(
        upstream_port: int) -> None:
    ambassador = ambassador_for(upstream_port)
    try:
        with watching(ambassador), socket.create_connection(
                ("127.0.0.1", ambassador.port), timeout=5) as sock:
            # /say/... is no WebSocket: the app answers 200 and stays HTTP.
            sock.sendall(b"GET /say/first HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
                         b"Upgrade: websocket\r\n\r\n"
                         b"GET /say/second HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            answer = read_all(sock)
        assert answer.count(b"HTTP/1.1 200 OK") == 2, answer
        assert answer.index(b"first") < answer.index(b"second")
        assert ambassador.wait_recorded(1, http_route="/say/second") == 1
        assert ambassador.requests_recorded(http_route="/say/first") == 1
        no_app_errors(ambassador)
    finally:
        assert ambassador.stop() == 0


def test_connect_is_refused_with_405_and_counted(upstream_port: int) -> None:
    ambassador = ambassador_for(upstream_port)
    try:
        with watching(ambassador):
            for _ in range(20):
                with socket.create_connection(("127.0.0.1", ambassador.port), timeout=5) as sock:
                    sock.sendall(b"CONNECT internal-db:5432 HTTP/1.1\r\nHost: internal-db:5432"
                                 b"\r\n\r\nbytes for the database")
                    assert read_all(sock).startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
        assert ambassador.value("redline_ambassador_rejected_total", reason="connect") == 20
        assert ambassador.requests_recorded(http_request_method="CONNECT",
                                            http_response_status_code="405") == 20
        no_app_errors(ambassador)
    finally:
        assert ambassador.stop() == 0


def test_an_idle_tunnel_is_closed_after_the_idle_timeout(upstream_port: int) -> None:
    ambassador = ambassador_for(upstream_port, "--idle-timeout", "1")
    key = base64.b64encode(os.urandom(16))
    try:
        with watching(ambassador), socket.create_connection(
                ("127.0.0.1", ambassador.port), timeout=5) as sock:
            sock.sendall(b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
                         b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                         b"Sec-WebSocket-Key: " + key + b"\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 101 ")
            assert sock.recv(1) == b""  # closed by the ambassador (the socket's timeout is 5 s)
        assert ambassador.value("redline_ambassador_limits_total", limit="tunnel_idle") == 1
        assert ambassador.requests_recorded(http_route="/ws", http_response_status_code="101") \
            == 1
        no_app_errors(ambassador)
    finally:
        assert ambassador.stop() == 0


def test_smuggling_attempts_get_400_and_are_the_clients_fault(upstream_port: int) -> None:
    ambassador = ambassador_for(upstream_port)
    try:
        with watching(ambassador):
            result = run_attack("smuggling", str(ambassador.port), "--rounds", "10")
        answers = cast(dict[str, dict[str, int]], result["answers"])
        assert answers == {name: {"HTTP/1.1 400 Bad Request": 10} for name in SMUGGLING}
        rejected = sum(ambassador.value("redline_ambassador_rejected_total", reason=reason)
                       for reason in ("bad_request", "bad_body"))
        assert rejected == 10 * len(SMUGGLING)
        assert ambassador.requests_recorded(error_type="bad_request",
                                            http_response_status_code="400") == rejected
        no_app_errors(ambassador)
    finally:
        assert ambassador.stop() == 0
