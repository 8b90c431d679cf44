"""The TCP schema: what the ambassador records for every connection, whatever its protocol.

HTTP gets RED per request; a connection the ambassador cannot parse (TLS it does not
terminate, Redis, PostgreSQL, anything opaque) still gets rate, errors and duration per
connection and the bytes each way, as Linkerd's and Istio's TCP metrics give them. Names are in
DESIGN.md; `network_protocol_name` is the protocol the port declared or detection found.

A connection is counted in `tcp_server_connections_total` when it ends, labelled with how it
ended (`error_type` empty for a clean close by either side), so that the error ratio is one
division; `tcp_server_active_connections` counts it from the start. Bytes are added while they
flow (a long-lived connection is visible before it ends): the connection holds its protocol's
two counter cells and adds to them, no lookup per chunk.

A proxy's connection adds to plain integers of its `ConnectionMeter` instead (no call per
chunk on the data path); `TcpRecorder.flush()` moves what they gained into the counters, so
the proxy calls it about every second and a meter flushes itself when its connection ends.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import cast

from redline.exporters.instruments import (
    Counter,
    Gauge,
    Histogram,
    InstrumentCollector,
    LabelValues,
)
from redline.exporters.red import SERVICE

CONNECTIONS = "tcp_server_connections"  # _total added by the exposition
ACTIVE_CONNECTIONS = "tcp_server_active_connections"
CONNECTION_DURATION = "tcp_server_connection_duration_seconds"
RECEIVED_BYTES = "tcp_server_received_bytes"  # _total
SENT_BYTES = "tcp_server_sent_bytes"  # _total

PROTOCOL = "network_protocol_name"
ERROR_TYPE = "error_type"
PROTOCOLS = ("http", "http2", "tls", "opaque")

# Connections live from milliseconds (one request) to hours (a database pool).
CONNECTION_BUCKETS: tuple[float, ...] = (
    0.005, 0.05, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0)


class TcpRecorder:
    """TCP metrics of one service's connections (the server side: clients of the app)."""

    def __init__(self, service_name: str, buckets: tuple[float, ...] = CONNECTION_BUCKETS
                 ) -> None:
        if not service_name:
            raise ValueError("service_name: expected a non-empty name")
        self.service_name = service_name
        self.connections = Counter(
            CONNECTIONS, "Connections accepted, counted when they end, by how they ended.",
            (SERVICE, PROTOCOL, ERROR_TYPE), self._with_service)
        self.active = Gauge(
            ACTIVE_CONNECTIONS, "Connections open now.", (SERVICE, PROTOCOL),
            self._with_service)
        self.duration = Histogram(
            CONNECTION_DURATION.removesuffix("_seconds"),
            "Duration of connections, from accept to close, by how they ended.",
            (SERVICE, PROTOCOL, ERROR_TYPE), buckets, self._with_service, unit="seconds")
        self.received = Counter(
            RECEIVED_BYTES, "Bytes received from clients.", (SERVICE, PROTOCOL),
            self._with_service)
        self.sent = Counter(
            SENT_BYTES, "Bytes sent to clients.", (SERVICE, PROTOCOL), self._with_service)
        for protocol in PROTOCOLS:  # every protocol's series exist from the start, at 0
            self.active.cell((protocol,))
            self.received.cell((protocol,))
            self.sent.cell((protocol,))
        self.meters: set[ConnectionMeter] = set()  # of the connections open now

    def _with_service(self, key: Hashable) -> LabelValues:
        return (self.service_name, *cast(tuple[str, ...], key))

    def opened(self, protocol: str) -> ByteCounts:
        """A connection of `protocol` started; add its bytes to what this returns."""
        self.active.add((protocol,), 1)
        return ByteCounts(self, protocol)

    def closed(self, protocol: str, duration: float, error: str = "") -> None:
        self.active.add((protocol,), -1)
        self.connections.inc((protocol, error))
        self.duration.child((protocol, error)).observe(duration)

    def meter(self, protocol: str, start: float) -> ConnectionMeter:
        """A connection of `protocol` accepted at `start` (monotonic seconds)."""
        meter = ConnectionMeter(self, protocol, start)
        self.meters.add(meter)
        return meter

    def flush(self) -> None:
        """Move the bytes the open connections counted into the counters."""
        for meter in self.meters:
            meter.flush()

    def collector(self) -> InstrumentCollector:
        return InstrumentCollector(
            [self.connections, self.active, self.duration, self.received, self.sent])


class ByteCounts:
    """The two byte counters of one protocol, for a connection to add to as data flows."""

    __slots__ = ("_received", "_sent")

    def __init__(self, recorder: TcpRecorder, protocol: str) -> None:
        self._received = recorder.received.cell((protocol,))
        self._sent = recorder.sent.cell((protocol,))

    def received(self, count: int) -> None:
        self._received.value += count

    def sent(self, count: int) -> None:
        self._sent.value += count


class ConnectionMeter:
    """One connection's TCP metrics. The connection adds to `received` and `sent` as bytes
    flow (an integer add, the only per-chunk cost); `flush` moves the growth into the counters
    and `close` records the connection's end, once."""

    __slots__ = ("_counts", "_flushed_received", "_flushed_sent", "_recorder", "error",
                 "protocol", "received", "sent", "start")

    def __init__(self, recorder: TcpRecorder, protocol: str, start: float) -> None:
        self._recorder = recorder
        self._counts = recorder.opened(protocol)
        self.protocol = protocol
        self.start = start
        self.received = 0  # from the client
        self.sent = 0  # to the client
        self._flushed_received = 0
        self._flushed_sent = 0
        self.error = ""  # how the connection failed, if it did: the first reason found wins

    def fail(self, error: str) -> None:
        if not self.error:
            self.error = error

    def flush(self) -> None:
        received, sent = self.received, self.sent
        if received != self._flushed_received:
            self._counts.received(received - self._flushed_received)
            self._flushed_received = received
        if sent != self._flushed_sent:
            self._counts.sent(sent - self._flushed_sent)
            self._flushed_sent = sent

    def close(self, now: float) -> None:
        """The connection ended (at `now`, monotonic seconds); later calls do nothing."""
        recorder = self._recorder
        if self not in recorder.meters:
            return
        recorder.meters.discard(self)
        self.flush()
        recorder.closed(self.protocol, max(0.0, now - self.start), self.error)
