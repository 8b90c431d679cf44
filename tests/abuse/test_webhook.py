"""The webhook under hostile clients (#17), as a real process on 127.0.0.1: huge and endless
bodies are refused before they are read and counted, a client stuck in its handshake is
dropped and counted, and /healthz and /mutate keep answering meanwhile."""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.abuse.watch import Watch, peak_rss_kib
from tests.kubernetes.test_webhook import POD, Webhook, post, review

MiB = 1024 * 1024


@pytest.fixture
def webhook(tls: Path) -> Iterator[Webhook]:
    process = Webhook(tls, "--handshake-timeout", "0.5")
    yield process
    process.stop()


def metric(webhook: Webhook, name: str, **labels: str) -> float:
    url = f"https://127.0.0.1:{webhook.port}/metrics"
    with urllib.request.urlopen(url, context=webhook.context, timeout=5) as response:
        text = response.read().decode()
    wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{wanted} not in /metrics:\n{text}")


def healthz_seconds(webhook: Webhook) -> float:
    started = time.monotonic()
    url = f"https://127.0.0.1:{webhook.port}/healthz"
    with urllib.request.urlopen(url, context=webhook.context, timeout=5) as response:
        assert response.read() == b"ok\n"
    return time.monotonic() - started


def while_attacking(webhook: Webhook, attack: Callable[[], bytes]) -> bytes:
    """Run `attack` while /healthz is probed every 50 ms; each must answer within 100 ms
    (the webhook's memory is checked as growth by the tests that need it)."""
    with Watch(webhook.process.pid, {"healthz": lambda: healthz_seconds(webhook)},
               max_rss_mb=None):
        return attack()


def tls_connection(webhook: Webhook) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", webhook.port), timeout=10)
    return webhook.context.wrap_socket(raw, server_hostname="127.0.0.1")


def send_and_read(webhook: Webhook, head: bytes, body_chunks: Iterator[bytes]) -> bytes:
    """Send a request whose body may never end; return what the server answered."""
    with tls_connection(webhook) as conn:
        conn.sendall(head)
        try:
            for chunk in body_chunks:
                conn.sendall(chunk)
        except OSError:
            pass  # the server stopped reading and closed: expected once it refused
        answer = b""
        try:
            while data := conn.recv(65536):
                answer += data
        except OSError:
            pass
        return answer


def test_a_60_mib_review_is_refused_unread_and_counted(webhook: Webhook) -> None:
    before = peak_rss_kib(webhook.process.pid)
    head = (b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (60 * MiB))

    def attack() -> bytes:
        return send_and_read(webhook, head, (b"x" * MiB for _ in range(60)))

    answer = while_attacking(webhook, attack)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert metric(webhook, "redline_webhook_rejected_total", reason="too_large") == 1
    assert peak_rss_kib(webhook.process.pid) - before < 8 * 1024  # it was 34 -> 403 MB
    # Reviews go on as before.
    assert post(webhook, json.dumps(review(POD)).encode())["response"]["allowed"] is True
    assert metric(webhook, "redline_webhook_reviews_total", result="injected") == 1


def test_an_endless_chunked_body_is_refused_unread(webhook: Webhook) -> None:
    """The API server always sends a Content-Length; a chunked body is refused (411) before a
    byte of it is read, and the connection closed (its bytes are no next request)."""
    head = (b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (MiB, b"y" * MiB)

    def attack() -> bytes:
        return send_and_read(webhook, head, (chunk for _ in range(40)))

    answer = while_attacking(webhook, attack)
    assert answer.startswith(b"HTTP/1.1 411"), answer[:200]
    assert answer.count(b"HTTP/1.1") == 1, answer  # nothing of the body read as a request
    assert metric(webhook, "redline_webhook_rejected_total", reason="no_length") == 1


def test_a_client_stuck_in_its_handshake_is_dropped_and_counted(webhook: Webhook) -> None:
    silent = socket.create_connection(("127.0.0.1", webhook.port), timeout=10)
    half = socket.create_connection(("127.0.0.1", webhook.port), timeout=10)
    half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello's start
    try:
        assert healthz_seconds(webhook) < 0.1
        assert post(webhook, json.dumps(review(POD)).encode())["response"]["allowed"] is True
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and metric(
                webhook, "redline_webhook_rejected_total", reason="handshake") < 2:
            time.sleep(0.1)
        assert metric(webhook, "redline_webhook_rejected_total", reason="handshake") == 2
        assert silent.recv(1) == b""  # dropped after --handshake-timeout
    finally:
        silent.close()
        half.close()
