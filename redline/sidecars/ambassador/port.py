"""One fronted port: its listener, its declared protocol and its upstream, and the
`ConnectionOwner` its connections see. What all ports share (observation, limits, metrics,
drain) stays with the process; a port adds only where its connections' bytes go."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine

from redline.exporters.tcp import TcpRecorder
from redline.sidecars.ambassador.config import Limits, PortConfig
from redline.sidecars.ambassador.connector import Connector
from redline.sidecars.ambassador.handler import ConnectFailed, Connection, Process
from redline.sidecars.ambassador.listener import Listener
from redline.sidecars.ambassador.observe import Observer

Spawn = Callable[[Coroutine[object, object, None]], None]


class Port:
    def __init__(self, config: PortConfig, process: Process, connector: Connector,
                 spawn: Spawn) -> None:
        self.config = config
        self.process = process
        self.connector = connector
        self.spawn = spawn
        # Plain attributes, not properties: connections read them on the hot path.
        self.observer: Observer = process.observer
        self.limits: Limits = process.limits
        self.tcp: TcpRecorder = process.tcp
        self.shutting_down = False  # the process sets it on every port when draining
        self.listener = Listener(config.listen, config.protocol, self)

    async def start(self) -> int:
        return await self.listener.start()

    def close(self) -> None:
        self.listener.close()

    # --- ConnectionOwner ---------------------------------------------------------------------

    def open_upstream(self, protocol: asyncio.Protocol, failed: ConnectFailed) -> None:
        self.spawn(self.connector.connect(protocol, failed))

    def admits_connection(self) -> bool:
        return self.process.admits_connection()

    def connection_opened(self, connection: Connection) -> None:
        self.process.connection_opened(connection)

    def connection_replaced(self, old: Connection, new: Connection) -> None:
        self.process.connection_replaced(old, new)

    def connection_closed(self, connection: Connection) -> None:
        self.process.connection_closed(connection)

    def upstream_opened(self) -> None:
        self.process.upstream_opened()

    def upstream_gone(self) -> None:
        self.process.upstream_gone()

    def count_rejected(self, reason: str) -> None:
        self.process.count_rejected(reason)

    def count_limit(self, limit: str) -> None:
        self.process.count_limit(limit)

    def count_retry(self) -> None:
        self.process.count_retry()

    def server_name_seen(self, server_name: str) -> None:
        self.process.server_name_seen(server_name)
