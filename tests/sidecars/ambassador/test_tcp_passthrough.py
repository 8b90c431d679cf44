"""Opaque and TLS pass-through and protocol detection, in process on uvloop with real loopback
sockets: bytes unchanged both ways, half close, backpressure, resets, timeouts, and the TCP
metrics of each connection."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import ssl
import time
from typing import cast

import pytest

from redline.sidecars.ambassador.config import Limits
from redline.sidecars.ambassador.detect import H2_PREFACE
from redline.sidecars.ambassador.proxy import MAX_SERVER_NAMES, OTHER_SERVER_NAME, Ambassador
from tests.sidecars.ambassador.relays import each_relay
from tests.sidecars.ambassador.tcp import ambassador, reset, run, tcp, upstream, wait_for

# Every test here holds for both relays of pass-through connections.
pytestmark = pytest.mark.usefixtures(each_relay.__name__)


async def echo_then_bye(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo until the client's EOF, then say bye and end: a half-closing protocol."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.write(b"bye")
    await writer.drain()


async def exchange(port: int, data: bytes) -> bytes:
    """Send `data`, end our side, read until the other side ends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    writer.write_eof()
    received = await reader.read()
    writer.close()
    return received


@pytest.mark.parametrize("protocol", ["opaque", "auto"])
def test_bytes_go_through_unchanged_both_ways_with_half_close(protocol: str) -> None:
    payload = b"\x00binary\r\n" + os.urandom(1 << 20)

    async def scenario() -> None:
        async with upstream(echo_then_bye) as app, ambassador((protocol, app)) as proxy:
            assert await exchange(proxy.listen_port, payload) == payload + b"bye"
            await wait_for(lambda: tcp(proxy, "connections", "opaque", error_type="") == 1)
            assert tcp(proxy, "received_bytes", "opaque") == len(payload)
            assert tcp(proxy, "sent_bytes", "opaque") == len(payload) + 3
            assert tcp(proxy, "active_connections", "opaque") == 0
            assert not proxy.connections

    run(scenario())


def client_hello(server_name: str) -> bytes:
    """The first flight of a real TLS client (Python's ssl) asking for `server_name`."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):  # it waits for the server's answer
        tls.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize(("first", "label"), [
    (H2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00", "http2"),
    (client_hello("db.shop.test"), "tls"),
    (b"*1\r\n$4\r\nPING\r\n", "opaque"),  # Redis
    (b"GET key\r\n", "opaque"),  # a Redis inline command looks like a request line, but is not
    (b"\x00\x00\x00\x08\x04\xd2\x16\x2f", "opaque"),  # PostgreSQL SSLRequest
])
def test_auto_passes_what_it_detects_through_labelled(first: bytes, label: str) -> None:
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read())
        writer.write(b"done")

    async def scenario() -> None:
        async with upstream(record) as app, ambassador(("auto", app)) as proxy:
            assert await exchange(proxy.listen_port, first) == b"done"
            assert seen == [first]
            await wait_for(lambda: tcp(proxy, "connections", label, error_type="") == 1)
            assert tcp(proxy, "received_bytes", label) == len(first)
            if label == "tls":
                assert proxy.registry.get_sample_value(
                    "redline_ambassador_tls_connections_total",
                    {"server_name": "db.shop.test"}) == 1

    run(scenario())


def counted_once(proxy: Ambassador, label: str) -> bool:
    return tcp(proxy, "connections", label, error_type="") == 1


def test_declared_protocols_label_without_detecting() -> None:
    async def scenario() -> None:
        async with upstream(echo_then_bye) as app, \
                ambassador(("h2c", app), ("tls", app), ("opaque", app)) as proxy:
            for port in proxy.listen_ports:
                # The same bytes on each port: the port's declaration decides the label.
                assert await exchange(port, b"*1\r\n$4\r\nPING\r\n") == b"*1\r\n$4\r\nPING\r\nbye"
            for label in ("http2", "tls", "opaque"):
                await wait_for(functools.partial(counted_once, proxy, label))

    run(scenario())


async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A server that speaks first (as MySQL, SMTP and SSH do), then echoes a line."""
    writer.write(b"220 hello\r\n")
    await writer.drain()
    writer.write(await reader.readline())
    await writer.drain()


