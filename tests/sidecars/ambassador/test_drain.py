"""SIGTERM under load: not ready at once, serve through the drain delay, finish, exit 0."""

from __future__ import annotations

import http.client
import signal
import threading
import time

from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.upstream import UpstreamServer

CLIENTS = 4
RATE_PER_CLIENT = 125  # ~500 req/s in all


def test_sigterm_under_load_loses_no_request(upstream: UpstreamServer) -> None:
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream.port}",
                             "--drain-delay", "2", "--drain-timeout", "10")
    endpoint_removed = threading.Event()  # what Kubernetes does when /readyz fails
    sent = [0] * CLIENTS
    failures: list[str] = []

    def load(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=10)
        deadline = time.monotonic() + 30  # bounded even if readiness never flips
        while not endpoint_removed.is_set() and time.monotonic() < deadline:
            try:
                conn.request("GET", f"/say/{index}")
                response = conn.getresponse()
                if response.read() != str(index).encode() or response.status != 200:
                    failures.append(f"unexpected response {response.status}")
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
                conn.close()
            sent[index] += 1
            time.sleep(1 / RATE_PER_CLIENT)
        conn.close()

    def watch_readiness() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.admin("/readyz")[0] != 200:
                endpoint_removed.set()
                return
            time.sleep(0.05)

    slow_result: list[object] = []

    def slow_request() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=20)
        try:
            conn.request("GET", "/slow/3")
            response = conn.getresponse()
            slow_result.append((response.status, response.read()))
        except (OSError, http.client.HTTPException) as exc:
            slow_result.append(exc)
        finally:
            conn.close()

    assert proc.admin("/readyz")[0] == 200
    workers = [threading.Thread(target=load, args=(i,)) for i in range(CLIENTS)]
    watcher = threading.Thread(target=watch_readiness)
    slow = threading.Thread(target=slow_request)
    for thread in workers:
        thread.start()
    time.sleep(1.0)
    slow.start()
    watcher.start()
    time.sleep(0.2)
    signalled = time.monotonic()
    proc.proc.send_signal(signal.SIGTERM)
    watcher.join(10)
    for thread in workers:
        thread.join(10)
    assert endpoint_removed.is_set()
    # Still inside the drain delay: the admin port answers; every request sent was recorded.
    assert proc.requests_recorded(http_route="/say/{id}") == sum(sent)
    slow.join(15)
    code = proc.proc.wait(timeout=15)
    elapsed = time.monotonic() - signalled
    assert failures == []
    assert sum(sent) > 200
    assert slow_result == [(200, b"slow")]
    assert code == 0
    assert 2.5 < elapsed < 10  # waited for the slow request, then left well before the timeout
    assert proc.stop() == 0


def test_drain_timeout_aborts_what_is_left(upstream: UpstreamServer) -> None:
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream.port}",
                             "--drain-delay", "0", "--drain-timeout", "1")
    conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=20)
    conn.request("GET", "/slow/5")
    time.sleep(0.2)
    started = time.monotonic()
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 3
    conn.close()
    proc.stop()
