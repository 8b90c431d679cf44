"""What a protocol handler's connections and the process that owns them need from each other.

A handler is the asyncio protocol the listener gives an accepted connection (`ClientSide` for
HTTP/1, `PassThrough` for opaque TCP and TLS, `Detector` for an `auto` port until it knows
which of those to hand the connection to). It reaches the rest of the ambassador only through
`ConnectionOwner` (one per fronted port: its upstream, the process's metrics and limits), and
the owner (drain, the timeout sweeper) reaches it only through `Connection`, so a new protocol
is a new handler written against these, touching neither the owner nor the other handlers.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable
from typing import Protocol, TypeAlias

from mypy_extensions import mypyc_attr

from redline.exporters.tcp import ConnectionMeter, TcpRecorder
from redline.sidecars.ambassador.config import Limits
from redline.sidecars.ambassador.observe import Observer

# Called with an error_type and a sentence when connecting to the upstream failed.
ConnectFailed: TypeAlias = Callable[[str, str], None]


class Connection(Protocol):
    """An accepted connection, as its owner sees it whatever its protocol."""

    @property
    def closed(self) -> bool: ...

    def idle(self) -> bool:
        """Nothing in flight: closing it now loses nothing (drain closes these first)."""
        ...

    def check_timeouts(self, now: float) -> None: ...

    def close(self) -> None:
        """Close once what is buffered was sent."""
        ...

    def abort(self) -> None: ...


class Process(Protocol):
    """What every port's connections share: observation, limits, metrics, the connection set
    that drain and the sweeper walk."""

    @property
    def observer(self) -> Observer: ...

    @property
    def limits(self) -> Limits: ...

    @property
    def tcp(self) -> TcpRecorder: ...

    @property
    def shutting_down(self) -> bool:
        """Draining has closed the listener: idle connections should close."""
        ...

    def admits_connection(self) -> bool:
        """Whether one more client connection may be accepted (--max-connections); a refusal
        is counted."""
        ...

    def connection_opened(self, connection: Connection) -> None: ...

    def connection_replaced(self, old: Connection, new: Connection) -> None:
        """Detection handed the connection `old` to the handler `new`: still one connection."""
        ...

    def connection_closed(self, connection: Connection) -> None: ...

    def upstream_opened(self) -> None: ...

    def upstream_gone(self) -> None: ...

    def count_rejected(self, reason: str) -> None: ...

    def count_limit(self, limit: str) -> None:
        """A connection reached `limit` (config.Limits) and is held back or closed."""
        ...

    def count_retry(self) -> None: ...

    def server_name_seen(self, server_name: str) -> None:
        """A TLS client asked for `server_name` (SNI; "" when it named none)."""
        ...


class ConnectionOwner(Process, Protocol):
    """What a connection sees around it: the process's shared parts and its port's upstream."""

    def open_upstream(self, protocol: asyncio.Protocol, failed: ConnectFailed) -> None:
        """Connect `protocol` to the port's upstream in the background; `failed` if that
        fails."""
        ...


# Compiled by mypyc (redline/compiled.py), Handler still has subclasses written in Python
# (PassThrough, TlsPassThrough, Http2), which mypyc refuses unless the class allows them.
@mypyc_attr(allow_interpreted_subclasses=True)
class Handler(asyncio.Protocol, abc.ABC):
    """A protocol handler that is a `Connection` and can take a connection over from
    detection."""

    closed: bool

    @abc.abstractmethod
    def idle(self) -> bool: ...

    @abc.abstractmethod
    def check_timeouts(self, now: float) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def abort(self) -> None: ...

    @abc.abstractmethod
    def take_over(self, transport: asyncio.Transport, first: bytes) -> None:
        """Serve `transport` from now on: the detector already registered the connection with
        the owner, gave this handler its meter (labelled with what was detected, timed from
        the accept) and read `first`, which this forwards as if it had just arrived."""


# What the listener calls for each accepted connection of a protocol.
HandlerFactory: TypeAlias = Callable[[ConnectionOwner], asyncio.Protocol]
class HandOff(Protocol):
    """A handler's class: the listener calls it with the owner alone (the handler opens its
    own meter); detection also gives the meter it opened at the accept."""

    def __call__(self, owner: ConnectionOwner, meter: ConnectionMeter | None = None
                 ) -> Handler: ...
