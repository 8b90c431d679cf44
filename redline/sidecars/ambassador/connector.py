"""Connecting to the upstream: the connect timeout, TLS origination, and what a failure is.

Every protocol handler connects the same way, so this knows nothing of HTTP: it connects an
asyncio protocol and, when that fails, tells the handler an error_type and a sentence for the
client.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from redline.exporters.red import (
    CONNECT_ERROR,
    CONNECTION_REFUSED,
    CONNECTION_RESET,
    TIMEOUT,
    TLS_ERROR,
)
from redline.sidecars.ambassador.config import Upstream
from redline.sidecars.ambassador.handler import ConnectFailed

log = logging.getLogger("redline.ambassador")


class Connector:
    def __init__(self, target: Upstream, timeout: float, ca_file: str | None = None) -> None:
        self.target = target
        self.timeout = timeout
        self.ssl_context = _ssl_context(ca_file) if target.tls else None

    async def connect(self, protocol: asyncio.Protocol, failed: ConnectFailed) -> None:
        loop = asyncio.get_running_loop()
        target = self.target
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: protocol, target.host, target.port, ssl=self.ssl_context,
                    server_hostname=target.host if self.ssl_context else None),
                self.timeout)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            error, detail = connect_error(exc)
            log.warning("upstream connect failed", extra={"error": error, "detail": detail})
            failed(error, detail)


def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    context.set_alpn_protocols(["http/1.1"])
    return context


def connect_error(exc: BaseException) -> tuple[str, str]:
    """Classify a failed upstream connect as an error_type and a human detail."""
    if isinstance(exc, TimeoutError):
        return TIMEOUT, "connecting to the upstream timed out"
    if isinstance(exc, ConnectionRefusedError):
        return CONNECTION_REFUSED, "the upstream refused the connection"
    if isinstance(exc, ConnectionResetError):
        return CONNECTION_RESET, "the upstream reset the connection"
    if isinstance(exc, ssl.SSLError):
        return TLS_ERROR, f"TLS with the upstream failed: {exc}"
    return CONNECT_ERROR, f"cannot connect to the upstream: {exc}"
