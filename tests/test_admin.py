"""The admin endpoint every redline process serves, run in a real process (the node exporter:
the smallest part that serves it)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from redline.admin import AdminServer
from redline.exporters.exposition import new_registry
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


def test_a_scrape_in_flight_when_closing_still_gets_its_answer() -> None:
    """close() ends idle connections only: a scrape being rendered (in a thread, as the adapter's
    fetching collectors are) is answered, with `connection: close`."""

    class SlowCollector:
        def collect(self) -> Iterator[Metric]:
            time.sleep(0.3)
            yield GaugeMetricFamily("slow_value", "A value that takes long to read.", value=1)

    async def scenario() -> bytes:
        admin = AdminServer(new_registry("test", SlowCollector()), ready, render_in_thread=True)
        port = await admin.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.1)  # the render has started
        await admin.close()
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return answer

    answer = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b"connection: close" in answer and b"slow_value 1.0" in answer


async def ready() -> tuple[bool, str]:
    return True, "ready"
