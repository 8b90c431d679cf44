"""The adapter under abuse, as real processes on 127.0.0.1 (#17): hostile statsd packets, a
hostile app behind --json-url, hostile log lines. Each attack is bounded in time and count,
and while it runs the adapter must keep its memory (RSS under 64 MB), answer /healthz within
100 ms, count what it refused in the limit's own counter, and record nothing as the app's
error."""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.abuse.watch import Watch, http_ok
from tests.sidecars.adapter.helpers import AdapterProcess, append, line

MAPPING = """
mappings:
  - match: "x.req"
    name: request
    labels: {method: GET, route: /x, status: "200"}
  - match: "app.*.hits"
    name: app_hits_total
    type: counter
    labels: {thing: "$1"}
  - match: "app.tagged"
    name: app_tagged_total
    type: counter
    labels: {thing: "${thing}"}
  - match: "stats.*"
    name: app_stat
    labels: {name: "$1"}
"""


def watching(adapter: AdapterProcess) -> Watch:
    """Watch the adapter: /healthz on its admin port."""
    healthz = f"http://127.0.0.1:{adapter.admin_port}/healthz"
    return Watch(adapter.proc.pid, {"healthz": lambda: http_ok(healthz)})


def no_app_errors(adapter: AdapterProcess) -> None:
    """No request series was recorded as a failure of the app."""
    errors = [(name, labels) for name, labels, value in adapter.samples()
              if name.startswith(("http_server_", "redline_untimed_requests"))
              and labels.get("error_type") and value]
    assert not errors


# --- statsd ---------------------------------------------------------------------------------


@pytest.fixture
def statsd(tmp_path: Path) -> Iterator[tuple[AdapterProcess, Callable[[bytes], None]]]:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING)
    adapter = AdapterProcess("--statsd", "127.0.0.1:0", "--mapping", str(mapping))
    port = int(str(adapter.started["statsd"]))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(packet: bytes) -> None:
        sock.sendto(packet, ("127.0.0.1", port))

    try:
        yield adapter, send
        no_app_errors(adapter)
    finally:
        sock.close()
        assert adapter.stop() == 0


def test_statsd_tiny_sample_rates_are_one_weighted_observation(
        statsd: tuple[AdapterProcess, Callable[[bytes], None]]) -> None:
    adapter, send = statsd
    with watching(adapter):
        for _ in range(50):  # each stood for 10^8 observations, one at a time: 9.8 s
            send(b"x.req:5|ms|@0.00000001")
        assert adapter.wait_value("redline_adapter_clamped_sample_rates_total", 50) == 50
        time.sleep(0.2)
    assert adapter.requests_recorded(http_route="/x") == 50 * 1000  # counted at the floor


def test_statsd_random_names_stop_at_the_rules_series_cap(
        statsd: tuple[AdapterProcess, Callable[[bytes], None]]) -> None:
    adapter, send = statsd
    rng = random.Random(17)
    names = [f"app.{rng.getrandbits(64):x}.hits:1|c".encode() for _ in range(3000)]
    with watching(adapter):
        for start in range(0, len(names), 40):
            send(b"\n".join(names[start:start + 40]))
            time.sleep(0.001)  # loopback UDP drops what the socket buffer cannot hold
        assert adapter.wait_value("redline_adapter_lines_total", 3000) == 3000
    series = {labels["thing"]: value for name, labels, value in adapter.samples()
              if name == "app_hits_total"}
    assert len(series) == 1000 + 1  # and the folded one
    assert series["_OTHER"] == 2000 and sum(series.values()) == 3000
    assert adapter.value("redline_adapter_capped_series_total") == 2000


def test_statsd_values_that_would_break_a_series_are_refused(
        statsd: tuple[AdapterProcess, Callable[[bytes], None]]) -> None:
    adapter, send = statsd
    with watching(adapter):
        send(b"app.a.hits:3|c")
        send(b"app.a.hits:-5|c\napp.a.hits:nan|c\napp.a.hits:inf|c\napp.a.hits:1e308|c|@0.001")
        send(b"x.req:-5|c\nx.req:-1|ms\nx.req:1e400|ms")
        assert adapter.wait_value("redline_adapter_rejected_values_total", 7) == 7
    assert adapter.value("app_hits_total", thing="a") == 3
    assert adapter.value("redline_untimed_requests_total") == 0
    assert adapter.requests_recorded() == 0


def test_statsd_control_characters_never_reach_a_label(
        statsd: tuple[AdapterProcess, Callable[[bytes], None]]) -> None:
    adapter, send = statsd
    send(b"app.tagged:1|c|#thing:ok\x1b[2J\x1b]0;pwned\x07\r")
    assert adapter.wait_value("app_tagged_total", 1) == 1
    text = adapter.metrics_text()
    assert 'app_tagged_total{thing="ok[2J]0;pwned"} 1.0' in text
    assert not any(char in text for char in "\x1b\r\x07")


