"""An `auto` port's connection until its protocol is known, as Linkerd detects it.

The detector reads the client's first bytes (detect.py decides, bounded: at most a request
line of 8 KiB, six bytes for TLS) and hands the connection, with those bytes, to the handler of
what it found: HTTP/1 to the HTTP/1 handler, anything else to a pass-through. A client that sends
nothing conclusive within `--detect-timeout` (a server-speaks-first protocol such as MySQL,
SMTP or SSH sends nothing at all) is passed through as opaque TCP: the upstream is connected
then and greets the client itself. An outbound port's detector tells only h2c from HTTP/1
(detect.detect_http): there the app calls a dependency over HTTP. The hand-off replaces the
transport's protocol, so after it the detector is out of the data path entirely.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from time import monotonic
from typing import cast

from redline.exporters.red import CONNECTION_RESET
from redline.sidecars.ambassador.detect import HTTP1, OPAQUE, detect, detect_http
from redline.sidecars.ambassador.handler import ConnectionOwner, Handler, HandOff
from redline.sidecars.ambassador.observe import OutboundObserver


class Detector(asyncio.Protocol):
    def __init__(self, owner: ConnectionOwner, handlers: Mapping[str, HandOff]) -> None:
        self.owner = owner
        self.handlers = handlers  # by what detect() answers
        # What the bytes may be, and what a connection is when they say nothing in time.
        self.detect: Callable[[bytes], str | None] = detect
        self.otherwise = OPAQUE
        if isinstance(owner.observer, OutboundObserver):
            # An outbound port carries the app's HTTP calls to its one dependency, perhaps in
            # TLS the ambassador originates: HTTP/2 with prior knowledge or HTTP/1, never TLS
            # or opaque bytes (relayed inside TLS to a server expecting HTTP). An app silent
            # at first (a pooled connection opened early) is HTTP/1 and meets its timeouts.
            self.detect, self.otherwise = detect_http, HTTP1
        self.transport: asyncio.Transport | None = None
        self.first = b""
        self.accepted = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.handler: Handler | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream connection always gets a Transport (uvloop's is not a subclass of it).
        self.transport = cast(asyncio.Transport, transport)
        self.accepted = monotonic()
        self.owner.connection_opened(self)
        self.timer = asyncio.get_running_loop().call_later(
            self.owner.limits.detect_timeout, self._hand_off, self.otherwise)

    def data_received(self, data: bytes) -> None:
        self.first += data
        found = self.detect(self.first)
        if found is not None:
            self._hand_off(found)

    def eof_received(self) -> bool | None:
        # The client ended its side before being recognised (a request sent with a half
        # close, `printf ... | nc`): what it sent goes through, then its EOF.
        self._hand_off(self.detect(self.first) or self.otherwise)
        return self.handler.eof_received() if self.handler is not None else False

    def _hand_off(self, protocol: str) -> None:
        transport = self.transport
        if self.handler is not None or self.closed or transport is None:
            return
        if self.timer is not None:
            self.timer.cancel()
        handler = self.handlers[protocol](self.owner, self.owner.tcp.meter(protocol,
                                                                           self.accepted))
        self.handler = handler
        self.owner.connection_replaced(self, handler)
        transport.set_protocol(handler)
        first, self.first = self.first, b""
        handler.take_over(transport, first)

    def connection_lost(self, exc: Exception | None) -> None:
        # Only before a hand-off: after it the transport reports to the handler.
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        meter = self.owner.tcp.meter(self.detect(self.first) or self.otherwise, self.accepted)
        if exc is not None:
            meter.fail(CONNECTION_RESET)
        meter.close(monotonic())
        self.owner.connection_closed(self)

    # --- Connection ------------------------------------------------------------------------

    def idle(self) -> bool:
        return True  # nothing was forwarded yet: closing loses nothing

    def check_timeouts(self, now: float) -> None:
        """The detection timeout has a timer of its own (it is shorter than a sweep)."""

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
