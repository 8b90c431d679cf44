"""Connecting to the upstream: the connect timeout, TLS origination, and what a failure is.

Every protocol handler connects the same way, so this knows nothing of HTTP: it connects an
asyncio protocol and, when that fails, tells the handler an error_type and a sentence for the
client. The one thing a protocol says about itself is the ALPN protocol it needs offered when
TLS is originated (`alpn`, a class attribute): `h2` for HTTP/2 (http2.py), `http/1.1`
otherwise. One context per ALPN list, made once.
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


# How long closing a TLS connection waits for the dependency's close_notify: grpcio's server
# never sent one, so each outbound h2 connection the app closed held its upstream connection
# for the loop's default 30 s.
TLS_SHUTDOWN_TIMEOUT = 5.0
HTTP1_ALPN = ("http/1.1",)
H2_ALPN = ("h2",)


class Connector:
    def __init__(self, target: Upstream, timeout: float, ca_file: str | None = None) -> None:
        self.target = target
        self.timeout = timeout
        self.ca_file = ca_file
        self._contexts: dict[tuple[str, ...], ssl.SSLContext] = {}
        if target.tls:  # made now: a bad CA file fails at start-up, not at a connection
            self.context(HTTP1_ALPN)

    def context(self, alpn: tuple[str, ...]) -> ssl.SSLContext:
        context = self._contexts.get(alpn)
        if context is None:
            context = self._contexts[alpn] = _ssl_context(self.ca_file, alpn)
        return context

    async def connect(self, protocol: asyncio.Protocol, failed: ConnectFailed) -> None:
        loop = asyncio.get_running_loop()
        target = self.target
        try:
            if target.tls:
                connecting = loop.create_connection(
                    lambda: protocol, target.host, target.port,
                    ssl=self.context(getattr(protocol, "alpn", HTTP1_ALPN)),
                    server_hostname=target.host, ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT)
            else:
                connecting = loop.create_connection(lambda: protocol, target.host, target.port)
            await asyncio.wait_for(connecting, self.timeout)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            error, detail = connect_error(exc)
            log.warning("upstream connect failed", extra={"error": error, "detail": detail})
            failed(error, detail)


def _ssl_context(ca_file: str | None, alpn: tuple[str, ...]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    context.set_alpn_protocols(list(alpn))
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
