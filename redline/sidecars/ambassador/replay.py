"""Sending requests again after the keep-alive race, as nginx and Envoy do.

When an upstream connection that had already answered (a keep-alive one) closes before sending
a byte of the next response, the app most likely closed it as idle while the request was on its
way (Node's 5 s keep-alive timeout is the classic). If every request in flight is idempotent and
what was sent for them is still at hand, it is sent again on a new connection, once: the new
connection has not answered yet, so its own failure is final.
"""

from __future__ import annotations

from typing import Final

# Final: compiled, a C static, not a lookup in the module's dict per request.
IDEMPOTENT: Final = frozenset((b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"))


class Replay:
    """What was sent upstream for the requests in flight, while they may be sent again.

    `chunks` is None once they may not: a request that is not idempotent or asks for an upgrade
    (raw bytes are never replayed), more than `limit` bytes, or a response that finished while
    others were in flight (the bytes of the next requests are not told apart). It starts afresh
    whenever nothing is in flight.
    """

    __slots__ = ("chunks", "limit", "mark", "size")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list[bytes] | None = []
        self.size = 0
        # The upstream connection's byte count when nothing was in flight: if it is unchanged
        # at its close, not a byte of the next response arrived.
        self.mark = 0

    def record(self, data: bytes) -> None:
        chunks = self.chunks
        if chunks is not None:
            self.size += len(data)
            if self.size > self.limit:
                self.chunks = None
            else:
                chunks.append(data)

    def forbid(self) -> None:
        self.chunks = None

    def restart(self, mark: int) -> None:
        """Nothing is in flight; `mark` is the upstream connection's byte count now."""
        chunks = self.chunks
        if chunks is None:
            self.chunks = []
        else:
            chunks.clear()
        self.size = 0
        self.mark = mark

    def take(self, answered: bool, bytes_in: int) -> list[bytes] | None:
        """What to send again now that the upstream connection closed, or None if it may not
        be: it must have answered before and sent nothing since the mark."""
        chunks = self.chunks
        if not chunks or not answered or bytes_in != self.mark:
            return None
        self.chunks, self.size, self.mark = [], 0, 0
        return chunks
