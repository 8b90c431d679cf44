"""The listener: accepts connections on one port and gives each to its protocol's handler.

The port's declared protocol (`--protocol`) picks the handler, as Envoy's listener picks a
network filter chain; `auto` picks the detector, which hands each connection on by what its
first bytes are. Both maps are here: the two vocabularies (protocols.py) meet only in them.
"""

from __future__ import annotations

import asyncio

from redline.exporters.tcp import ConnectionMeter
from redline.sidecars.ambassador import detect
from redline.sidecars.ambassador.detector import Detector
from redline.sidecars.ambassador.handler import ConnectionOwner, Handler, HandlerFactory, HandOff
from redline.sidecars.ambassador.http1_client import ClientSide
from redline.sidecars.ambassador.passthrough import PassThrough, TlsPassThrough
from redline.sidecars.ambassador.protocols import AUTO, LABELS


def _http2(owner: ConnectionOwner, meter: ConnectionMeter | None = None) -> Handler:
    """http2.Http2, imported at the first HTTP/2 connection: its framer, HPACK decoder and
    hpack are about 1 MB of memory that an ambassador seeing HTTP/1 alone does without."""
    from redline.sidecars.ambassador.http2 import Http2

    return Http2(owner, meter)


# What a connection was found to speak (detect.py's answer, the metric label) -> its handler.
DETECTED: dict[str, HandOff] = {
    detect.HTTP1: ClientSide,
    detect.HTTP2: _http2,  # h2c with prior knowledge: relayed, observed per stream
    detect.TLS: TlsPassThrough,
    detect.OPAQUE: PassThrough,
}


def _detector(owner: ConnectionOwner) -> Detector:
    return Detector(owner, DETECTED)


# A port's declared protocol (the --protocol value) -> the handler of its connections.
HANDLERS: dict[str, HandlerFactory] = {AUTO: _detector, **{
    flag: DETECTED[label] for flag, label in LABELS.items()}}


class Refused(asyncio.Protocol):
    """A connection past --max-connections: closed as soon as it is accepted."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class Listener:
    def __init__(self, address: tuple[str, int], protocol: str, owner: ConnectionOwner) -> None:
        try:
            self.handler = HANDLERS[protocol]
        except KeyError:
            raise ValueError(f"protocol: expected one of {', '.join(HANDLERS)}, "
                             f"got {protocol!r}") from None
        self.address = address
        self.protocol = protocol
        self.owner = owner
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen; the port listened on (the system's choice for port 0)."""
        loop = asyncio.get_running_loop()
        handler, owner = self.handler, self.owner
        host, port = self.address
        def accept() -> asyncio.Protocol:
            return handler(owner) if owner.admits_connection() else Refused()

        self._server = await loop.create_server(
            accept, host, port, reuse_address=True, backlog=2048)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def close(self) -> None:
        """Stop accepting; connections already accepted go on."""
        if self._server is not None:
            self._server.close()
