"""Fuzz _h1head.c against http1.py's reference parse, for a bounded time (not part of `make test`).

Every head is given to the C reader and to the reference: the reader must answer with exactly
the reference's fields (types included) or decline (None), and decline wherever the reference
raises. The heads: realistic requests and responses, then mutated (bytes 0x00-0xff inserted,
replaced or removed, CR/LF games, header names one letter off the ones the reader looks for,
long values, thousands of header lines) and cut at every offset.

Its use is memory checking: build the reader with sanitizers into a scratch directory and run
this with the allocator that lets them see every bytes object's bounds (a read past a bytes
object's NUL is then reported, where pymalloc's arenas would hide it):

    gcc -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -shared -fPIC \\
        -I"$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" \\
        redline/sidecars/ambassador/_h1head.c -o /tmp/asan/_h1head.so
    LD_PRELOAD="$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0 \\
        PYTHONMALLOC=malloc .venv/bin/python tools/fuzz_h1head.py --module /tmp/asan/_h1head.so

or under `valgrind --tool=memcheck` with a plain build (-O1 -g) and PYTHONMALLOC=malloc.
Exits 1 at the first disagreement, printing the head; 0 with the counts otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
import time
from collections.abc import Callable, Iterator
from types import ModuleType

from redline.sidecars.ambassador.http1 import (
    ProtocolError,
    request_head_reference,
    response_head_reference,
)

REQUEST_FIELDS = ("method", "target", "minor_version", "content_length", "chunked", "upgrade",
                  "upgrade_to", "close", "user_agent", "traceparent", "tracestate")
RESPONSE_FIELDS = ("status", "close", "content_length", "chunked", "event_stream")

NAMES = [b"Host", b"Content-Length", b"Transfer-Encoding", b"Connection", b"Upgrade",
         b"User-Agent", b"traceparent", b"tracestate", b"Content-Type", b"Accept", b"X-Id"]
VALUES = [b"", b"0", b"12", b"007", b"1" * 18, b"1" * 19, b"5, 5", b"chunked", b"gzip, chunked",
          b"close", b"keep-alive", b"Upgrade", b"keep-alive, upgrade", b"websocket", b"h2c",
          b"curl/8.5.0", b"text/event-stream", b"text/html", b"rojo=00f067aa0ba902b7",
          b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", b"a\tb", b"\x80\xff",
          b" x ", b"\t"]
# Bytes that end, split or poison a line, then the rest of the byte values.
ODD = b"\r\n \t:,\x00\x7f\x80\xff" + bytes(range(256))


def load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("_h1head", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_letter_off(rng: random.Random, name: bytes) -> bytes:
    raw = bytearray(name)
    at = rng.randrange(len(raw))
    kind = rng.randrange(4)
    if kind == 0:
        raw[at] = rng.choice(b"abcdefghijklmnopqrstuvwxyz-ABCXYZ\x00 \t:")
    elif kind == 1:
        del raw[at]
    elif kind == 2:
        raw.insert(at, rng.choice(b"aetx- \t"))
    else:
        raw.append(rng.choice(b"sx- \t"))
    return bytes(raw)


def header(rng: random.Random) -> bytes:
    name = rng.choice(NAMES)
    roll = rng.randrange(12)
    if roll == 0:
        name = one_letter_off(rng, name)
    elif roll == 1:
        name = name.swapcase()
    value = rng.choice(VALUES)
    if rng.randrange(40) == 0:
        value = bytes(rng.choice(b"v, \t") for _ in range(rng.randrange(100, 20_000)))
    separator = rng.choice([b": ", b":", b":\t", b" :", b":  "]) if rng.randrange(8) == 0 \
        else b": "
    return name + separator + value + b"\r\n"


def request(rng: random.Random) -> bytes:
    method = rng.choice([b"GET", b"POST", b"HEAD", b"CONNECT", b"PUT", b"M-SEARCH", b"get"])
    target = rng.choice([b"/", b"/a?b=c", b"*", b"example.com:443", b"/\xc3\xa9"])
    lines = [header(rng) for _ in range(rng.randrange(12))]
    if rng.randrange(8):
        lines.insert(rng.randrange(len(lines) + 1), b"Host: example.com\r\n")
    if rng.randrange(200) == 0:
        lines += [b"X-%d: %d\r\n" % (i, i) for i in range(rng.randrange(1000, 5000))]
    version = b"HTTP/1.1" if rng.randrange(4) else b"HTTP/1.0"
    return method + b" " + target + b" " + version + b"\r\n" + b"".join(lines) + b"\r\n"


def response(rng: random.Random) -> bytes:
    version = b"HTTP/1.1" if rng.randrange(4) else b"HTTP/1.0"
    status = rng.choice([b"200", b"204", b"101", b"404", b"999"])
    reason = rng.choice([b" OK", b"", b" ", b" \xc3\xa9\t"])
    lines = [header(rng) for _ in range(rng.randrange(12))]
    if rng.randrange(200) == 0:
        lines += [b"X-%d: %d\r\n" % (i, i) for i in range(rng.randrange(1000, 5000))]
    return version + b" " + status + reason + b"\r\n" + b"".join(lines) + b"\r\n"


# Pieces of the lines the reader looks for: heads made of them in random order test how lines,
# names, separators and values are told apart, which single-byte mutations reach seldom.
PIECES = [b"\r\n", b"\r\n", b"\r\n", b"\r", b"\n", b" ", b"\t", b":", b",", b"\x00", b"\x7f",
          b"\xff", b"x", b"5", b"00", b"host", b"Host", b"content-length", b"Content-Length",
          b"transfer-encoding", b"TRANSFER-ENCODING", b"connection", b"Connection",
          b"content-type", b"upgrade", b"user-agent", b"traceparent", b"tracestate", b"chunked",
          b"close", b"keep-alive", b"text/event-stream", b"websocket", b"conten", b"transfer-"]


def soup(rng: random.Random) -> bytes:
    start = rng.choice([b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.0\r\n", b"HTTP/1.1 200 OK\r\n",
                        b"HTTP/1.0 200\r\n"])
    return start + b"".join(rng.choice(PIECES) for _ in range(rng.randrange(40))) + \
        rng.choice([b"\r\n\r\n", b"\r\n", b""])


def mutate(rng: random.Random, head: bytes) -> bytes:
    raw = bytearray(head)
    for _ in range(rng.choice([0, 1, 1, 1, 2, 3, 8])):
        at = rng.randrange(len(raw) + 1)
        byte = rng.choice(ODD)
        kind = rng.randrange(4)
        if kind == 0 or at == len(raw):
            raw.insert(at, byte)
        elif kind == 1:
            raw[at] = byte
        elif kind == 2:
            del raw[at]
        else:  # CR/LF games: a line ending replaced by another
            ending = rng.choice([b"\n", b"\r", b"\r\r\n", b"\n\r", b"\r\n\r\n", b""])
            crlf = raw.find(b"\r\n", at)
            if crlf >= 0:
                raw[crlf:crlf + 2] = ending
    return bytes(raw)


def reference(parse: Callable[[bytes], object], names: tuple[str, ...],
              head: bytes) -> list[tuple[type, object]] | None:
    try:
        parsed = parse(head)
    except ProtocolError:
        return None
    return [(type(value), value) for value in (getattr(parsed, name) for name in names)]


class Checker:
    def __init__(self, module: ModuleType) -> None:
        self.readers = ((module.request_head, request_head_reference, REQUEST_FIELDS),
                        (module.response_head, response_head_reference, RESPONSE_FIELDS))
        self.cases = self.answered = 0

    def check(self, head: bytes) -> None:
        for reader, parse, names in self.readers:
            self.cases += 1
            answer = reader(head)
            if answer is None:
                continue
            self.answered += 1
            expected = reference(parse, names, head)
            got = [(type(value), value) for value in answer]
            if got != expected:
                print(f"DISAGREE {reader.__name__}: {head[:2000]!r}\n C: {got}\n reference: "
                      f"{expected}", file=sys.stderr)
                sys.exit(1)


def heads(rng: random.Random) -> Iterator[bytes]:
    while True:
        head = request(rng) if rng.randrange(2) else response(rng)
        yield head
        for _ in range(8):
            yield mutate(rng, head)
        if rng.randrange(50) == 0 and len(head) < 4000:  # cut at every offset (fresh objects)
            mutated = mutate(rng, head)
            for cut in range(len(mutated)):
                yield mutated[:cut]
        for _ in range(4):
            yield soup(rng)
        if rng.randrange(20) == 0:
            yield bytes(rng.randrange(256) for _ in range(rng.randrange(64)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", help="the _h1head .so to test (default: the installed one)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.module:
        module = load(args.module)
    else:
        from redline.sidecars.ambassador import _h1head as module
    checker = Checker(module)
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.seconds
    for count, head in enumerate(heads(rng)):
        checker.check(head)
        if count % 1000 == 0 and time.monotonic() > deadline:
            break
    print(f"{checker.cases} cases ({checker.answered} answered by the reader, all as the "
          f"reference), seed {args.seed}, {args.seconds:g} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
