"""The native relay (_splice.c through relay.py) on its own, both ways of moving bytes, between
real loopback connections; and the hand-over from the asyncio pass-through to it. Pass-through
behaviour on every relay is tested in test_tcp_passthrough.py and test_real_protocols.py."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from redline.sidecars.ambassador import listener, relay
from redline.sidecars.ambassador.passthrough import PassThrough
from tests.sidecars.ambassador.relays import RELAYS, environment
from tests.sidecars.ambassador.tcp import ambassador, run, tcp, upstream, wait_for

_splice = pytest.importorskip("redline.sidecars.ambassador._splice",
                              reason="the native relay is not built here")

Ended = tuple[int, int, int, int]


def connected() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        near = socket.create_connection(listener.getsockname(), timeout=10)
        far, _ = listener.accept()
    far.settimeout(10)
    return near, far


def join(the_relay: Any) -> tuple[int, socket.socket, socket.socket]:
    """A client and an app whose connections to the relay it joins: (pair, client, app)."""
    client, client_side = connected()
    upstream_side, app = connected()
    for side in (client_side, upstream_side):
        side.setblocking(False)
    pair: int = the_relay.add(os.dup(client_side.fileno()), os.dup(upstream_side.fileno()))
    client_side.close()  # the relay's dups hold the connections
    upstream_side.close()
    return pair, client, app


@pytest.fixture(params=[False, True], ids=["copy", "splice"])
def new_relay(request: pytest.FixtureRequest) -> Any:
    """A relay of each kind (recv/send through buffers, or splice through pipes)."""
    return _splice.Relay(splice=request.param)


@contextmanager
def relayed(the_relay: Any) -> Iterator[tuple[Any, int, socket.socket, socket.socket]]:
    """One joined pair: (relay, pair, client, app)."""
    pair, client, app = join(the_relay)
    with client, app:
        yield the_relay, pair, client, app


def ended(the_relay: Any, timeout: float = 10.0) -> list[Ended]:
    """The pairs the relay reports ended, waiting (bounded) for its eventfd."""
    readable, _, _ = select.select([the_relay.fileno()], [], [], timeout)
    assert readable, "the relay reported no end in time"
    result: list[Ended] = the_relay.ended()
    return result


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def test_bytes_both_ways_unchanged_with_half_close_and_counted(new_relay: Any) -> None:
    request, reply = os.urandom(3 << 20), os.urandom(5 << 20)
    with relayed(new_relay) as (the_relay, pair, client, app):
        def serve() -> None:
            assert read_all(app) == request  # the client's EOF arrived after its bytes
            app.sendall(reply)
            app.shutdown(socket.SHUT_WR)

        server = threading.Thread(target=serve)
        server.start()
        client.sendall(request)
        client.shutdown(socket.SHUT_WR)
        assert read_all(client) == reply
        server.join(10)
        assert ended(the_relay) == [(pair, len(request), len(reply), 0)]
        assert the_relay.counts(pair) is None


def test_a_reset_on_one_side_resets_the_other_and_ends_the_pair_with_its_error(
        new_relay: Any) -> None:
    with relayed(new_relay) as (the_relay, pair, client, app):
        client.sendall(b"ping")
        assert app.recv(4) == b"ping"
        assert the_relay.counts(pair) == (4, 0)
        app.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        app.close()
        with pytest.raises(ConnectionResetError):
            read_all(client)
        [(ended_pair, received, sent, error)] = ended(the_relay)
        assert (ended_pair, received, sent) == (pair, 4, 0) and error != 0


@pytest.mark.parametrize("abort", [False, True])
def test_python_closes_or_aborts_a_pair(new_relay: Any, abort: bool) -> None:
    with relayed(new_relay) as (the_relay, pair, client, app):
        client.sendall(b"ping")
        assert app.recv(4) == b"ping"
        the_relay.close(pair, abort)
        for peer in (client, app):
            if abort:
                with pytest.raises(ConnectionResetError):
                    read_all(peer)
            else:
                assert read_all(peer) == b""
        assert ended(the_relay) == [(pair, 4, 0, 0)]
        the_relay.close(pair, True)  # an ended pair: ignored


def test_many_pairs_at_once_each_get_their_own_bytes(new_relay: Any) -> None:
    payloads = [os.urandom(256 << 10) for _ in range(20)]
    the_relay = new_relay
    pairs = [join(the_relay) for _ in payloads]

    def echo(app: socket.socket) -> None:
        while data := app.recv(1 << 16):
            app.sendall(data)
        app.shutdown(socket.SHUT_WR)

    def send_then_end(client: socket.socket, data: bytes) -> None:
        client.sendall(data)
        client.shutdown(socket.SHUT_WR)

    threads = [threading.Thread(target=echo, args=(app,)) for _, _, app in pairs]
    threads += [threading.Thread(target=send_then_end, args=(client, payload))
                for (_, client, _), payload in zip(pairs, payloads, strict=True)]
    try:
        for thread in threads:
            thread.start()
        for (_, client, _), payload in zip(pairs, payloads, strict=True):
            assert read_all(client) == payload
        reported: list[Ended] = []
        while len(reported) < len(pairs):
            reported += ended(the_relay)
        assert sorted(reported) == sorted((pair, len(payload), len(payload), 0) for
                                          (pair, _, _), payload in zip(pairs, payloads,
                                                                       strict=True))
    finally:
        for _, client, app in pairs:
            client.close()
            app.close()
        for thread in threads:
            thread.join(10)


# --- the hand-over from the asyncio pass-through --------------------------------------------

async def hold_then_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


@pytest.mark.parametrize("which", RELAYS)
def test_a_pass_through_is_handed_over_only_where_the_native_relay_is_on(
        which: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environment(which).items():
        monkeypatch.setenv(name, value)

    async def scenario() -> None:
        async with upstream(hold_then_echo) as app, ambassador(("opaque", app)) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
            writer.write(b"*1\r\n$4\r\nPING\r\n")
            assert await reader.readexactly(14) == b"*1\r\n$4\r\nPING\r\n"
            [connection] = proxy.connections
            assert isinstance(connection, PassThrough)
            assert (connection.relay is not None) == (which != "python")
            # Bytes the relay moved reach the TCP metrics at a sweep, before the end.
            connection.check_timeouts(0.0)
            assert tcp(proxy, "received_bytes", "opaque") == 14
            writer.close()
            await wait_for(lambda: tcp(proxy, "connections", "opaque", error_type="") == 1)
            assert tcp(proxy, "sent_bytes", "opaque") == 14
            assert not proxy.connections

    run(scenario())


def test_a_handler_that_must_see_every_byte_stays_in_python(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environment(relay.DEFAULT).items():
        monkeypatch.setenv(name, value)
    seen: list[bytes] = []

    class Observed(PassThrough):
        """A pass-through that must see every byte (as HTTP/2 observation does)."""

        relay_in_kernel = False

        def data_received(self, data: bytes) -> None:
            seen.append(data)
            super().data_received(data)

    monkeypatch.setitem(listener.HANDLERS, "opaque", Observed)

    async def scenario() -> None:
        async with upstream(hold_then_echo) as app, ambassador(("opaque", app)) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
            for chunk in (b"one\r\n", b"two\r\n"):
                writer.write(chunk)
                assert await reader.readexactly(len(chunk)) == chunk
            [connection] = proxy.connections
            assert isinstance(connection, Observed) and connection.relay is None
            writer.close()
            await wait_for(lambda: not proxy.connections)
        assert b"".join(seen) == b"one\r\ntwo\r\n"

    run(scenario())
