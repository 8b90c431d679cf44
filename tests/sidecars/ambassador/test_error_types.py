"""Each way a request can fail without a usable response has its own error_type label, so a
dashboard tells a certificate problem from a dead app; only what nobody foresaw is `_OTHER`."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest

from redline.exporters.exposition import new_registry
from redline.exporters.red import ServerRecorder, error_type
from redline.exporters.routes import RouteTemplater
from redline.sidecars.ambassador.connector import connect_error
from redline.sidecars.ambassador.observe import InboundObserver
from tests.sidecars.ambassador.pair import FakeOwner, Pair


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError(), "timeout"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "connection_refused"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), "connection_reset"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "tls_error"),
        (ssl.SSLError(1, "wrong version number"), "tls_error"),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "connect_error"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "connect_error"),
    ],
)
def test_a_failed_connect_is_labelled_by_its_cause(exc: OSError, expected: str) -> None:
    error, detail = connect_error(exc)
    assert error == expected and detail
    assert error_type(502, error) == expected  # the label the recorders write


def test_an_error_nobody_named_is_other() -> None:
    assert error_type(502, "tls_handshake") == "_OTHER"
    assert error_type(None, "something_new") == "_OTHER"


@pytest.mark.parametrize(
    "response",
    [b"SSH-2.0-OpenSSH_9.6\r\n\r\n", b"\x00\x00\x12\x04\x00\x00\x00\x00\x00\r\n\r\n"],
    ids=["ssh-banner", "http2-settings"],
)
def test_an_unparsable_response_is_recorded_as_invalid_response(response: bytes) -> None:
    """An app that answers in another protocol: no status reached the client."""
    routes = RouteTemplater()
    recorder = ServerRecorder("shop", routes=routes)
    registry = new_registry("test", recorder.collector())
    pair = Pair(FakeOwner(observer=InboundObserver(recorder, routes)))
    pair.client.data_received(b"GET /users/7 HTTP/1.1\r\nHost: t\r\n\r\n")
    upstream, _ = pair.connect()
    upstream.data_received(response)
    assert registry.get_sample_value("http_server_request_duration_seconds_count", {
        "service_name": "shop", "http_request_method": "GET", "http_response_status_code": "",
        "http_route": "/users/{id}", "url_scheme": "http", "error_type": "invalid_response"}) == 1
