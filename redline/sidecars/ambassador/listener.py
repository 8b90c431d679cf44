"""The listener: accepts connections on one port and gives each to its protocol's handler.

The port's protocol picks the handler (Envoy's listener -> network filter chain). HTTP/1 is the
only one today; another protocol is another entry in HANDLERS, and detecting the protocol from
the first bytes would be a handler that reads them and hands the connection on.
"""

from __future__ import annotations

import asyncio

from redline.sidecars.ambassador.handler import ConnectionOwner, HandlerFactory
from redline.sidecars.ambassador.http1_client import ClientSide

HTTP1 = "http1"
HANDLERS: dict[str, HandlerFactory] = {HTTP1: ClientSide}


class Listener:
    def __init__(self, address: tuple[str, int], protocol: str, owner: ConnectionOwner) -> None:
        try:
            self.handler = HANDLERS[protocol]
        except KeyError:
            raise ValueError(f"protocol: expected one of {', '.join(sorted(HANDLERS))}, "
                             f"got {protocol!r}") from None
        self.address = address
        self.protocol = protocol
        self.owner = owner
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen; the port listened on (the system's choice for port 0)."""
        loop = asyncio.get_running_loop()
        handler, owner = self.handler, self.owner
        host, port = self.address
        self._server = await loop.create_server(
            lambda: handler(owner), host, port, reuse_address=True, backlog=2048)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def close(self) -> None:
        """Stop accepting; connections already accepted go on."""
        if self._server is not None:
            self._server.close()
