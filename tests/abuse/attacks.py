"""Attacks on the ambassador, each run as a process of its own so that probes time the
ambassador and not the test's GIL; also runnable by hand to measure a change:

    .venv/bin/python -m tests.abuse.attacks tiny-chunks PORT [--mib 13] [--seconds 10]
    .venv/bin/python -m tests.abuse.attacks held-heads PORT [--connections 1000] [--kib 60]
    .venv/bin/python -m tests.abuse.attacks random-paths PORT [--paths 3000]
    .venv/bin/python -m tests.abuse.attacks smuggling PORT [--rounds 20]
    .venv/bin/python -m tests.abuse.attacks label-sets PORT [--methods 5]
    .venv/bin/python -m tests.abuse.attacks scrapes URL [--loops 2] [--seconds 3] [--openmetrics]

Each prints one JSON line of what it did and what it got back, and is bounded in time and in
bytes sent.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import socket
import string
import threading
import time
import urllib.request

TINY_CHUNK = b"1\r\nx\r\n"
TINY_HEAD = b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


def tiny_chunks(port: int, mib: float, seconds: float) -> dict[str, object]:
    """Request bodies of 1-byte chunks, `mib` MiB of them on the wire in all, a new connection
    whenever the ambassador closes one, until sent or `seconds` passed."""
    batch = TINY_CHUNK * (65536 // len(TINY_CHUNK))
    budget = int(mib * 1024 * 1024)
    deadline = time.monotonic() + seconds
    sent = connections = 0
    answers: list[str] = []
    while sent < budget and time.monotonic() < deadline:
        connections += 1
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            try:
                sock.sendall(TINY_HEAD)
                while sent < budget and time.monotonic() < deadline:
                    sock.sendall(batch)
                    sent += len(batch)
            except OSError:
                pass  # the ambassador refused the body and closed: what is measured
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
                answers.append(_first_line(sock))
    return {"attack": "tiny-chunks", "connections": connections, "sent_bytes": sent,
            "answers": sorted(set(answers))}


def held_heads(port: int, connections: int, kib: int, seconds: float) -> dict[str, object]:
    """`connections` connections each sending `kib` KiB of a request head that never ends,
    held open for `seconds`; returns what each was answered (431/503 or nothing yet)."""
    part = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"a" * (kib * 1024)
    socks: list[socket.socket] = []
    refused = 0
    try:
        for _ in range(connections):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                refused += 1
                continue
            socks.append(sock)
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError, OSError):
                sock.send(part)
            # Paced as the attack (1,500 connections in 1.1 s): the point is the
            # memory held, not taking a small machine's CPU from the ambassador.
            time.sleep(0.001)
        print(json.dumps({"attack": "held-heads", "holding": len(socks)}), flush=True)
        time.sleep(seconds)
        answers: dict[str, int] = {}
        for sock in socks:
            sock.settimeout(0.05)
            answer = _first_line(sock) or "(none)"
            answers[answer] = answers.get(answer, 0) + 1
    finally:
        for sock in socks:
            sock.close()
    return {"attack": "held-heads", "connections": len(socks), "not_accepted": refused,
            "answers": answers}


def random_paths(port: int, paths: int, seconds: float) -> dict[str, object]:
    """`paths` GETs of random one-off paths (letters only: the heuristic keeps them as they
    are), pipelined 100 at a time on one connection, each batch's answers read before the
    next; returns how many were answered 200."""
    rng = random.Random(17)
    deadline = time.monotonic() + seconds
    answered = 0
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for start in range(0, paths, 100):
            if time.monotonic() > deadline:
                break
            batch = min(100, paths - start)
            sock.sendall(b"".join(
                b"GET /%s HTTP/1.1\r\nHost: a\r\n\r\n"
                % "".join(rng.choices(string.ascii_lowercase, k=12)).encode()
                for _ in range(batch)))
            received = b""
            while received.count(b"HTTP/1.1 ") < batch and time.monotonic() < deadline:
                data = sock.recv(65536)
                if not data:
                    break
                received += data
            answered += received.count(b"HTTP/1.1 200 ")
    return {"attack": "random-paths", "sent": paths, "answered_200": answered}


LABEL_METHODS = (b"GET", b"POST", b"PUT", b"DELETE", b"PATCH")
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def label_sets(port: int, methods: int, seconds: float) -> dict[str, object]:
    """One request per (method, status) pair, statuses 200-599 answered by the app's
    /status/N (one route): `methods` x 400 distinct label sets of the duration histogram,
    pipelined 100 at a time as random_paths does; returns how many were answered."""
    requests = [b"%s /status/%d HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
                % (method, status)
                for method in LABEL_METHODS[:methods] for status in range(200, 600)]
    deadline = time.monotonic() + seconds
    answered = 0
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for start in range(0, len(requests), 100):
            batch = requests[start:start + 100]
            sock.sendall(b"".join(batch))
            received = b""
            while received.count(b"HTTP/1.1 ") < len(batch) and time.monotonic() < deadline:
                data = sock.recv(65536)
                if not data:
                    break
                received += data
            answered += received.count(b"HTTP/1.1 ")
    return {"attack": "label-sets", "sent": len(requests), "answered": answered}


def scrapes(url: str, loops: int, seconds: float, accept: str) -> dict[str, object]:
    """`loops` scrapers GETting `url` back to back for `seconds`, each on its own
    connection per scrape (as urllib does); returns the scrapes done and the largest body."""
    deadline = time.monotonic() + seconds
    done: list[int] = []

    def scrape_loop() -> None:
        while time.monotonic() < deadline:
            request = urllib.request.Request(url, headers={"Accept": accept})
            with urllib.request.urlopen(request, timeout=60) as response:
                done.append(len(response.read()))

    threads = [threading.Thread(target=scrape_loop) for _ in range(loops)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"attack": "scrapes", "scrapes": len(done), "largest_body": max(done, default=0)}


# Requests that parsers read differently (RFC 9112's warnings, request smuggling): each must
# get a 400 from the ambassador, never reach the app as something else.
_CHUNKED = b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
SMUGGLING = {
    "trailer_request_line": _CHUNKED + b"1\r\nx\r\n0\r\nGET /admin HTTP/1.1\r\n\r\n",
    "bare_cr_in_extension": _CHUNKED + b"1;a=\rb\r\nx\r\n0\r\n\r\n",
    "padded_chunk_size": _CHUNKED + b"1 \r\nx\r\n0\r\n\r\n",
    "hex_prefix": _CHUNKED + b"0x1\r\nx\r\n0\r\n\r\n",
    "bad_chunk_end": _CHUNKED + b"1\r\nxyz\r\n0\r\n\r\n",
    "two_hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: internal\r\n\r\n",
    "no_host": b"GET / HTTP/1.1\r\n\r\n",
}


def smuggling(port: int, rounds: int, seconds: float) -> dict[str, object]:
    """Each request of SMUGGLING `rounds` times, each on a connection of its own; returns
    the status lines got, by request."""
    deadline = time.monotonic() + seconds
    answers: dict[str, dict[str, int]] = {name: {} for name in SMUGGLING}
    for _ in range(rounds):
        for name, request in SMUGGLING.items():
            if time.monotonic() > deadline:
                break
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(request)
                answer = _first_line(sock) or "(none)"
            answers[name][answer] = answers[name].get(answer, 0) + 1
    return {"attack": "smuggling", "answers": answers}


def _first_line(sock: socket.socket) -> str:
    """The status line the ambassador sent, if any ("" if it sent nothing)."""
    try:
        data = sock.recv(256)
    except OSError:
        return ""
    return data.split(b"\r\n", 1)[0].decode("latin-1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="attack", required=True)
    chunks = sub.add_parser("tiny-chunks")
    chunks.add_argument("port", type=int)
    chunks.add_argument("--mib", type=float, default=13)
    chunks.add_argument("--seconds", type=float, default=10)
    heads = sub.add_parser("held-heads")
    heads.add_argument("port", type=int)
    heads.add_argument("--connections", type=int, default=1000)
    heads.add_argument("--kib", type=int, default=60)
    heads.add_argument("--seconds", type=float, default=1)
    paths = sub.add_parser("random-paths")
    paths.add_argument("port", type=int)
    paths.add_argument("--paths", type=int, default=3000)
    paths.add_argument("--seconds", type=float, default=30)
    smuggle = sub.add_parser("smuggling")
    smuggle.add_argument("port", type=int)
    smuggle.add_argument("--rounds", type=int, default=20)
    smuggle.add_argument("--seconds", type=float, default=30)
    sets = sub.add_parser("label-sets")
    sets.add_argument("port", type=int)
    sets.add_argument("--methods", type=int, default=5, choices=range(1, 6))
    sets.add_argument("--seconds", type=float, default=30)
    scraping = sub.add_parser("scrapes")
    scraping.add_argument("url")
    scraping.add_argument("--loops", type=int, default=2)
    scraping.add_argument("--seconds", type=float, default=3)
    scraping.add_argument("--openmetrics", action="store_true")
    args = parser.parse_args()
    if args.attack == "label-sets":
        result = label_sets(args.port, args.methods, args.seconds)
    elif args.attack == "scrapes":
        result = scrapes(args.url, args.loops, args.seconds,
                         OPENMETRICS if args.openmetrics else "text/plain;version=0.0.4")
    elif args.attack == "tiny-chunks":
        result = tiny_chunks(args.port, args.mib, args.seconds)
    elif args.attack == "smuggling":
        result = smuggling(args.port, args.rounds, args.seconds)
    elif args.attack == "random-paths":
        result = random_paths(args.port, args.paths, args.seconds)
    else:
        result = held_heads(args.port, args.connections, args.kib, args.seconds)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
