"""What a protocol handler's connections and the process that owns them need from each other.

A handler is the asyncio protocol the listener gives an accepted connection (HTTP/1 today:
`ClientSide`). It reaches the rest of the ambassador only through `ConnectionOwner`, and the
owner (drain, the timeout sweeper) reaches it only through `Connection`, so a new protocol is a
new handler written against these two, touching neither the owner nor the other handlers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, TypeAlias

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


class ConnectionOwner(Protocol):
    """The process around a connection: observation, limits, upstream connects, self metrics."""

    @property
    def observer(self) -> Observer: ...

    @property
    def limits(self) -> Limits: ...

    @property
    def shutting_down(self) -> bool:
        """Draining has closed the listener: idle connections should close."""
        ...

    def connection_opened(self, connection: Connection) -> None: ...

    def connection_closed(self, connection: Connection) -> None: ...

    def open_upstream(self, protocol: asyncio.Protocol, failed: ConnectFailed) -> None:
        """Connect `protocol` to the upstream in the background; `failed` if that fails."""
        ...

    def upstream_opened(self) -> None: ...

    def upstream_gone(self) -> None: ...

    def count_rejected(self, reason: str) -> None: ...

    def count_retry(self) -> None: ...


# What the listener calls for each accepted connection of a protocol.
HandlerFactory: TypeAlias = Callable[[ConnectionOwner], asyncio.Protocol]
