"""The admin endpoint every redline process serves, run in a real process (the node exporter:
the smallest part that serves it)."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections.abc import Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from redline.admin import INLINE_RENDER_S, AdminServer
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


async def scrape(port: int) -> bytes:
    """One scrape on a connection of its own, answered whole."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


def test_a_slow_render_moves_later_ones_off_the_event_loop() -> None:
    """The ambassador's loop carries its traffic: a registry slow to render (10,050 series
    took 2.5 s) is rendered in a thread from the scrape that showed it on."""
    threads: list[str] = []

    class LargeRegistry:
        def collect(self) -> Iterator[Metric]:
            threads.append(threading.current_thread().name)
            time.sleep(3 * INLINE_RENDER_S)  # as long as rendering many series takes
            yield GaugeMetricFamily("large_value", "A value of a large registry.", value=1)

    async def scenario() -> list[bytes]:
        admin = AdminServer(new_registry("test", LargeRegistry()), ready)
        port = await admin.start("127.0.0.1", 0)
        answers = [await scrape(port) for _ in range(3)]
        await admin.close()
        return answers

    answers = asyncio.run(scenario())
    assert all(b"large_value 1.0" in answer for answer in answers)
    loop_thread = threading.main_thread().name
    assert threads[0] == loop_thread and loop_thread not in threads[1:] and len(threads) == 3


def test_scrapes_arriving_during_a_render_share_it() -> None:
    """Two Prometheus servers (an HA pair) scraping at once render the registry once, and the
    switch interval shortened for the render (so the loop gets the GIL back) is restored."""
    calls: list[int] = []

    class SlowRegistry:
        def collect(self) -> Iterator[Metric]:
            calls.append(1)
            time.sleep(0.3)
            yield GaugeMetricFamily("slow_value", "A value that takes long to read.", value=1)

    async def scenario() -> list[bytes]:
        admin = AdminServer(new_registry("test", SlowRegistry()), ready, render_in_thread=True)
        port = await admin.start("127.0.0.1", 0)
        answers = list(await asyncio.gather(scrape(port), scrape(port)))
        answers.append(await scrape(port))  # a later scrape renders afresh
        await admin.close()
        return answers

    interval = sys.getswitchinterval()
    answers = asyncio.run(scenario())
    assert all(b"slow_value 1.0" in answer for answer in answers)
    assert len(calls) == 2 and sys.getswitchinterval() == interval
