"""How every long-running part stops: SIGTERM (Kubernetes, docker stop) or SIGINT (Ctrl-C)
sets one event, and the part drains and returns 0 once it is set. asyncio parts get an
asyncio.Event; the threaded ones (the webhook's cheroot server, the demo's supervisor) a
threading.Event."""

from __future__ import annotations

import asyncio
import signal
import threading
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_event() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT; call it inside the running loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    return stop


async def until_stopped() -> None:
    """Return at the first SIGTERM or SIGINT."""
    await stop_event().wait()


def stop_flag() -> threading.Event:
    """A threading.Event set by every SIGTERM or SIGINT; call it from the main thread.

    The handlers stay installed to the end: a second signal while draining changes nothing
    (the default action would end the process with -15 after a clean drain); SIGKILL still
    ends it, as Kubernetes does after the grace period."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    return stop


def wait_for_stop(stop: threading.Event) -> None:
    """Block the main thread until `stop` is set, waking twice a second: Python runs a
    signal's handler in the main thread only, and when the kernel delivers SIGTERM to another
    thread (grpcio's, cheroot's), an untimed wait is not interrupted and never returns."""
    while not stop.wait(0.5):
        pass
