"""How every long-running part stops: SIGTERM (Kubernetes, docker stop) or SIGINT (Ctrl-C)
sets one asyncio.Event, and the part drains and returns 0 once it is set."""

from __future__ import annotations

import asyncio
import signal

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
