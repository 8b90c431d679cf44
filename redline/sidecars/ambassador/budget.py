"""Bytes the whole process may hold for one purpose, shared by every connection.

A per-connection limit times the connection limit is too much memory for a sidecar (1,500
connections each holding 60 KB of an unfinished request head took +78 MiB), so what connections
hold while waiting for more is also bounded in total.
"""

from __future__ import annotations


class ByteBudget:
    """A total of bytes connections may hold at once; each connection takes and gives back
    its own share. Single-threaded (one event loop), so plain integers suffice."""

    __slots__ = ("held", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"expected a budget of at least 1 byte, got {limit}")
        self.limit = limit
        self.held = 0

    def change(self, delta: int) -> bool:
        """Hold `delta` more bytes (fewer if negative); False, and nothing changed, if that
        would go past the limit. Giving back always succeeds."""
        held = self.held + delta
        if delta > 0 and held > self.limit:
            return False
        self.held = held
        return True
