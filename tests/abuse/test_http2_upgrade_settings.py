"""h2c upgrade requests whose HTTP2-Settings cannot be read (#18), through a real ambassador to
an app that grants them all the same (tests/abuse/h2_sink.py `upgrade`): not base64url, a
payload that is no whole number of settings, two headers, a table past what the observer
keeps. Each connection stops being observed at once, counted in
redline_ambassador_http2_unobserved_connections_total{reason="client_framing"}, its upgrade
recorded as its 101 (as an unobserved upgrade is); and every byte still flows, both ways
(SHA-256 of what each side sent against what the other received). A readable header beside
them is observed as ever: its stream 1 recorded with its HTTP/2 status."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import subprocess
from collections.abc import Iterator

import pytest

from redline.sidecars.ambassador.h2frames import PREFACE, SETTINGS_HEADER_TABLE_SIZE
from tests.abuse.h2_sink import EMPTY_SETTINGS, STREAM_1_OK, SWITCHING
from tests.abuse.test_http2 import no_app_errors
from tests.abuse.test_http2_rapid_reset import _start, _stop
from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.h2bytes import Peer, ping, request, settings
from tests.sidecars.ambassador.test_passthrough import read_all


def encoded(*pairs: tuple[int, int]) -> bytes:
    payload = b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in pairs)
    return base64.urlsafe_b64encode(payload).rstrip(b"=")


UNREADABLE = {
    "not base64url": [b"AAEAAQAA!"],
    "5 bytes": [base64.urlsafe_b64encode(b"\x00\x01\x00\x01\x00").rstrip(b"=")],
    "two headers": [encoded((SETTINGS_HEADER_TABLE_SIZE, 8192))] * 2,
    "a 1 MiB table": [encoded((SETTINGS_HEADER_TABLE_SIZE, 1 << 20))],
}
READABLE = [encoded((SETTINGS_HEADER_TABLE_SIZE, 8192), (0x4, 1 << 20))]


@pytest.fixture
def sink() -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc, port = _start("tests.abuse.h2_sink", [], "upgrade")
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            _stop(proc)


def upgraded_exchange(port: int, values: list[bytes]) -> tuple[str, str]:
    """An h2c upgrade request with these HTTP2-Settings values, then the preface, a request
    and a PING, then EOF; the SHA-256 of what was sent and of what came back."""
    head = (b"GET /upgrade HTTP/1.1\r\nHost: shop\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\n" + b"".join(b"HTTP2-Settings: " + value + b"\r\n"
                                           for value in values) + b"\r\n")
    after = (PREFACE + settings() + Peer().headers(3, request(b"GET", b"/next", b""), end=True)
             + ping())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + after)
        sock.shutdown(socket.SHUT_WR)
        answer = read_all(sock)
    return hashlib.sha256(head + after).hexdigest(), hashlib.sha256(answer).hexdigest()


def test_unreadable_http2_settings_are_counted_and_every_byte_flows(
        sink: tuple[subprocess.Popen[str], int]) -> None:
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{sink[1]}", "--protocol", "http1",
                             "--drain-delay", "0")
    try:
        exchanges = [upgraded_exchange(proc.port, values)
                     for values in [*UNREADABLE.values(), READABLE]]
        unobserved = proc.wait_value("redline_ambassador_http2_unobserved_connections_total",
                                     len(UNREADABLE), reason="client_framing")
        assert unobserved == len(UNREADABLE)
        # The unread ones as their 101; the readable one as its stream 1's HTTP/2 status.
        assert proc.wait_recorded(len(UNREADABLE), http_route="/upgrade",
                                  http_response_status_code="101") == len(UNREADABLE)
        assert proc.wait_recorded(1, http_route="/upgrade",
                                  http_response_status_code="200") == 1
        assert proc.value("redline_ambassador_http2_unobserved_connections_total") == \
            len(UNREADABLE)
        no_app_errors(proc)
    finally:
        assert proc.stop() == 0
    assert not [entry for entry in proc.logs
                if "exc" in entry or "Traceback" in str(entry.get("msg", ""))]
    received = [json.loads(line) for line in _stop(sink[0]).splitlines()]
    received = [entry for entry in received if entry["bytes"]]  # wait_port's sent nothing
    assert sorted(entry["sha256"] for entry in received) == sorted(
        sent for sent, _ in exchanges)
    app_sent = hashlib.sha256(SWITCHING + EMPTY_SETTINGS + STREAM_1_OK).hexdigest()
    assert {entry["sent_sha256"] for entry in received} == {app_sent}
    assert [answer for _, answer in exchanges] == [app_sent] * len(exchanges)
