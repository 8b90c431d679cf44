"""Loopback ports for processes redline starts itself (the demo) and for its tests and
benchmarks: a free port to hand to a child, and waiting until the child listens on it."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports: all held open at once, so none is given twice."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def wait_port(port: int, timeout: float = 10,
              still_starting: Callable[[], bool] = lambda: True) -> None:
    """Return once something listens on 127.0.0.1:port. TimeoutError after `timeout` seconds;
    ChildProcessError as soon as `still_starting()` says the listener will never come (its
    process exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not still_starting():
            raise ChildProcessError(f"gave up waiting for 127.0.0.1:{port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port),
                                                                    timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")
