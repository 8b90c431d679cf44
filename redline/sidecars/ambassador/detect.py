"""Which protocol a client speaks, from its first bytes (sans IO), as Linkerd detects it.

`detect(data)` is called with everything the client has sent so far and answers one of
HTTP1, HTTP2, TLS or OPAQUE, or None while the bytes could still become more than one of them.
The caller gives up waiting after the detection timeout and treats the connection as opaque
(a server-speaks-first protocol such as MySQL, SMTP or SSH sends nothing first).

The rule that never breaks an app: only bytes that are certainly HTTP are parsed as HTTP;
everything else is forwarded unchanged. A Redis inline command (`GET key\\r\\n`) looks like the
start of a request line, so a line is HTTP/1 only once its `HTTP/1.x` version is seen.

For TLS, `client_hello(data)` reads the server name (SNI) and the ALPN protocols of the
ClientHello for labels, without terminating anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HTTP1 = "http"
HTTP2 = "http2"
TLS = "tls"
OPAQUE = "opaque"

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# A request line: method token, target, version. RFC 9112 3; tokens are tchar (RFC 9110 5.6.2).
_REQUEST_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^\x00-\x20\x7f]+ HTTP/1\.[01]\r?\n")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")
_VISIBLE = re.compile(rb"[^\x00-\x20\x7f]*")
# How long a request line may get before the bytes are taken for something else. Longer lines
# exist (huge query strings), but HTTP/1 servers commonly refuse lines over 8 KiB as well.
MAX_REQUEST_LINE = 8192
TLS_HANDSHAKE = 0x16
TLS_CLIENT_HELLO = 0x01
MAX_TLS_RECORD = 16384 + 2048  # a TLSPlaintext record (RFC 8446 5.1) with margin


def detect(data: bytes) -> str | None:
    """The protocol of a connection whose client sent `data` first; None: not known yet."""
    if not data:
        return None
    if data[0] == TLS_HANDSHAKE:
        return _detect_tls(data)
    preface = _h2_preface(data)
    if preface is not False:
        return HTTP2 if preface else None
    return _detect_http1(data)


def detect_http(data: bytes) -> str | None:
    """What an app speaks to an outbound port, which carries its HTTP calls only: HTTP2 from
    the prior-knowledge preface, HTTP1 from anything else (bytes that are not HTTP/1 are then
    answered 400 by the HTTP/1 handler, as on an `http1` port); None while `data` may still
    become the preface."""
    preface = _h2_preface(data)
    if preface is not False:
        return HTTP2 if preface else None
    return HTTP1


def _h2_preface(data: bytes) -> bool | None:
    """True: `data` starts with the whole HTTP/2 preface; None: it is the start of one;
    False: it is not."""
    if data[:24] != H2_PREFACE[:len(data)]:
        return False
    return True if len(data) >= len(H2_PREFACE) else None


def _detect_tls(data: bytes) -> str | None:
    # record header: type 22, legacy version 3.x, length; then handshake type 1 (ClientHello).
    if len(data) < 6:
        return None if _tls_prefix_ok(data) else OPAQUE
    return TLS if _tls_prefix_ok(data) and data[5] == TLS_CLIENT_HELLO else OPAQUE


def _tls_prefix_ok(data: bytes) -> bool:
    if len(data) >= 2 and data[1] != 3:
        return False
    if len(data) >= 3 and data[2] > 4:
        return False
    if len(data) >= 5:
        length = int.from_bytes(data[3:5], "big")
        return 4 <= length <= MAX_TLS_RECORD
    return True


def _detect_http1(data: bytes) -> str | None:
    line_end = data.find(b"\n")
    if line_end >= 0:
        return HTTP1 if _REQUEST_LINE.fullmatch(data, 0, line_end + 1) else OPAQUE
    if len(data) > MAX_REQUEST_LINE or not _may_become_request_line(data):
        return OPAQUE
    return None


def _may_become_request_line(data: bytes) -> bool:
    """Could more bytes make this a request line? A method token (at most 32 bytes: methods
    are short), a target without controls, the start of `HTTP/1.0` or `HTTP/1.1`."""
    complete = data.endswith(b"\r")
    parts = data.removesuffix(b"\r").split(b" ")
    if b"\r" in data[:-1] or len(parts) > 3 or not _TOKEN.fullmatch(parts[0]):
        return False
    if len(parts) >= 2 and not _VISIBLE.fullmatch(parts[1]):
        return False
    if len(parts) < 3:
        return not complete
    version = parts[2]
    if not parts[1] or (complete and len(version) < 8):
        return False
    return b"HTTP/1.1".startswith(version) or b"HTTP/1.0".startswith(version)


# --- TLS ClientHello ---------------------------------------------------------------------


@dataclass(frozen=True)
class ClientHello:
    server_name: str  # SNI; "" when the client sent none
    alpn: tuple[str, ...]  # the protocols offered, in the client's order


class _Reader:
    """Bounds-checked reads over a ClientHello; any overrun raises ValueError."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def take(self, count: int) -> bytes:
        if self.pos + count > self.end:
            raise ValueError("truncated")
        chunk = self.data[self.pos:self.pos + count]
        self.pos += count
        return chunk

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> _Reader:
        """A length-prefixed part, as a reader of its own; this one skips past it."""
        length = self.number(length_size)
        inner = _Reader(self.data, self.pos, self.pos + length)
        self.take(length)
        return inner

    def done(self) -> bool:
        return self.pos >= self.end


def client_hello(data: bytes) -> ClientHello | None:
    """SNI and ALPN of the ClientHello at the start of `data` (TLS records), or None while the
    first record is incomplete. Raises ValueError when the bytes are not a ClientHello.
    Only the first record is read: a ClientHello split over records (rare, e.g. very large
    post-quantum key shares) keeps what the first one holds."""
    if len(data) < 5:
        return None
    length = int.from_bytes(data[3:5], "big")
    if data[0] != TLS_HANDSHAKE or length > MAX_TLS_RECORD:
        raise ValueError("not a TLS handshake record")
    if len(data) < 5 + length:
        return None
    record = _Reader(data, 5, 5 + length)
    if record.number(1) != TLS_CLIENT_HELLO:
        raise ValueError("not a ClientHello")
    declared = record.number(3)
    body = _Reader(data, record.pos, min(record.pos + declared, record.end))
    body.take(2 + 32)  # legacy_version, random
    body.vector(1)  # legacy_session_id
    body.vector(2)  # cipher_suites
    body.vector(1)  # legacy_compression_methods
    server_name = ""
    alpn: tuple[str, ...] = ()
    if body.done():
        return ClientHello(server_name, alpn)
    extensions = body.vector(2)
    while not extensions.done():
        kind = extensions.number(2)
        extension = extensions.vector(2)
        if kind == 0:  # server_name (RFC 6066 3)
            names = extension.vector(2)
            while not names.done():
                name_type = names.number(1)
                name = names.vector(2)
                if name_type == 0:
                    server_name = name.take(name.end - name.pos).decode("ascii", "replace")
        elif kind == 16:  # application_layer_protocol_negotiation (RFC 7301 3.1)
            protocols = extension.vector(2)
            offered = []
            while not protocols.done():
                protocol = protocols.vector(1)
                offered.append(protocol.take(protocol.end - protocol.pos).decode("ascii",
                                                                                "replace"))
            alpn = tuple(offered)
    return ClientHello(server_name, alpn)