# --- log lines ------------------------------------------------------------------------------


def test_log_lines_over_the_limit_and_control_characters(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.touch()
    adapter = AdapterProcess("--access-log", str(log))
    try:
        with watching(adapter):
            huge = line(1).replace("/items/1", "/" + "a" * 300_000)  # a valid line of 300 KB
            append(log, huge + line(2))  # arrives whole, in one read
            assert adapter.wait_recorded(1) == 1
            assert adapter.value("redline_adapter_dropped_long_lines_total") == 1
            append(log, line(3).replace("/items/3", "/a\x1b[31m/b\rc"))
            assert adapter.wait_recorded(2) == 2
        assert adapter.requests_recorded(http_route="/a[31m/bc") == 1
        assert not any(char in adapter.metrics_text() for char in "\x1b\r")
        no_app_errors(adapter)
    finally:
        assert adapter.stop() == 0


# --- --json-url -----------------------------------------------------------------------------


class HostileApp:
    """A stats endpoint answering with what `mode` says: an endless body, 62 MiB announced and
    sent, or a byte every 0.2 s (a socket timeout never fires, the fetch never ends)."""

    def __init__(self) -> None:
        self.mode = "endless"
        self.connections = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn, self.mode), daemon=True).start()

    def _answer(self, conn: socket.socket, mode: str) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                if mode == "huge":
                    body = b"[" + b"1," * (31 * 1024 * 1024 - 1) + b"1]"
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[")
                chunk = b"1," * 32768
                while not self._stop.is_set():
                    if mode == "endless":
                        conn.sendall(chunk)
                    else:
                        conn.sendall(b"1")
                        self._stop.wait(0.2)
            except OSError:
                return  # the adapter hung up: what it should do

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()


@pytest.fixture
def hostile_app() -> Iterator[HostileApp]:
    app = HostileApp()
    yield app
    app.close()


def json_adapter(tmp_path: Path, app: HostileApp, *args: str) -> AdapterProcess:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING)
    return AdapterProcess("--json-url", f"http://127.0.0.1:{app.port}/stats", "--mapping",
                          str(mapping), *args)


def timed_scrape(adapter: AdapterProcess) -> tuple[float, dict[str, float]]:
    """How long one scrape took, and its adapter counters (every scrape fetches again)."""
    started = time.monotonic()
    text = adapter.metrics_text()
    took = time.monotonic() - started
    return took, {s.name: s.value for family in text_string_to_metric_families(text)
                  for s in family.samples if s.name.startswith("redline_adapter_")}


def test_json_url_body_cap_and_whole_fetch_deadline(tmp_path: Path,
                                                    hostile_app: HostileApp) -> None:
    adapter = json_adapter(tmp_path, hostile_app, "--fetch-timeout", "1")
    try:
        with watching(adapter):
            took, counts = timed_scrape(adapter)  # the endless body: up to 8 MiB, no further
            assert took < 2 and counts["redline_adapter_oversized_fetches_total"] == 1
            hostile_app.mode = "huge"
            took, counts = timed_scrape(adapter)  # 62 MiB announced: refused before reading
            assert took < 2 and counts["redline_adapter_oversized_fetches_total"] == 2
            hostile_app.mode = "trickle"
            took, counts = timed_scrape(adapter)  # a byte every 0.2 s: no read times out
            assert 0.9 < took < 2 and counts["redline_adapter_fetch_timeouts_total"] == 1
        assert counts["redline_adapter_source_up"] == 0
        assert counts["redline_adapter_parse_errors_total"] == 3
        no_app_errors(adapter)
    finally:
        assert adapter.stop() == 0


def test_json_url_sigterm_ends_a_fetch_in_progress_at_once(tmp_path: Path,
                                                           hostile_app: HostileApp) -> None:
    hostile_app.mode = "trickle"
    adapter = json_adapter(tmp_path, hostile_app, "--fetch-timeout", "60")
    def scrape_until_cut() -> None:
        with contextlib.suppress(OSError, http.client.HTTPException):  # stopping cuts it
            adapter.admin("/metrics")

    scrape = threading.Thread(target=scrape_until_cut, daemon=True)
    scrape.start()
    deadline = time.monotonic() + 5
    while hostile_app.connections == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hostile_app.connections == 1
    time.sleep(0.3)  # the fetch is in its body now
    started = time.monotonic()
    assert adapter.stop() == 0
    assert time.monotonic() - started < 1.5
    scrape.join(5)
