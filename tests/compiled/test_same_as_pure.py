"""The compiled build behaves as the pure one: the same random exchanges (requests and
responses of every framing, garbage, any chunking of the bytes) and access-log blocks go through
both, in two processes (exchange_worker.py, one with REDLINE_PURE=1), and every byte forwarded
either way and every metric sample must be equal."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redline.compiled import PURE_ENV

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    def __init__(self, pure: bool) -> None:
        env = {key: value for key, value in os.environ.items() if key != PURE_ENV}
        if pure:
            env[PURE_ENV] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.compiled.exchange_worker"], cwd=ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.compiled: list[str] = self.ask_line()["compiled"]

    def ask_line(self) -> dict[str, list[str]]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the worker exited ({self.process.poll()})"
        answer: dict[str, list[str]] = json.loads(line)
        return answer

    def ask(self, case: Mapping[str, object]) -> object:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(case) + "\n")
        self.process.stdin.flush()
        return self.ask_line()

    def stop(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(10)
        self.process.stdout.close()


@pytest.fixture(scope="module")
def workers() -> Iterator[tuple[Worker, Worker]]:
    pure, built = Worker(pure=True), Worker(pure=False)
    try:
        assert pure.compiled == [], f"REDLINE_PURE=1 still ran {pure.compiled} compiled"
        if not built.compiled:
            pytest.skip("no compiled build to compare with the pure one: "
                        "run `.venv/bin/python tools/compile.py` first")
        yield pure, built
    finally:
        pure.stop()
        built.stop()


# --- random HTTP/1 messages ---------------------------------------------------------------

PATHS = ["/", "/users/1", "/users/550e8400-e29b-41d4-a716-446655440000/orders/77",
         "/static/app.js?v=3", "/healthz", "/metrics", "/api/items/0123456789abcdef0123",
         "/a%20b", "*", "http://example.com/x"]
tokens = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_./%{}", max_size=12)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=16)


@st.composite
def chunked_body(draw: st.DrawFn) -> bytes:
    chunks = draw(st.lists(st.binary(min_size=1, max_size=20), max_size=3))
    out = b"".join(b"%x" % len(chunk) + draw(st.sampled_from([b"", b";ext=1"])) + b"\r\n"
                   + chunk + b"\r\n" for chunk in chunks)
    trailer = draw(st.sampled_from([b"", b"X-Trailer: 1\r\n"]))
    return out + b"0\r\n" + trailer + b"\r\n"


@st.composite
def framed(draw: st.DrawFn, allow_bodyless: bool, odd: bool) -> tuple[bytes, bytes]:
    """Framing headers and the body they frame; both kinds at once only if `odd`."""
    kinds = ["none", "length", "chunked"] if allow_bodyless else ["length", "chunked"]
    kind = draw(st.sampled_from([*kinds, "both"] if odd else kinds))
    if kind == "none":
        return b"", b""
    body = draw(st.binary(max_size=30))
    if kind == "length":
        return b"Content-Length: %d\r\n" % len(body), body
    chunked = draw(chunked_body())
    if kind == "chunked":
        return b"Transfer-Encoding: chunked\r\n", chunked
    return b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(body), chunked


def extra_headers(odd: bool) -> st.SearchStrategy[bytes]:
    names = ["Accept", "User-Agent", "X-Id", "traceparent"]
    if odd:  # what changes framing, or breaks the head
        names += ["Connection", "Expect", "Upgrade", "Bad Name"]
    lines = st.tuples(st.sampled_from(names), header_values)
    return st.lists(lines, max_size=3).map(
        lambda pairs: b"".join(f"{name}: {value}\r\n".encode() for name, value in pairs))


# One message in ten is garbage; of the others one in four has something odd (a missing or
# doubled Host, both framings, headers that change framing or break the head, an unusual
# method or status), so most exchanges get to a response and are recorded.
def kind_of_message() -> st.SearchStrategy[str]:
    return st.sampled_from(["garbage", *["odd"] * 2, *["plain"] * 7])


@st.composite
def request(draw: st.DrawFn) -> bytes:
    kind = draw(kind_of_message())
    if kind == "garbage":
        return draw(st.binary(max_size=60))
    odd = kind == "odd"
    methods = ["GET", "GET", "POST", "PUT", "HEAD", "DELETE"]
    method = draw(st.sampled_from([*methods, "BREW", "get"] if odd else methods))
    path = draw(st.one_of(st.sampled_from(PATHS), tokens.map(lambda text: "/" + text)))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]))
    hosts = [b"Host: app\r\n"]
    host = draw(st.sampled_from([*hosts, b"", b"Host: a\r\nHost: b\r\n"] if odd else hosts))
    headers, body = draw(framed(allow_bodyless=True, odd=odd))
    start = f"{chr(13) + chr(10) if odd else ''}{method} {path} {version}\r\n"
    return start.encode() + host + headers + draw(extra_headers(odd)) + b"\r\n" + body


@st.composite
def response(draw: st.DrawFn) -> bytes:
    kind = draw(kind_of_message())
    if kind == "garbage":
        return draw(st.binary(max_size=60))
    odd = kind == "odd"
    statuses = [200, 200, 201, 204, 301, 304, 404, 500, 503]
    status = draw(st.sampled_from([*statuses, 100, 101, 999] if odd else statuses))
    headers, body = draw(framed(allow_bodyless=status >= 200, odd=odd))
    if status in (204, 304) or 100 <= status < 200:
        body = b""
    return (f"HTTP/1.1 {status} Reason\r\n".encode() + headers + draw(extra_headers(odd))
            + b"\r\n" + body)


@st.composite
def cut(draw: st.DrawFn, data: bytes) -> list[str]:
    """`data` cut anywhere into the pieces one data_received call each gets."""
    points = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    edges = [0, *points, len(data)]
    return [data[a:b].decode("latin-1") for a, b in itertools.pairwise(edges)
            if b > a]


@st.composite
def exchanges(draw: st.DrawFn) -> list[list[list[str]]]:
    count = draw(st.integers(1, 4))
    return [[draw(cut(draw(request()))), draw(cut(draw(response())))] for _ in range(count)]


# --- random access-log lines (nginx's format with $request_time) ---------------------------

@st.composite
def log_line(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(st.characters(blacklist_characters="\n\r"), max_size=40))
    method = draw(st.sampled_from(["GET", "POST", "PATCH", "BREW", "-"]))
    path = draw(st.one_of(st.sampled_from(PATHS), tokens.map(lambda text: "/" + text)))
    status = draw(st.sampled_from([200, 201, 304, 404, 499, 500, 502]))
    duration = draw(st.one_of(st.just("-"), st.floats(0, 20).map(lambda s: f"{s:.3f}")))
    agent = draw(st.sampled_from(["curl/8", "kube-probe/1.29", "-"]))
    return (f'10.0.0.1 - - [02/Dec/2026:13:00:00 +0000] "{method} {path} HTTP/1.1" {status} '
            f'12 "-" "{agent}" {duration}')


@st.composite
def log_blocks(draw: st.DrawFn) -> list[str]:
    lines = draw(st.lists(log_line(), min_size=1, max_size=12))
    sizes = draw(st.lists(st.integers(1, 5), min_size=len(lines), max_size=len(lines)))
    blocks, start = [], 0
    for size in sizes:
        if start < len(lines):
            blocks.append("".join(line + "\n" for line in lines[start:start + size]))
            start += size
    return blocks


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@SETTINGS
@given(case=exchanges())
def test_the_ambassador_forwards_and_records_the_same(
        workers: tuple[Worker, Worker], case: list[list[list[str]]]) -> None:
    pure, built = workers
    question = {"exchanges": case}
    assert built.ask(question) == pure.ask(question)


@SETTINGS
@given(blocks=log_blocks())
def test_the_adapter_records_the_same(workers: tuple[Worker, Worker], blocks: list[str]) -> None:
    pure, built = workers
    question = {"log_blocks": blocks}
    assert built.ask(question) == pure.ask(question)