async def greeting_delay(port: int) -> tuple[float, float]:
    """Seconds to the server's greeting, then for one round trip after it."""
    start = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await reader.readline() == b"220 hello\r\n"
    greeted = time.monotonic()
    writer.write(b"EHLO shop\r\n")
    assert await reader.readline() == b"EHLO shop\r\n"
    writer.close()
    return greeted - start, time.monotonic() - greeted


def test_a_server_that_speaks_first_waits_for_detection_once_and_not_when_declared() -> None:
    limits = Limits(detect_timeout=0.2)

    async def scenario() -> None:
        async with upstream(greet) as app, \
                ambassador(("auto", app), ("opaque", app), limits=limits) as proxy:
            auto, opaque = proxy.listen_ports
            for _ in range(2):  # per connection, every connection
                greeting, round_trip = await greeting_delay(auto)
                assert 0.2 <= greeting < 0.45 and round_trip < 0.1
            greeting, round_trip = await greeting_delay(opaque)
            assert greeting < 0.1 and round_trip < 0.1
            await wait_for(lambda: tcp(proxy, "connections", "opaque", error_type="") == 3)

    run(scenario())


def test_a_half_close_during_detection_forwards_what_was_sent_and_the_eof() -> None:
    async def scenario() -> None:
        async with upstream(echo_then_bye) as app, ambassador(("auto", app)) as proxy:
            # Could still become a request line when the client ends its side.
            assert await exchange(proxy.listen_port, b"GET /par") == b"GET /parbye"
            await wait_for(lambda: tcp(proxy, "connections", "opaque", error_type="") == 1)

    run(scenario())


def test_a_client_that_resets_during_detection_is_counted() -> None:
    async def scenario() -> None:
        async with upstream(echo_then_bye) as app, ambassador(("auto", app)) as proxy:
            _, writer = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
            writer.write(b"GET /par")
            await writer.drain()
            reset(writer)
            await wait_for(lambda: tcp(proxy, "connections", "opaque",
                                       error_type="connection_reset") == 1)
            assert not proxy.connections
            assert proxy.registry.get_sample_value(
                "redline_ambassador_connections_opened_total", {"side": "upstream"}) == 0

    run(scenario())


def test_a_refused_upstream_connect_resets_the_client_and_is_counted() -> None:
    async def scenario() -> None:
        async with upstream(echo_then_bye) as app:
            pass  # closed: nothing listens on `app` any more
        async with ambassador(("opaque", app)) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
            writer.write(b"PING\r\n")
            with pytest.raises(ConnectionResetError):
                await reader.read()
            writer.close()
            await wait_for(lambda: tcp(proxy, "connections", "opaque",
                                       error_type="connection_refused") == 1)

    run(scenario())


