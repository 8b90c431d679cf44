"""The admin endpoint every redline process serves, run in a real process (the node exporter:
the smallest part that serves it)."""

from __future__ import annotations

import socket

from tests.process import SidecarProcess


def node_exporter() -> SidecarProcess:
    return SidecarProcess("node-exporter", "--listen", "127.0.0.1:0",
                          started="node exporter listening", service=False)


def test_sigterm_with_an_idle_scrape_connection_open_is_quiet() -> None:
    """Prometheus keeps its scrape connection open between scrapes; SIGTERM must not print
    an asyncio traceback for it (it did: a cancelled handler task)."""
    process = node_exporter()
    with socket.create_connection(("127.0.0.1", process.admin_port), timeout=5) as idle:
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.recv(1000).startswith(b"HTTP/1.1 200")
        code = process.stop()
    assert code == 0
    problems = [entry for entry in process.logs if entry.get("level") in ("error", "critical")
                or "Traceback" in str(entry.get("msg"))]
    assert problems == []
