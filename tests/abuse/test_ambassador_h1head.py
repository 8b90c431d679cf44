"""The ambassador's C head reader (_h1head.c) under hostile heads, through real processes: the
same heads sent to an ambassador with the reader and to one with REDLINE_PURE=1 (the regexes
alone) must get the same bytes back, byte for byte, whether proxied or refused. Requests: valid
ones with random bytes (0x00-0xff) inserted, replaced or removed anywhere before the head's end,
a 64 KiB head, 1,000 header lines, one head past --max-header-bytes; responses: an app answering
with such broken heads. Neither process may log a traceback, and the compiled one must answer
/healthz and a proxied request throughout."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.abuse.test_ambassador import watching
from tests.process import wait_port
from tests.sidecars.ambassador.conftest import AmbassadorProcess

HEADS = 300  # of each kind, per ambassador
VALID_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"

# The app: reads a request head (what arrived within a second), answers and closes, so that
# every response ends at the close whatever its framing. A request for /r/N gets broken
# response head N, any other request a valid response.
APP = """
import random, socket, socketserver, sys
from tests.abuse.test_ambassador_h1head import VALID_RESPONSE, broken_response

class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(1)
        data = b""
        try:
            while b"\\r\\n\\r\\n" not in data and len(data) < 200_000:
                chunk = self.request.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        path = data.split(b" ", 2)[1] if data.count(b" ") >= 2 else b""
        if path.startswith(b"/r/") and path[3:].isdigit():
            answer = broken_response(int(path[3:]))
        else:
            answer = VALID_RESPONSE
        try:
            self.request.sendall(answer)
        except OSError:
            pass

socketserver.ThreadingTCPServer.daemon_threads = True
with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler) as server:
    print(server.server_address[1], flush=True)
    server.serve_forever()
"""


def mutate(rng: random.Random, head: bytes, edits: int) -> bytes:
    """`head` with `edits` random bytes inserted, replaced or removed (any byte value)."""
    raw = bytearray(head)
    for _ in range(edits):
        at = rng.randrange(len(raw) + 1)
        kind = rng.randrange(3)
        if kind == 0 or at == len(raw):
            raw.insert(at, rng.randrange(256))
        elif kind == 1:
            raw[at] = rng.randrange(256)
        else:
            del raw[at]
    return bytes(raw)


def broken_request(index: int) -> bytes:
    """Request `index`: a valid head without its final CRLF CRLF, broken, then ended (a head
    that never ends would only wait for --header-timeout)."""
    rng = random.Random(index)
    head = (b"GET /items/%d?q=%d HTTP/1.1\r\nHost: shop\r\nUser-Agent: curl/8.5.0\r\n"
            b"Accept: */*\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            b"\r\nConnection: close" % (index, rng.randrange(1000)))
    return mutate(rng, head, rng.randrange(1, 4)) + b"\r\n\r\n"


def broken_response(index: int) -> bytes:
    rng = random.Random(-1 - index)
    head = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 3\r\nConnection: close")
    return mutate(rng, head, rng.randrange(1, 4)) + b"\r\n\r\nok\n"


def exchange(port: int, request: bytes) -> bytes:
    """What the ambassador sends back for `request` on a new connection, up to its close."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            received += b"<no close within 5 s>"
        except ConnectionResetError:
            received += b"<reset>"
        return received


def requests() -> list[bytes]:
    big = b"X-Big: " + b"v" * 64_000
    many = b"".join(b"X-Header-%d: value %d\r\n" % (i, i) for i in range(1000))
    return [*(broken_request(i) for i in range(HEADS)),
            b"GET /big HTTP/1.1\r\nHost: shop\r\n" + big + b"\r\nConnection: close\r\n\r\n",
            b"GET /many HTTP/1.1\r\nHost: shop\r\n" + many + b"Connection: close\r\n\r\n",
            b"GET /huge HTTP/1.1\r\nHost: shop\r\nX: " + b"v" * 70_000 + b"\r\n\r\n",
            *(b"GET /r/%d HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n" % i
              for i in range(HEADS))]


@pytest.fixture(scope="module")
def app_port() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", APP], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    try:
        port = int(proc.stdout.readline())
        wait_port(port)
        yield port
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()


def test_broken_heads_get_the_same_answers_with_and_without_the_reader(app_port: int) -> None:
    pytest.importorskip("redline.sidecars.ambassador._h1head")
    # A head left valid but no longer `Connection: close` ends at the idle timeout.
    args = ("--upstream", f"127.0.0.1:{app_port}", "--protocol", "http1", "--drain-delay", "0",
            "--upstream-timeout", "5", "--idle-timeout", "0.5")
    compiled = AmbassadorProcess(*args)
    pure = AmbassadorProcess(*args, env={"REDLINE_PURE": "1"})
    try:
        for process, reads_in_c in ((compiled, True), (pure, False)):
            extensions = next(labels["extensions"] for name, labels, _ in process.samples()
                              if name == "redline_build_info")
            assert ("h1head" in extensions.split(",")) is reads_in_c
        with watching(compiled):
            answers = [exchange(compiled.port, request) for request in requests()]
        expected = [exchange(pure.port, request) for request in requests()]
        for request, answer, reference in zip(requests(), answers, expected, strict=True):
            assert answer == reference, request[:200]
        # Every outcome happened: request heads refused (400, 431) and proxied (200), broken
        # responses forwarded as they came and their connection closed.
        assert {b"HTTP/1.1 400", b"HTTP/1.1 431", b"HTTP/1.1 200"} <= \
            {answer[:12] for answer in answers}
        for process in (compiled, pure):
            assert process.value("redline_ambassador_rejected_total", reason="bad_request") > 50
            assert process.value("redline_ambassador_rejected_total", reason="bad_response") > 50
    finally:
        assert compiled.stop() == 0
        assert pure.stop() == 0
    for process in (compiled, pure):
        assert not [entry for entry in process.logs
                    if "exc" in entry or "Traceback" in str(entry.get("msg", ""))]
