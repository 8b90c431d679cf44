"""The adapter's C reader of combined lines (_logscan.c) under hostile log content, in a real
`redline adapter` process: binary garbage (NULs, invalid UTF-8, stray quotes and brackets), a
line just under --max-line-bytes that the reader accepts, and one of garbage as long. Memory
stays bounded, /healthz answers, each unreadable line is one parse error, every valid line is
recorded with its own route, and the process never dies."""

from __future__ import annotations

import random
from pathlib import Path

from redline.sidecars.adapter.limits import MAX_LINE
from tests.abuse.test_adapter import no_app_errors, watching
from tests.sidecars.adapter.helpers import AdapterProcess, append, line


def garbage_line(rng: random.Random, size: int, ascii: bool) -> bytes:
    """Random bytes without a newline, weighted towards what delimits combined fields; ASCII
    only or not (the reader scans an ASCII block line by line, declines any other at once)."""
    alphabet = b'\x00 "[]?-.0123456789\t\r\\GET/' + (b"" if ascii else b"\xff\xc3\x80")
    return bytes(rng.choice(alphabet) for _ in range(size))


def test_garbage_and_huge_lines_are_bad_lines_and_valid_ones_recorded(tmp_path: Path) -> None:
    rng = random.Random(22)
    log = tmp_path / "access.log"
    log.touch()
    adapter = AdapterProcess("--access-log", str(log))
    try:
        with watching(adapter):
            long_path = "/" + "a" * (MAX_LINE - 200)  # the whole line stays under the limit
            append(log, line(1).replace("/items/1", long_path))
            assert adapter.wait_recorded(1) == 1  # read whole (its route is the templater's call)
            garbage = [garbage_line(rng, rng.randrange(1, 400), ascii=i % 200 < 100)
                       for i in range(2000)]
            garbage.append(garbage_line(rng, MAX_LINE - 200, ascii=True))
            # Garbage between valid lines, in blocks the reader declines and the regex reads.
            starts = range(0, len(garbage), 100)
            for start in starts:
                chunk = b"\n".join(garbage[start:start + 100]) + b"\n"
                append(log, chunk + line(start).encode())
            assert adapter.wait_recorded(1 + len(starts), timeout=60) == 1 + len(starts)
            errors = adapter.value("redline_adapter_parse_errors_total")
        assert errors == len(garbage)  # each garbage line one error (none is empty)
        no_app_errors(adapter)
    finally:
        assert adapter.stop() == 0
