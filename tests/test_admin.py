"""The admin endpoint every redline process serves, run in a real process (the node exporter:
the smallest part that serves it)."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Iterator

from prometheus_client import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from redline.admin import REUSE_AFTER_S, REUSE_FACTOR, AdminServer
from redline.exporters.exposition import new_registry
from redline.exporters.instruments import SeriesCap
from redline.exporters.red import ServerRecorder
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


async def scrape(port: int, accept: bytes = b"") -> bytes:
    """One scrape on a connection of its own, answered whole."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 + (b"Accept: " + accept + b"\r\n" if accept else b"") + b"\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


def blocking_scrape(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=120) as connection:
        connection.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := connection.recv(1 << 20):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_large_registry_renders_on_the_loop_without_holding_it() -> None:
    """The ambassador's loop carries its traffic: a registry of 20,000 histogram series
    (rendered in one go it held the loop for seconds) renders in slices, and the loop serves
    other work between them. Measured in the loop thread's CPU time between two wake-ups of a
    ticker, which the machine's load does not inflate; the body is prometheus_client's."""
    recorder = ServerRecorder("shop")
    recorder.collector().cap_series(SeriesCap(30_000))
    for index in range(4000):
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            recorder.record(method, f"/r{index}", 200, 0.01)
    registry = new_registry("test", recorder.collector())
    gaps: list[float] = []

    async def ticker(done: asyncio.Event) -> None:
        last = time.thread_time()
        while not done.is_set():
            await asyncio.sleep(0)
            now = time.thread_time()
            gaps.append(now - last)
            last = now

    async def scenario() -> tuple[bytes, float]:
        admin = AdminServer(registry, ready)
        port = await admin.start("127.0.0.1", 0)
        done = asyncio.Event()
        ticking = asyncio.ensure_future(ticker(done))
        started = time.thread_time()
        # The client in a thread: reading the body on the loop would be the loop's work too.
        answer = await asyncio.to_thread(blocking_scrape, port)
        whole = time.thread_time() - started  # the whole scrape's CPU in the loop thread
        done.set()
        await ticking
        await admin.close()
        return answer, whole

    answer, whole = asyncio.run(scenario())
    body = answer.split(b"\r\n\r\n", 1)[1]
    assert body == generate_latest(registry)
    assert whole > 0.1  # long enough that one piece holding the loop would show
    assert max(gaps) < 0.02, f"the loop was held {max(gaps):.3f} s of {whole:.3f} s"


class CountingRegistry:
    """A collector that takes `seconds` to read, and shows how many times it was read."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    def collect(self) -> Iterator[Metric]:
        self.calls += 1
        time.sleep(self.seconds)
        yield GaugeMetricFamily("read_count", "Times this collector was read.",
                                value=self.calls)


def test_scrapes_arriving_during_a_render_share_it() -> None:
    """Two Prometheus servers (an HA pair) scraping at once render the registry once; with
    collectors that fetch (rendered in a thread) a later scrape renders afresh, and the switch
    interval shortened for the render (so the loop gets the GIL back) is restored."""
    collector = CountingRegistry(0.3)

    async def scenario() -> list[bytes]:
        admin = AdminServer(new_registry("test", collector), ready, render_in_thread=True)
        port = await admin.start("127.0.0.1", 0)
        answers = list(await asyncio.gather(scrape(port), scrape(port)))
        answers.append(await scrape(port))
        await admin.close()
        return answers

    interval = sys.getswitchinterval()
    answers = asyncio.run(scenario())
    assert [b"read_count 1.0" in answer for answer in answers] == [True, True, False]
    assert b"read_count 2.0" in answers[2]
    assert collector.calls == 2 and sys.getswitchinterval() == interval


def test_scrapes_asking_for_one_format_in_other_words_share_its_render() -> None:
    """Renders are shared by the format negotiated, not by the Accept header's words: eight
    scrapers asking for the text format with different q-values cost one render (each one a
    body of megabytes at a large registry), and OpenMetrics is still rendered apart."""
    collector = CountingRegistry(0.3)

    async def scenario() -> list[bytes]:
        admin = AdminServer(new_registry("test", collector), ready, render_in_thread=True)
        port = await admin.start("127.0.0.1", 0)
        text = [b"text/plain;q=0.%d" % n for n in range(1, 9)]
        answers = list(await asyncio.gather(
            *(scrape(port, accept) for accept in text),
            scrape(port, b"application/openmetrics-text;version=1.0.0")))
        await admin.close()
        return answers

    answers = asyncio.run(scenario())
    assert collector.calls == 2
    assert all(b"read_count 1.0" in answer or b"read_count 2.0" in answer
               for answer in answers)
    assert len({answer.split(b"\r\n\r\n", 1)[1] for answer in answers[:8]}) == 1
    assert b"application/openmetrics-text" in answers[8].split(b"\r\n\r\n", 1)[0]


def test_a_slow_render_answers_the_scrapes_right_after_it() -> None:
    """Scrape loops back to back cost one render per window (REUSE_FACTOR times a render that
    took REUSE_AFTER_S or more); a scrape after the window renders afresh, and a fast render
    is never reused (a scrape right after a change sees it)."""
    slow, fast = CountingRegistry(REUSE_AFTER_S + 0.05), CountingRegistry(0)

    async def scenario(collector: CountingRegistry) -> list[bytes]:
        admin = AdminServer(new_registry("test", collector), ready)
        port = await admin.start("127.0.0.1", 0)
        started = time.monotonic()
        answers = [await scrape(port)]
        took = time.monotonic() - started  # at least the render's time
        answers.append(await scrape(port))  # within the window, if there is one
        await asyncio.sleep(REUSE_FACTOR * took + 0.2)  # past any window
        answers.append(await scrape(port))
        await admin.close()
        return answers

    answers = asyncio.run(scenario(slow))
    assert [b"read_count 1.0" in answer for answer in answers] == [True, True, False]
    assert slow.calls == 2
    answers = asyncio.run(scenario(fast))
    assert [answer.count(b"read_count %d.0" % n) for n, answer in enumerate(answers, 1)] == \
        [1, 1, 1]
