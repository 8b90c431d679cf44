"""The opaque relay out of the interpreter: pass-through connection pairs handed to one thread
that splices their bytes in the kernel (`_splice.c`), so a chunk costs no Python at all.

Why: relaying in asyncio costs a uvloop callback into Python and a transport.write per chunk
each way (about 1.2 us each), which kept opaque TCP below nginx's and HAProxy's throughput
(benchmarks/RESULTS.md). Once the ambassador has learned all it will of a connection (detection
done, ClientHello read, upstream connected, the first bytes written), nothing is left for Python
to do per chunk, so the pair's sockets are dup'ed out of their transports and given to the relay.
Python keeps what it owns: the TCP metrics (it reads the pair's byte counts at every sweep and
at its end), the idle timeout and drain (it asks the relay to close or abort a pair), and the
end of the connection (the relay reports it on an eventfd the asyncio loop reads).

The compiled relay is used when it was built (the hatch build hook compiles it where a C
compiler is found) unless REDLINE_KERNEL_RELAY=off; otherwise passthrough.py relays in asyncio
with the same behaviour. `describe()` says which, for `redline --version` and build info.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from typing import Protocol

from redline.exporters.red import CONNECTION_RESET, TIMEOUT

try:
    from redline.sidecars.ambassador import _splice  # type: ignore[attr-defined]
except ImportError:  # not built: no C compiler where redline was installed
    _splice = None

log = logging.getLogger("redline.ambassador")

ENV = "REDLINE_KERNEL_RELAY"  # "off": relay in asyncio even where the compiled relay is built


class Spliced(Protocol):
    """What the relay tells a handed-over connection."""

    def relay_ended(self, received: int, sent: int, error: int) -> None:
        """The pair ended: bytes read from the client and from the upstream in the relay,
        and the errno that ended it (0: both sides ended, or Python asked)."""


def compiled() -> bool:
    return _splice is not None


def describe() -> str:
    """Which relay opaque connections use in this process: "kernel" or "python"."""
    return "kernel" if _splice is not None and not _turned_off() else "python"


def _turned_off() -> bool:
    return os.environ.get(ENV, "").lower() == "off"


class KernelRelay:
    """The process's relay thread and the connections handed to it."""

    def __init__(self) -> None:
        assert _splice is not None
        self._relay = _splice.Relay()
        self._fd: int = self._relay.fileno()
        self._pairs: dict[int, Spliced] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def hand_over(self, client: asyncio.Transport, upstream: asyncio.Transport,
                  connection: Spliced) -> int | None:
        """Relay between the two transports' sockets from now on; the pair's id, or None when
        the relay cannot take them (the transports are then untouched)."""
        client_socket = client.get_extra_info("socket")
        upstream_socket = upstream.get_extra_info("socket")
        if client_socket is None or upstream_socket is None:
            return None
        # dup: the relay owns sockets of its own; closing the transports then closes their
        # descriptors only (the connections live on while any descriptor holds them).
        fds: list[int] = []
        try:
            fds.append(os.dup(client_socket.fileno()))
            fds.append(os.dup(upstream_socket.fileno()))
            pair: int = self._relay.add(fds[0], fds[1])
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            log.warning("kernel relay refused a connection; relaying it in Python",
                        extra={"error": str(exc)})
            return None
        self._listen()
        self._pairs[pair] = connection
        for transport in (client, upstream):
            transport.pause_reading()
            transport.set_protocol(_HandedOver())
            transport.close()
        return pair

    def counts(self, pair: int) -> tuple[int, int] | None:
        """Bytes read from the client and from the upstream so far; None once ended."""
        counts: tuple[int, int] | None = self._relay.counts(pair)
        return counts

    def close(self, pair: int, abort: bool) -> None:
        """Ask to end a pair: abort resets both sides; otherwise what is held is written and
        both sides closed. relay_ended follows."""
        self._relay.close(pair, abort)

    def _listen(self) -> None:
        """Read ended pairs on the running loop (a new one in tests: the old may be gone)."""
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
        loop.add_reader(self._fd, self._ended)
        self._loop = loop

    def _ended(self) -> None:
        for pair, received, sent, error in self._relay.ended():
            connection = self._pairs.pop(pair, None)
            if connection is not None:
                connection.relay_ended(received, sent, error)


class _HandedOver(asyncio.Protocol):
    """What a transport reports to once its socket was handed to the relay: nothing matters
    (closing the transport closes its descriptor only)."""


_shared: KernelRelay | None = None


def shared() -> KernelRelay | None:
    """The process's relay, started on first use; None when it is not built or turned off."""
    global _shared  # noqa: PLW0603 -- one relay thread per process, started lazily
    if _splice is None or _turned_off():
        return None
    if _shared is None:
        _shared = KernelRelay()
    return _shared


def error_type(error: int) -> str:
    """The error_type of a pair the relay ended with `error` (an errno, not 0)."""
    return TIMEOUT if error == errno.ETIMEDOUT else CONNECTION_RESET
