"""The series a RED recorder's last request used, found again by comparing its key's parts.

A sidecar's requests mostly repeat the one before (method, route or peer, status): a recorder
(red.py: ServerRecorder inbound, ClientRecorder outbound) keeps the active gauge's cell and the
duration child its last request used, with the parts of their keys, and the next request finds
them by comparing those parts, not by building a label tuple and hashing it for a dict lookup.
Only a series its family admitted is kept: each use of one folded past the series cap goes
through `cell`/`child`, which count it.

The parts are typed (str, int), so that compiled each comparison is native: a key is a name,
a status, a place (the route, or the peer's address), and the scheme or the peer's port.
`by_port` says which: the server's keys hold the scheme, the client's the port (the other part
is then "" or 0 and always equal). The method, the scheme and the gauge's name part are
compared by identity: normalized methods are red._METHODS' own strings, a port's scheme and a
connection's peer address one object each; an equal string that is another object only misses,
and is then looked up. Routes are compared by value: the templater may build each anew.
"""

from __future__ import annotations

from redline.exporters.instruments import Cell, Gauge, Histogram, HistogramChild


class LastCell:
    """The active gauge's cell of the last request: keys (method, scheme) server side, (address,
    port) client side (`by_port` True)."""

    __slots__ = ("_cell", "_family", "_name", "_port", "_scheme", "by_port")

    def __init__(self, family: Gauge, by_port: bool = False) -> None:
        self._family = family
        self.by_port = by_port
        self._cell: Cell | None = None
        self._name = ""
        self._scheme = ""
        self._port = 0

    def cell(self, name: str, scheme: str, port: int) -> Cell:
        cell = self._cell
        if cell is not None and name is self._name and scheme is self._scheme \
                and port == self._port:
            return cell
        key = (name, port) if self.by_port else (name, scheme)
        cell = self._family.own_cell(key)
        if cell is None:
            return self._family.cell(key)  # created now (kept from its next use), or folded
        self._name = name
        self._scheme = scheme
        self._port = port
        self._cell = cell
        return cell


class LastChild:
    """The duration child of the last request without error_type (status 100-499): keys
    (method, status, route, scheme, "") server side, (method, status, address, port, "") client
    side (`by_port` True)."""

    __slots__ = ("_child", "_family", "_method", "_place", "_port", "_scheme", "_status",
                 "by_port")

    def __init__(self, family: Histogram, by_port: bool = False) -> None:
        self._family = family
        self.by_port = by_port
        self._child: HistogramChild | None = None
        self._method = ""
        self._status = 0
        self._place = ""
        self._scheme = ""
        self._port = 0

    def child(self, method: str, status: int, place: str, scheme: str,
              port: int) -> HistogramChild:
        child = self._child
        if (child is not None and status == self._status and method is self._method
                and place == self._place and scheme is self._scheme and port == self._port):
            return child
        key = (method, status, place, port, "") if self.by_port else \
            (method, status, place, scheme, "")
        child = self._family.own_child(key)
        if child is None:
            return self._family.child(key)  # created now (kept from its next use), or folded
        self._method = method
        self._status = status
        self._place = place
        self._scheme = scheme
        self._port = port
        self._child = child
        return child
