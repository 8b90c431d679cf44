"""The upgrade layer of the HTTP/1 handler: from an upgrade request (`Upgrade:`, or CONNECT)
to the app's answer, and what the connection becomes if the app grants it.

Bytes the client sends after an upgrade request are not forwarded until the app answers: if it
declines, they are the HTTP requests they look like (framed and recorded as such); if it
answers 101 (or 2xx to a CONNECT), they belong to the new protocol and go to `Upgraded` with
the connection.

An h2c upgrade (`Upgrade: h2c`) granted with the default `Upgraded` is a tunnel too, watched
by an HTTP/2 observer (http2.H2cUpgrade, `h2c`) where the port observes HTTP/2: the tunnel's
bytes on both sides are shown to it, and the upgrade request is recorded as stream 1 when its
HTTP/2 response ends instead of at the 101. The request's HTTP2-Settings (the client's first
settings) go to the observer with it: they are in force from the 101 on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from redline.exporters.tcp import ConnectionMeter
from redline.sidecars.ambassador.handler import ConnectionOwner
from redline.sidecars.ambassador.http1 import header_values
from redline.sidecars.ambassador.http1_requests import RequestFraming
from redline.sidecars.ambassador.observe import InboundObserver, OutboundObserver

if TYPE_CHECKING:  # the HTTP/2 modules are imported at the first granted h2c upgrade
    from redline.sidecars.ambassador.h2record import StreamRecorder


class Upgraded(Protocol):
    """What becomes of a client connection once the app granted its upgrade: called with the
    connection, the protocol asked for (the Upgrade header's value; CONNECT for a CONNECT)
    and the client's bytes sent since the upgrade request, not forwarded yet. The seam for a
    protocol with an observer of its own (an h2c upgrade could become an HTTP/2 connection);
    the default, `tunnel`, forwards bytes both ways unobserved."""

    def __call__(self, client: Upgrading, protocol: bytes, held: bytes) -> None: ...


def tunnel(client: Upgrading, protocol: bytes, held: bytes) -> None:
    client.start_tunnel(held)


class Upgrading(RequestFraming):
    def __init__(self, owner: ConnectionOwner, meter: ConnectionMeter | None = None,
                 upgraded: Upgraded | None = None) -> None:
        """`upgraded`: what becomes of the connection once the app granted an upgrade (by
        default a byte tunnel, `tunnel`)."""
        super().__init__(owner, meter)
        self.upgraded: Upgraded = upgraded if upgraded is not None else tunnel
        self.tunnel = False  # upgrade granted: both directions are raw for good
        self.h2c = None  # the observer of a granted h2c upgrade (declared by Downstream)
        # The HTTP2-Settings values of the upgrade request awaiting its answer (h2c).
        self.http2_settings: list[bytes] = []

    def _upgrade_requested(self, raw_head: bytes) -> None:
        self.http2_settings = header_values(raw_head.lower(), raw_head, b"http2-settings:")

    def _await_upgrade(self) -> None:
        """The upgrade request went whole: hold what the client sends next until the app
        answers it (bytes sent before a 101 are not the new protocol's if the app declines)."""
        self.upgrade_after_body = False
        self.awaiting_upgrade = True
        if self.transport is not None:
            self.transport.pause_reading()

    def upgrade_granted(self, now: float) -> None:
        """The app answered the upgrade with 101 (or 2xx to CONNECT): the connection is the
        new protocol's from now on, with what the client sent meanwhile."""
        self.awaiting_upgrade = self.upgrade_after_body = False
        self.tunnel = True  # not HTTP any more: never idle as a keep-alive connection is
        held, self.backlog = self.backlog, b""
        protocol = self.upgrade_to or b""
        recorder = self._h2c_recorder(protocol)
        if recorder is None:
            if self.response_complete(now):
                self.upgraded(self, protocol, held)
            return
        # The HTTP/2 observer (its framer, HPACK decoder and hpack: about 1 MB) is imported
        # here, not by every ambassador, most of which never see HTTP/2.
        from redline.sidecars.ambassador.http2 import H2cUpgrade

        exchange = self.pending[0]  # the upgrade's, answered 101
        H2cUpgrade.hold(exchange)  # stream 1 is recorded when its response ends
        if not self.response_complete(now):  # no tunnel after all: the 101 is its record
            exchange.recorded = False
            self.observer.finish(exchange, exchange.status, None, now)
            return
        self.h2c = H2cUpgrade(self.owner, recorder, exchange, self.observer.finish, now,
                              self.http2_settings)
        self.start_tunnel(held)
        if held:
            self.h2c.client_bytes(held)

    def _h2c_recorder(self, protocol: bytes) -> StreamRecorder | None:
        """Where an upgrade to `protocol` is recorded as HTTP/2: an h2c upgrade with the
        default `Upgraded` on a port whose observer records HTTP/2; None: a plain tunnel."""
        if self.upgraded is not tunnel or protocol.strip().lower() != b"h2c":
            return None
        observer = self.observer
        return (observer.http2 if isinstance(observer, InboundObserver | OutboundObserver)
                else None)

    def upgrade_declined(self, now: float) -> None:
        """The app answered the upgrade request without switching: HTTP goes on, and what the
        client sent meanwhile is framed as the requests it is."""
        self.upgrade_after_body = False
        if self.awaiting_upgrade:
            self.awaiting_upgrade = False
            self._frame_backlog(now)

    def start_tunnel(self, held: bytes) -> None:
        """Both directions raw for good (the upstream side stopped framing at the 101)."""
        self.raw = True
        if held:
            self._to_upstream(held)
        self._resume_transport()
