"""The tailer driven poll by poll on real files, for the interleavings of writer and tailer that
a live run hits only by chance: every line delivered once, whichever moment rotation lands in."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redline.sidecars.adapter.tailer import FINGERPRINT, MTIME_SLACK_NS, READ_SIZE, Tailer


def lines(start: int, count: int, header: str = "") -> str:
    return header + "".join(f"GET /items/{i} 200 0.{i % 1000:03d}\n"
                            for i in range(start, start + count))


def append(path: Path, text: str) -> None:
    with path.open("a") as handle:
        handle.write(text)


def copytruncate(log: Path, copy: Path) -> None:
    shutil.copyfile(log, copy)
    os.truncate(log, 0)


class Collected:
    """What the tailer delivered, line by line."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def __call__(self, block: bytes) -> None:
        self.lines.extend(block.splitlines())

    def once_each(self) -> bool:
        return len(self.lines) == len(set(self.lines))


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "access.log"
    path.touch()
    return path


@pytest.fixture
def tailer_of(log: Path) -> Iterator[tuple[Tailer, Collected]]:
    seen = Collected()
    tailer = Tailer([str(log)], seen)
    tailer.poll()  # the first scan: the file is empty, we start at its end
    yield tailer, seen
    tailer.close()


def test_a_copytruncate_right_after_a_read_is_not_read_twice(
        log: Path, tailer_of: tuple[Tailer, Collected], monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is copied and truncated just after the tailer read it and before it looked at
    anything else: the copy is still recognised as this file's, so its lines are not taken
    again as those of a file that was never read."""
    tailer, seen = tailer_of
    append(log, lines(0, 100))
    real_pread = os.pread
    inode = log.stat().st_ino
    rotated: list[bool] = []

    def pread_then_rotate(fd: int, size: int, offset: int) -> bytes:
        data = real_pread(fd, size, offset)
        if size == READ_SIZE and data and not rotated and os.fstat(fd).st_ino == inode:
            rotated.append(True)
            copytruncate(log, log.with_name("access.log.1"))
        return data

    monkeypatch.setattr(os, "pread", pread_then_rotate)
    tailer.poll()
    monkeypatch.undo()
    assert rotated and len(seen.lines) == 100
    tailer.poll()  # the file is empty: truncated
    append(log, lines(100, 50))
    tailer.poll()
    tailer.poll()
    assert len(seen.lines) == 150 and seen.once_each()
    assert tailer.stats.truncations == 1


def test_a_new_file_copytruncated_before_it_was_first_read_is_read_from_its_copy(
        log: Path, tailer_of: tuple[Tailer, Collected]) -> None:
    """Renamed away, recreated, written, copied and truncated, all while the tailer was busy
    for longer than the file-time slack: the new file's first lines are in its copy."""
    tailer, seen = tailer_of
    append(log, lines(0, 10))
    tailer.poll()
    log.rename(log.with_name("access.log.1"))
    append(log, lines(10, 20))
    copytruncate(log, log.with_name("access.log.2"))
    append(log, lines(30, 5))
    time.sleep(2 * MTIME_SLACK_NS / 1e9)
    tailer.poll()
    tailer.poll()
    assert len(seen.lines) == 35 and seen.once_each()
    assert (tailer.stats.rotations, tailer.stats.truncations) == (1, 1)


def test_an_older_copy_that_starts_alike_is_not_taken_for_the_files_copy(
        log: Path, tmp_path: Path) -> None:
    """Files that start with the same header: after a copytruncate whose copy is already gone
    (compressed at once), a copy made before the tailer started is not read in its place."""
    header = "#Version: 1.0\n#Fields: cs-method cs-uri-stem sc-status time-taken\n" * 4
    assert len(header) > FINGERPRINT
    yesterday = log.with_name("access.log-20261125")
    yesterday.write_text(lines(0, 400, header))
    log.write_text(lines(1000, 50, header))
    time.sleep(2 * MTIME_SLACK_NS / 1e9)
    seen = Collected()
    tailer = Tailer([str(log)], seen)
    try:
        tailer.poll()  # starts at the end of today's file
        append(log, lines(1050, 10))
        tailer.poll()
        os.truncate(log, 0)  # its copy went straight to access.log-20261126.gz
        append(log, lines(2000, 5, header))
        tailer.poll()
        tailer.poll()
        assert [line for line in seen.lines if not line.startswith(b"#")] == \
            lines(1050, 10).encode().splitlines() + lines(2000, 5).encode().splitlines()
        assert tailer.stats.truncations == 1
    finally:
        tailer.close()


def test_a_file_copytruncated_then_renamed_between_polls_is_drained_from_its_copy(
        log: Path, tailer_of: tuple[Tailer, Collected]) -> None:
    """Two rotations, two ways, inside one poll interval: the copy holds the end of what the
    tailer had not read, the renamed file its new content from the start."""
    tailer, seen = tailer_of
    append(log, lines(0, 10))
    tailer.poll()
    append(log, lines(10, 10))
    copytruncate(log, log.with_name("access.log.1"))
    append(log, lines(20, 30))  # longer than what was read: the size alone does not tell
    log.rename(log.with_name("access.log.2"))
    append(log, lines(50, 5))
    tailer.poll()
    tailer.poll()
    assert seen.lines == lines(0, 55).encode().splitlines()
    assert (tailer.stats.rotations, tailer.stats.truncations) == (1, 1)


def test_older_rotated_files_renamed_in_a_rotation_are_not_taken_for_a_copy(
        log: Path, tmp_path: Path) -> None:
    """logrotate's default: .1 -> .2 -> .3, the log -> .1, a new empty log. The renames give
    the files from before the tailer started a fresh ctime, but they hold nothing written since
    the new file began: the empty new file has no copy among them."""
    day_ago = time.time() - 86_400
    for number in (1, 2):
        old = log.with_name(f"access.log.{number}")
        old.write_text(lines(10_000 * number, 20))
        os.utime(old, (day_ago, day_ago))
    append(log, lines(0, 10))
    seen = Collected()
    tailer = Tailer([str(log)], seen)
    try:
        tailer.poll()  # starts at the end
        append(log, lines(10, 5))
        tailer.poll()
        for number in (2, 1):
            log.with_name(f"access.log.{number}").rename(log.with_name(f"access.log.{number + 1}"))
        log.rename(log.with_name("access.log.1"))
        log.touch()
        tailer.poll()
        tailer.poll()  # the new file, still empty
        append(log, lines(20, 3))
        tailer.poll()
        assert seen.lines == (lines(10, 5) + lines(20, 3)).encode().splitlines()
        assert (tailer.stats.rotations, tailer.stats.truncations) == (1, 0)
    finally:
        tailer.close()


def test_a_copy_made_over_the_previous_copy_in_place_is_read(
        log: Path, tailer_of: tuple[Tailer, Collected]) -> None:
    """`cp access.log access.log.1 && : > access.log` from cron: every copy is the same inode
    (as is a deleted copy's inode that the file system hands to the next one)."""
    tailer, seen = tailer_of
    copy = log.with_name("access.log.1")
    inodes = set()
    for rotation in range(3):
        start = 100 * rotation
        append(log, lines(start, 10))
        tailer.poll()
        append(log, lines(start + 10, 5))  # not read before the copy: only the copy has them
        copytruncate(log, copy)
        inodes.add(copy.stat().st_ino)
        tailer.poll()
    assert len(inodes) == 1
    assert seen.lines == b"".join(lines(100 * r, 15).encode() for r in range(3)).splitlines()
    assert tailer.stats.truncations == 3


def test_a_renamed_file_is_still_read_while_the_app_writes_to_it(log: Path) -> None:
    """nginx writes to the renamed file until logrotate's USR1 makes it reopen: the tailer keeps
    reading it for `rotate_wait` after the rename, then closes it once at its end."""
    seen = Collected()
    tailer = Tailer([str(log)], seen, rotate_wait=0.3)
    try:
        tailer.poll()
        with log.open("a") as app:  # the app's descriptor, kept across the rename
            app.write(lines(0, 10))
            app.flush()
            tailer.poll()
            log.rename(log.with_name("access.log.1"))
            app.write(lines(10, 5))
            app.flush()
            tailer.poll()  # the rename is noticed: read on
            app.write(lines(15, 5))  # before the app reopens
        append(log, lines(20, 5))  # the reopened file
        tailer.poll()
        assert tailer.stats.rotations == 1 and len(tailer.files) == 2
        time.sleep(0.35)
        tailer.poll()
        assert tailer.files == [str(log)]
        assert seen.lines == lines(0, 25).encode().splitlines()
    finally:
        tailer.close()


def test_a_directory_at_the_path_is_unreadable_until_a_file_replaces_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "access.log"
    path.mkdir()
    (tmp_path / "old").mkdir()  # a glob's directory is no file of its: not an error
    seen = Collected()
    tailer = Tailer([str(path), str(tmp_path / "o*")], seen)
    try:
        with caplog.at_level(logging.INFO, logger="redline.adapter"):
            for _ in range(3):
                tailer.poll()
            assert tailer.unreadable == {str(path): "Is a directory"}
            assert tailer.stats.read_errors == 3  # one per poll
            assert [(r.levelname, r.message, getattr(r, "path", None)) for r in caplog.records] \
                == [("WARNING", "cannot read log file; its source is down until it can",
                     str(path))]
            path.rmdir()
            append(path, lines(0, 3))
            tailer.poll()
        assert tailer.unreadable == {}
        assert caplog.messages[-1] == "log file readable again"
        assert seen.lines == lines(0, 3).encode().splitlines()  # new since start: read whole
    finally:
        tailer.close()


def test_a_long_line_is_dropped_whether_it_arrives_whole_or_in_pieces(log: Path) -> None:
    seen = Collected()
    dropped: list[int] = []
    tailer = Tailer([str(log)], seen, max_line=1024, on_dropped=lambda: dropped.append(1))
    tailer.poll()
    try:
        long_line = "GET /" + "x" * 2000 + " 200 0.1\n"
        append(log, lines(0, 3) + long_line + lines(3, 2))  # whole, within one read
        tailer.poll()
        append(log, long_line[:1500])  # in pieces: dropped once the piece passes the limit
        tailer.poll()
        append(log, long_line[1500:] + lines(5, 1) + "x" * 1024 + "\n")  # exactly the limit
        tailer.poll()
        assert seen.lines == [*lines(0, 6).encode().splitlines(), b"x" * 1024]
        assert tailer.stats.dropped_long_lines == len(dropped) == 2
    finally:
        tailer.close()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=30),
       st.integers(min_value=1, max_value=20))
def test_property_the_long_line_check_equals_splitting(lengths: list[int], limit: int) -> None:
    block = b"".join(b"a" * n + b"\n" for n in lengths)
    tailer = Tailer([], Collected(), max_line=limit)
    assert tailer._has_long_line(block) == (max(lengths) > limit)
