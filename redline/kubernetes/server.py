"""The webhook's HTTPS server: cheroot, one process with a pool of threads.

Why cheroot (and not gunicorn, the other production WSGI server with TLS on the package index):
- It takes a ready `ssl.SSLContext`, so the certificate keeps following its files through
  tls_reload's ReloadingContext (its SNI callback hands every handshake the current context).
  gunicorn builds its own context from file names in each worker process, after a fork that
  the reload thread would not survive.
- One process, threads, nothing written to disk: it runs as non-root on a read-only root
  filesystem as it is (gunicorn adds an arbiter process and a heartbeat file in a writable
  temporary directory).
- Its timeouts are per socket operation, and it logs through a method we route to redline's
  JSON logs; SIGTERM is handled here and ends in exit 0 once in-flight requests are answered.

One change to how cheroot uses TLS: its builtin adapter does the handshake in the one thread
that accepts connections, so a client that connects and never sends a ClientHello would hold up
every new connection until it timed out. Here a socket is wrapped without a handshake and the
worker thread that serves it shakes hands, bounded by `handshake_timeout`: a silent client
holds one thread, for that long.
"""

from __future__ import annotations

import io
import logging
import socket
import ssl
import sys
import threading
from typing import Any

from cheroot.makefile import MakeFile
from cheroot.server import HTTPConnection, HTTPRequest
from cheroot.ssl import Adapter
from cheroot.wsgi import Server

from redline.config import ConfigError
from redline.kubernetes.settings import ServerSettings
from redline.kubernetes.webhook import WebhookMetrics
from redline.signals import stop_flag, wait_for_stop

log = logging.getLogger("redline.webhook")

# A peer that closes before or during the handshake: port checks (kubelet's TCP probes, load
# balancers, `wait_port`) do it all the time; not worth a warning.
_QUIET = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError)


class _TLSAdapter(Adapter):
    """Wraps an accepted socket in TLS without shaking hands (see the module's doc)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(None, None)
        self.context = context

    def bind(self, sock: socket.socket) -> socket.socket:
        return sock

    def wrap(self, sock: socket.socket) -> tuple[ssl.SSLSocket, dict[str, str]]:
        tls = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return tls, self.get_environ()

    def get_environ(self) -> dict[str, str]:
        return {"wsgi.url_scheme": "https", "HTTPS": "on"}

    def makefile(self, sock: ssl.SSLSocket, mode: str = "r",
                 bufsize: int = io.DEFAULT_BUFFER_SIZE) -> Any:
        return MakeFile(sock, mode, bufsize)


class _Request(HTTPRequest):
    """Closes the connection when the app's answer says `Connection: close`. cheroot keeps it
    open otherwise, and first reads what is left of the request body: all 60 MiB of a body the
    app refused unread (413), or a chunked body's bytes taken for the next request."""

    def send_headers(self) -> None:
        if any(name.lower() == b"connection" and value.lower() == b"close"
               for name, value in self.outheaders):
            self.close_connection = True
        super().send_headers()


class _TLSConnection(HTTPConnection):
    """Shakes hands in the worker thread before cheroot reads the first request."""

    RequestHandlerClass = _Request
    handshaken = False

    def communicate(self) -> bool:
        if not self.handshaken:
            self.handshaken = self._handshake()
            if not self.handshaken:
                return False  # cheroot closes the connection
        keep_open: bool = super().communicate()  # type: ignore[no-untyped-call]
        return keep_open

    def _handshake(self) -> bool:
        sock: ssl.SSLSocket = self.socket
        sock.settimeout(self.server.handshake_timeout)
        try:
            sock.do_handshake()
        except OSError as exc:  # timeouts, TLS alerts, plain HTTP, resets
            self.server.metrics.rejected("handshake")
            log.log(logging.DEBUG if isinstance(exc, _QUIET) else logging.WARNING,
                    "TLS handshake failed", extra={
                        "peer": f"{self.remote_addr}:{self.remote_port}",
                        "error": str(exc) or type(exc).__name__})
            return False
        sock.settimeout(self.server.timeout)
        return True


class _Server(Server):
    ConnectionClass = _TLSConnection

    def __init__(self, app: Any, context: ssl.SSLContext, settings: ServerSettings,
                 metrics: WebhookMetrics) -> None:
        super().__init__(settings.listen, app, numthreads=settings.threads)
        self.metrics = metrics
        self.ssl_adapter = _TLSAdapter(context)
        self.handshake_timeout = settings.handshake_timeout
        self.timeout = settings.request_timeout
        self.shutdown_timeout = settings.drain_timeout
        # The body limit is the app's (Flask's MAX_CONTENT_LENGTH, counted there; the body is
        # a stream, never buffered before it): cheroot's own 413 would not be counted.
        self.max_request_header_size = 64 * 1024

    def error_log(self, msg: str = "", level: int = logging.INFO,
                  traceback: bool = False) -> None:
        """cheroot's own messages, in redline's logs instead of raw on stderr."""
        exc_info = traceback and sys.exc_info()[0] is not None
        log.log(level, str(msg), exc_info=exc_info)


def serve(app: Any, context: ssl.SSLContext, settings: ServerSettings,
          metrics: WebhookMetrics) -> int:
    """Serve the WSGI `app` over TLS until SIGTERM or SIGINT; 0 once drained."""
    server = _Server(app, context, settings, metrics)
    try:
        server.prepare()
    except OSError as exc:
        host, port = settings.listen
        raise ConfigError(f"--listen: cannot listen on {host}:{port}: {exc}") from exc
    # Signals are caught before "listening" is logged: whoever waits for that line may send
    # SIGTERM at once.
    stop = stop_flag()  # set by SIGTERM/SIGINT, or below when the server ends by itself
    host, port = server.bind_addr[:2]
    log.info("webhook listening", extra={
        "listen": f"[{host}]:{port}" if ":" in host else f"{host}:{port}", "port": port})
    ended = threading.Event()

    def run() -> None:
        try:
            server.serve()
        finally:
            ended.set()
            stop.set()

    thread = threading.Thread(target=run, name="webhook-serve")
    thread.start()
    wait_for_stop(stop)  # not stop.wait(): SIGTERM may reach the server's thread
    # The server only returns before server.stop() if it failed.
    failed = ended.is_set()
    log.info("webhook stopping", extra={"drain_timeout": settings.drain_timeout})
    server.stop()  # stops accepting, lets in-flight requests finish (drain_timeout)
    thread.join(settings.drain_timeout + 1)
    if failed:
        log.error("webhook server stopped unexpectedly")
        return 1
    log.info("webhook stopped")
    return 0