@pytest.mark.parametrize("side", ["upstream", "client"])
def test_a_reset_on_one_side_resets_the_other(side: str) -> None:
    upstream_saw: list[type[BaseException] | bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(5)
        writer.write(b"hello")
        await writer.drain()
        if side == "upstream":
            # Reset once the client has read "hello": a reset that overtakes it makes asyncio's
            # StreamReader raise before handing over the data it holds (a race of the test's
            # client, not of the relay, which passes "hello" on before the reset either way).
            await reader.readexactly(3)
            reset(writer)
            return
        try:
            upstream_saw.append(await reader.read())
        except ConnectionResetError as exc:
            upstream_saw.append(type(exc))

    async def scenario() -> None:
        async with upstream(serve) as app, ambassador(("opaque", app)) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
            writer.write(b"hello")
            assert await reader.readexactly(5) == b"hello"
            if side == "upstream":
                writer.write(b"ack")
                with pytest.raises(ConnectionResetError):
                    await reader.read()
            else:
                reset(writer)
                await wait_for(lambda: bool(upstream_saw))
                assert upstream_saw == [ConnectionResetError]
            await wait_for(lambda: tcp(proxy, "connections", "opaque",
                                       error_type="connection_reset") == 1)

    run(scenario())


def test_a_slow_reader_pauses_the_other_side_instead_of_buffering() -> None:
    size = 32 << 20
    chunk = os.urandom(1 << 16)

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(size // len(chunk)):
            writer.write(chunk)
            await writer.drain()

    async def scenario() -> None:
        async with upstream(flood) as app, ambassador(("opaque", app)) as proxy:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", proxy.listen_port, limit=1 << 16)
            # uvloop's transports are not asyncio.Transport subclasses, but are Transports.
            reader_transport = cast(asyncio.Transport, writer.transport)
            reader_transport.pause_reading()  # the client reads nothing for a while
            await asyncio.sleep(0.5)
            # What the ambassador holds stays near one high-water mark, not the flood.
            assert tcp(proxy, "sent_bytes", "opaque") < size // 4
            reader_transport.resume_reading()
            received = 0
            while data := await reader.read(1 << 20):
                received += len(data)
                if received == size:
                    break
            assert received == size
            writer.close()

    run(scenario())


def test_the_tcp_idle_timeout_closes_quiet_connections_only_when_set() -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async def scenario(limits: Limits, closed: bool) -> None:
        async with upstream(hold) as app, ambassador(("opaque", app), limits=limits) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
            ended = asyncio.ensure_future(reader.read())
            await asyncio.sleep(0.8)
            assert ended.done() == closed
            if closed:
                await wait_for(lambda: tcp(proxy, "connections", "opaque",
                                           error_type="timeout") == 1)
            writer.close()
            ended.cancel()

    run(scenario(Limits(tcp_idle_timeout=0.3), closed=True))
    run(scenario(Limits(), closed=False))  # the default: database pools idle for hours


def test_readiness_with_several_ports_needs_any_upstream() -> None:
    async def scenario() -> None:
        async with upstream(echo_then_bye) as gone:
            pass
        async with upstream(echo_then_bye) as app:
            async with ambassador(("opaque", gone), ("auto", app)) as proxy:
                ready, detail = await proxy.readiness()
                assert ready and f"cannot reach upstream 127.0.0.1:{gone}" in detail
            async with ambassador(("opaque", gone)) as proxy:
                assert (await proxy.readiness())[0] is False

    run(scenario())


def test_server_names_are_capped() -> None:
    async def scenario() -> None:
        async with upstream(echo_then_bye) as app, ambassador(("tls", app)) as proxy:
            for index in range(MAX_SERVER_NAMES + 5):
                proxy.server_name_seen(f"tenant-{index}.shop.test")
            proxy.server_name_seen("tenant-0.shop.test")  # known names go on counting
            value = proxy.registry.get_sample_value
            assert value("redline_ambassador_tls_connections_total",
                         {"server_name": "tenant-0.shop.test"}) == 2
            assert value("redline_ambassador_tls_connections_total",
                         {"server_name": OTHER_SERVER_NAME}) == 5

    run(scenario())


def test_drain_resets_pass_through_connections_still_open_at_its_deadline() -> None:
    async def scenario() -> None:
        async with upstream(echo_then_bye) as app:
            async with ambassador(("opaque", app)) as proxy:
                reader, writer = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
                writer.write(b"PING\r\n")
                assert await reader.readexactly(6) == b"PING\r\n"
            # Leaving the block drained the ambassador (drain timeout 1 s): the connection,
            # never idle, was reset at the deadline rather than left open or cut with a FIN.
            with pytest.raises(ConnectionResetError):
                await reader.read()
            writer.close()

    run(scenario())
