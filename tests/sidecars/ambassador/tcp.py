"""In-process helpers for the TCP tests: an Ambassador on uvloop in front of small asyncio
upstreams, real loopback sockets, and its metrics read from its registry."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import uvloop

from redline.sidecars.ambassador.config import AmbassadorConfig, Limits, PortConfig, Upstream
from redline.sidecars.ambassador.proxy import Ambassador

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def run(coroutine: Awaitable[None], timeout: float = 20.0) -> None:
    """Run a scenario on uvloop (the ambassador's loop), bounded in time."""
    async def bounded() -> None:
        await asyncio.wait_for(coroutine, timeout)

    uvloop.run(bounded())


@asynccontextmanager
async def upstream(serve: Serve) -> AsyncIterator[int]:
    """A loopback server running `serve` per connection; yields its port."""
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await serve(reader, writer)
        except ConnectionError:
            pass
        finally:
            writer.close()
            tasks.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()


@asynccontextmanager
async def ambassador(*ports: tuple[str, int], limits: Limits | None = None
                     ) -> AsyncIterator[Ambassador]:
    """An Ambassador fronting each (protocol, upstream port); `listen_ports` are its ports."""
    config = AmbassadorConfig(
        ports=tuple(PortConfig(("127.0.0.1", 0), Upstream("127.0.0.1", port), protocol)
                    for protocol, port in ports),
        admin=None, service="shop", limits=limits or Limits(), drain_delay=0.0,
        drain_timeout=1.0)
    proxy = Ambassador(config)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.drain()


def tcp(proxy: Ambassador, metric: str, protocol: str, **labels: str) -> float:
    """A TCP metric of the in-process ambassador, read as after a sweep: connections' byte
    counts taken (the kernel relay's too) and flushed into the counters."""
    now = time.monotonic()
    for connection in list(proxy.connections):
        if not connection.closed:
            connection.check_timeouts(now)
    proxy.tcp.flush()
    suffix = "" if metric.startswith("active") or metric.endswith("_count") else "_total"
    value = proxy.registry.get_sample_value(
        f"tcp_server_{metric}{suffix}",
        {"service_name": "shop", "network_protocol_name": protocol, **labels})
    return value or 0.0


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (bounded) until `condition()` holds; the scenario's own timeout bounds it too."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
