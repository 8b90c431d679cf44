"""The two protocol vocabularies, kept apart on purpose.

- What a port declares (`--protocol`, the flag's values): `auto`, `http1`, `h2c`, `tls`, `opaque`.
- What a connection speaks (detect.py's answers, and the `network_protocol_name` label of the
  TCP metrics, as OpenTelemetry names them): `http`, `http2`, `tls`, `opaque`.

`LABELS` is the one mapping from the first to the second; `auto` has no entry because each of
its connections is labelled with what detection found. listener.py maps both vocabularies to
handlers.
"""

from __future__ import annotations

from redline.sidecars.ambassador import detect

AUTO = "auto"
HTTP1 = "http1"
H2C = "h2c"
TLS = "tls"
OPAQUE = "opaque"
PORT_PROTOCOLS = (AUTO, HTTP1, H2C, TLS, OPAQUE)

# A declared protocol -> the label its connections get. h2c connections (prior knowledge, or
# the preface detected on an `auto` port) are relayed unchanged and observed per stream
# (http2.py); HTTP/2 inside TLS stays TLS pass-through.
LABELS: dict[str, str] = {
    HTTP1: detect.HTTP1,
    H2C: detect.HTTP2,
    TLS: detect.TLS,
    OPAQUE: detect.OPAQUE,
}
