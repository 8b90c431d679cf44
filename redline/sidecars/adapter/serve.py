"""The adapter's live loop: admin server, statsd socket, a poll every --poll-interval (none
while there is a backlog), until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redline.admin import AdminServer
from redline.sidecars.adapter.process import Adapter
from redline.signals import stop_event

log = logging.getLogger("redline.adapter")


async def serve(adapter: Adapter) -> int:
    config = adapter.config
    admin = AdminServer(adapter.registry, adapter.readiness, render_in_thread=adapter.fetched)
    admin_port = await admin.start(*config.admin) if config.admin is not None else 0
    stop = stop_event()
    loop = asyncio.get_running_loop()
    statsd_port = 0
    if adapter.statsd is not None:
        statsd = adapter.statsd
        transport, _ = await loop.create_datagram_endpoint(
            lambda: statsd, local_addr=statsd.address)
        statsd.bound = True
        statsd_port = transport.get_extra_info("sockname")[1]
    adapter.poll()  # the first pass decides where each file starts
    log.info("adapter started", extra={
        "admin": admin_port, "service": config.service,
        "sources": [source.pattern for source in adapter.sources],
        "statsd": statsd_port,
        "files": [f for s in adapter.log_sources for f in s.tailer.files]})
    while not stop.is_set():
        busy = adapter.poll() > 0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0 if busy else config.poll_interval)
    adapter.stopping = True
    for fetched in adapter.fetch_sources:  # a scrape's fetch runs in a thread: end it now
        fetched.close()
    adapter.poll()  # what was written up to the signal still counts
    for source in adapter.log_sources:
        source.tailer.close()
    await admin.close()
    return 0
