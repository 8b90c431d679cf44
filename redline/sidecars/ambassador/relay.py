"""The opaque relay out of the interpreter: pass-through connection pairs handed to one native
thread (`_splice.c`) that moves their bytes itself, so a chunk costs no Python at all.

Why: relaying in asyncio costs a uvloop callback into Python and a transport.write per chunk
each way (about 1.2 us each), which kept opaque TCP below nginx's and HAProxy's throughput
(benchmarks/RESULTS.md). Once the ambassador has learned all it will of a connection (detection
done, ClientHello read, upstream connected, the first bytes written), nothing is left for Python
to do per chunk, so the pair's sockets are dup'ed out of their transports and given to the relay.
Python keeps what it owns: the TCP metrics (it reads the pair's byte counts at every sweep and
at its end), the idle timeout and drain (it asks the relay to close or abort a pair), and the
end of the connection (the relay reports it on an eventfd the asyncio loop reads).

The relay moves bytes with recv/send through a 16 KiB buffer per direction (`copy`, the
default: what nginx and HAProxy do) or with splice(2) through a pipe per direction (`splice`:
no copy, but more system time per small chunk; see RESULTS.md). REDLINE_NATIVE_RELAY chooses:
`copy`, `splice`, or `off` (relay in asyncio, passthrough.py, as where the extension is not
built). `describe()` says which, for the tests and the benchmarks.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
from typing import Protocol

from redline.exporters.red import CONNECTION_RESET, TIMEOUT

try:
    from redline.sidecars.ambassador import _splice  # type: ignore[attr-defined]
except ImportError:  # not built: no C compiler where redline was installed
    _splice = None

log = logging.getLogger("redline.ambassador")

ENV = "REDLINE_NATIVE_RELAY"
COPY, SPLICE, OFF = "copy", "splice", "off"  # its values
DEFAULT = COPY


class Spliced(Protocol):
    """What the relay tells a handed-over connection."""

    def relay_ended(self, received: int, sent: int, error: int) -> None:
        """The pair ended: bytes read from the client and from the upstream in the relay,
        and the errno that ended it (0: both sides ended, or Python asked)."""


def compiled() -> bool:
    return _splice is not None


def describe() -> str:
    """How opaque connections are relayed in this process: "copy", "splice" or "python"."""
    mode = _mode()
    return "python" if mode == OFF else mode


def _mode() -> str:
    """The relay REDLINE_NATIVE_RELAY asks for, OFF where it is not built."""
    return OFF if _splice is None else _parse(os.environ.get(ENV, ""))


@functools.cache  # read at every hand-over; a bad value is logged once
def _parse(value: str) -> str:
    mode = value.lower() or DEFAULT
    if mode in (COPY, SPLICE, OFF):
        return mode
    log.warning("unknown relay, using the default",
                extra={"variable": ENV, "value": value, "expected": f"{COPY}, {SPLICE} or {OFF}",
                       "default": DEFAULT})
    return DEFAULT


class NativeRelay:
    """A relay thread and the connections handed to it."""

    def __init__(self, mode: str) -> None:
        assert _splice is not None
        self._relay = _splice.Relay(splice=mode == SPLICE)
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
            log.warning("the native relay refused a connection; relaying it in Python",
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


_relays: dict[str, NativeRelay] = {}  # by mode: one thread per process (tests switch modes)


def shared() -> NativeRelay | None:
    """The process's relay, started on first use; None when it is not built or turned off."""
    mode = _mode()
    if mode == OFF:
        return None
    if mode not in _relays:
        _relays[mode] = NativeRelay(mode)
    return _relays[mode]


def error_type(error: int) -> str:
    """The error_type of a pair the relay ended with `error` (an errno, not 0)."""
    return TIMEOUT if error == errno.ETIMEDOUT else CONNECTION_RESET
