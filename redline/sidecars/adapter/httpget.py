"""One HTTP GET of the app (`--scrape`, `--json-url`), bounded three ways:

- size: at most `max_bytes` of body are ever read (a Content-Length over it is refused before
  reading); an endless or huge body ends the fetch, it never grows the adapter;
- time: one deadline for the whole fetch, headers and body included. Socket timeouts bound
  each read, not the sum: a server trickling a byte a second would hold a fetch for ever, so
  a timer shuts the socket down at the deadline and the blocked read returns at once;
- stop: `close()` (on SIGTERM) shuts down every socket in use, so a fetch in a thread never
  holds the adapter's exit. Connecting is bounded by the deadline alone (the socket is not
  ours to shut down before it is connected).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
import urllib.parse

READ_SIZE = 64 * 1024


class FetchError(Exception):
    """The fetch failed: the app is down, answered an error, or broke off."""


class BodyTooLargeError(FetchError):
    """The body is over the cap: not read further, not parsed."""


class FetchTimeoutError(FetchError):
    """The deadline passed before the body was complete."""


class FetchAbortedError(FetchError):
    """The adapter is stopping."""


class _Cut:
    """A connected socket that the deadline timer or `close()` may shut down, and why."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reason: type[FetchError] | None = None
        self._lock = threading.Lock()

    def __call__(self, reason: type[FetchError]) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason
                # The plain socket's shutdown, also under TLS: it wakes a read blocked in
                # another thread, where SSLSocket.shutdown would first unwrap TLS.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(self.sock, socket.SHUT_RDWR)


class Fetcher:
    def __init__(self, timeout: float, max_bytes: int, accept: str) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.accept = accept
        self._lock = threading.Lock()
        self._open: set[_Cut] = set()
        self._closed = False

    def close(self) -> None:
        """End every fetch in progress, and refuse new ones."""
        with self._lock:
            self._closed = True
            cuts = list(self._open)
        for cut in cuts:
            cut(FetchAbortedError)

    def get(self, url: str) -> bytearray:
        """The body of a 200 answer (a bytearray: no copy of up to `max_bytes`); raises
        FetchError (or one of its kinds) otherwise."""
        deadline = time.monotonic() + self.timeout
        parts = urllib.parse.urlsplit(url)
        connection_class = (http.client.HTTPSConnection if parts.scheme == "https"
                            else http.client.HTTPConnection)
        connection = connection_class(parts.hostname or "", parts.port, timeout=self.timeout)
        try:
            try:
                connection.connect()
            except OSError as exc:
                raise FetchError(f"cannot connect: {exc}") from exc
            cut = _Cut(connection.sock)
            with self._lock:
                if self._closed:
                    raise FetchAbortedError("stopping")
                self._open.add(cut)
            timer = threading.Timer(max(0.0, deadline - time.monotonic()), cut,
                                    (FetchTimeoutError,))
            timer.daemon = True
            timer.start()
            try:
                return self._exchange(connection, parts, cut)
            except (OSError, http.client.HTTPException) as exc:
                if cut.reason is not None:
                    raise self._cut_error(cut.reason) from exc
                raise FetchError(str(exc) or type(exc).__name__) from exc
            finally:
                timer.cancel()
                with self._lock:
                    self._open.discard(cut)
        finally:
            connection.close()

    def _exchange(self, connection: http.client.HTTPConnection, parts: urllib.parse.SplitResult,
                  cut: _Cut) -> bytearray:
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        connection.request("GET", target, headers={"Accept": self.accept,
                                                   "User-Agent": "redline-adapter"})
        response = connection.getresponse()
        if response.status != 200:
            raise FetchError(f"HTTP {response.status} (expected 200; redirects are not "
                             f"followed)")
        length = response.getheader("Content-Length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            raise BodyTooLargeError(f"Content-Length {length} is over {self.max_bytes} bytes")
        body = bytearray()
        while chunk := response.read1(READ_SIZE):
            body += chunk
            if len(body) > self.max_bytes:
                raise BodyTooLargeError(f"the body is over {self.max_bytes} bytes")
        if cut.reason is not None:  # a close-delimited body cut short looks complete
            raise self._cut_error(cut.reason)
        return body

    def _cut_error(self, reason: type[FetchError]) -> FetchError:
        if reason is FetchTimeoutError:
            return FetchTimeoutError(f"not done within {self.timeout:g} s")
        return reason("stopping")
