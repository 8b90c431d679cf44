"""The HTTP/1 connection pair without IO: fake transports, a fake owner, a recording observer.

A test drives the pair as the event loop would: bytes from the client, a connect completing,
bytes from the upstream, a close; and reads what each transport was given.
"""

from __future__ import annotations

import asyncio

from redline.exporters.tcp import TcpRecorder
from redline.sidecars.ambassador.config import Limits
from redline.sidecars.ambassador.handler import ConnectFailed, Connection
from redline.sidecars.ambassador.http1 import RequestHead
from redline.sidecars.ambassador.http1_client import ClientSide
from redline.sidecars.ambassador.http1_upstream import UpstreamSide
from redline.sidecars.ambassador.observe import Exchange, Observer

Finished = tuple[bytes, int | None, str | None]  # method, status, error


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()
        self.closing = False
        self.aborted = False
        self.reading = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closing, "written after close"
        self.data += data

    def take(self) -> bytes:
        """What was written since the last take."""
        written = bytes(self.data)
        self.data.clear()
        return written

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = self.aborted = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class RecordingObserver(Observer):
    """Keeps what an observer is told, once per exchange as the real ones do."""

    def __init__(self) -> None:
        self.finished: list[Finished] = []
        self.rejections: list[tuple[bytes, int, str]] = []

    def begin(self, head: RequestHead, raw_head: bytes, now: float) -> Exchange:
        return Exchange(head.method, now, head.upgrade)

    def finish(self, exchange: Exchange, status: int | None, error: str | None,
               now: float) -> None:
        if not exchange.recorded:
            exchange.recorded = True
            self.finished.append((exchange.method, status, error))

    def rejected(self, method: bytes, status: int, error: str) -> None:
        self.rejections.append((method, status, error))


class FakeOwner:
    """A ConnectionOwner that connects nothing by itself: the test completes each connect."""

    def __init__(self, observer: Observer | None = None, limits: Limits | None = None) -> None:
        self.recording = RecordingObserver()
        self.observer: Observer = observer if observer is not None else self.recording
        self.limits = limits if limits is not None else Limits()
        self.tcp = TcpRecorder("shop")
        self.server_names: list[str] = []
        self.shutting_down = False
        self.connections: set[Connection] = set()
        self.connects: list[tuple[asyncio.Protocol, ConnectFailed]] = []
        self.upstreams_open = 0
        self.rejected: list[str] = []
        self.limits_reached: list[str] = []
        self.retries = 0

    def admits_connection(self) -> bool:
        return True

    def connection_opened(self, connection: Connection) -> None:
        self.connections.add(connection)

    def connection_replaced(self, old: Connection, new: Connection) -> None:
        self.connections.discard(old)
        self.connections.add(new)

    def connection_closed(self, connection: Connection) -> None:
        self.connections.discard(connection)

    def open_upstream(self, protocol: asyncio.Protocol, failed: ConnectFailed) -> None:
        self.connects.append((protocol, failed))

    def upstream_opened(self) -> None:
        self.upstreams_open += 1

    def upstream_gone(self) -> None:
        self.upstreams_open -= 1

    def count_rejected(self, reason: str) -> None:
        self.rejected.append(reason)

    def count_limit(self, limit: str) -> None:
        self.limits_reached.append(limit)

    def count_retry(self) -> None:
        self.retries += 1

    def server_name_seen(self, server_name: str) -> None:
        self.server_names.append(server_name)


class Pair:
    """One accepted client connection; `connect()` completes the upstream connect it asked for."""

    def __init__(self, owner: FakeOwner | None = None) -> None:
        self.owner = owner if owner is not None else FakeOwner()
        self.client = ClientSide(self.owner)
        self.client_transport = FakeTransport()
        self.client.connection_made(self.client_transport)

    @property
    def finished(self) -> list[Finished]:
        return self.owner.recording.finished

    def connect(self) -> tuple[UpstreamSide, FakeTransport]:
        protocol, _ = self.owner.connects[-1]
        assert isinstance(protocol, UpstreamSide)
        transport = FakeTransport()
        protocol.connection_made(transport)
        return protocol, transport

    def fail_connect(self, error: str, detail: str) -> None:
        _, failed = self.owner.connects[-1]
        failed(error, detail)

    def lose_client(self) -> None:
        """The client's connection ends, as the loop reports it after close or a reset."""
        self.client_transport.closing = True
        self.client.connection_lost(None)
