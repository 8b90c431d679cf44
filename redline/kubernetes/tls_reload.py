"""A TLS server context that follows its certificate files: cert-manager renews the webhook's
certificate in place (the Secret volume's files change), and the webhook must serve the new one
without a restart.

Each new handshake is handed the latest loaded context by the SNI callback (called for every
ClientHello, with or without a server name). A poll thread loads the files when their
(inode, mtime, size) changes; a pair that fails to load (half-written during a swap) keeps the
old context serving and is tried again at the next change.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time

log = logging.getLogger("redline.tls")


def server_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class ReloadingContext:
    def __init__(self, cert: str, key: str, interval: float) -> None:
        self.cert, self.key, self.interval = cert, key, interval
        # The listener's context; a reload replaces `current`, which handshakes then use.
        self.context = self.current = server_context(cert, key)
        self.context.sni_callback = self._select
        self.seen = self._stamp()

    def _stamp(self) -> tuple[tuple[int, int, int], ...]:
        stamps = []
        for path in (self.cert, self.key):
            try:
                st = os.stat(path)  # follows the Secret volume's ..data symlink
                stamps.append((st.st_ino, st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append((0, 0, 0))
        return tuple(stamps)

    def _select(self, sock: ssl.SSLObject | ssl.SSLSocket, _name: str | None,
                _context: ssl.SSLContext) -> None:
        sock.context = self.current

    def check(self) -> bool:
        """Load the files if they changed; True when a new certificate is served."""
        stamp = self._stamp()
        if stamp == self.seen:
            return False
        try:
            self.current = server_context(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            log.warning("cannot load the changed certificate; still serving the previous one",
                        extra={"cert": self.cert, "error": str(exc)})
            return False
        self.seen = stamp
        log.info("certificate reloaded", extra={"cert": self.cert})
        return True

    def start(self) -> None:
        """Poll for changes for as long as the process lives (a daemon thread)."""
        threading.Thread(target=self._poll, name="tls-reload", daemon=True).start()

    def _poll(self) -> None:
        while True:
            time.sleep(self.interval)
            self.check()
