"""Follow log files as mtail and promtail users expect; every line is delivered exactly once.

Files are followed by identity (device and inode), not by name, and polled (no busy loop):
- files matched at start begin at their end (`from_start` reads them whole); files that appear
  later, including the new file after a rotation, are read from their beginning;
- rename-and-create rotation: the old file is read through the descriptor we hold (from its
  copy first, if it was copytruncated too since the last poll) for `rotate_wait` seconds, as
  the app may write to it until it reopens the name (nginx: until logrotate's USR1), then
  closed at its end; the new file under the name is a new identity, read from 0;
- copytruncate: a file that got shorter than what we read, or whose first bytes changed, was
  truncated; what was written between our last read and the truncation is read from the
  rotated copy (`name.1`, `name-20261126`, ... modified since the file's content began, whose
  first bytes match what we read), then the file from 0;
- a last line without its newline is held until the newline arrives (or the file is closed);
- a line longer than `max_line` is dropped and reported, never buffered whole (nor passed on
  when it arrives whole in one read);
- a matched path that cannot be read (permission denied, a directory given as the path) is
  counted at every poll, listed in `unreadable` while it lasts, and logged once when it starts
  and once when it ends. Once readable it is read from where it would have been: its size at
  start if it was there then (and not `from_start`), else its beginning.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import logging
import os
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redline.sidecars.adapter.limits import MAX_LINE

READ_SIZE = 1 << 20
FINGERPRINT = 256  # first bytes of a file, to recognise it after truncation or in a copy
DONE_LIMIT = 4096  # finished files remembered; older ones are ruled out by their mtime anyway
# File times come from the kernel's coarse clock, up to a tick behind time.time_ns().
MTIME_SLACK_NS = 50_000_000

LinesCallback = Callable[[bytes], None]

log = logging.getLogger("redline.adapter")


def _ignore() -> None:
    pass


@dataclass
class _File:
    path: str
    fd: int
    identity: tuple[int, int]
    offset: int
    # The first bytes of the file's current content, taken from what we read (or, for a file
    # started at its end, its head when opened). Never read apart from the data: a truncation
    # between the two reads would leave a fingerprint that matches neither the copy nor the file.
    fingerprint: bytes = b""
    partial: bytes = b""
    discarding: bool = False  # inside an over-long line, dropping until its newline
    # When the current content began at the earliest: the previous poll for a file that
    # appeared since, the truncation we noticed for one truncated. A copy worth reading holds
    # something written after that, so its mtime is later (whether the copy set it or kept the
    # file's). Older files keep their old mtime even when logrotate renames them (.1 -> .2,
    # which refreshes the ctime), and so do older copies with the same first bytes (a header).
    since_ns: int = 0
    gone_ns: int = 0  # when we noticed it renamed away or deleted (monotonic), 0 while present


@dataclass
class TailStats:
    rotations: int = 0
    truncations: int = 0
    dropped_long_lines: int = 0
    read_errors: int = 0


class Tailer:
    def __init__(self, patterns: Sequence[str], on_lines: LinesCallback, *,
                 from_start: bool = False, max_line: int = MAX_LINE,
                 on_dropped: Callable[[], None] = _ignore, rotate_wait: float = 5.0) -> None:
        self.patterns = list(patterns)
        self.on_lines = on_lines
        self.on_dropped = on_dropped
        self.max_line = max_line
        self.rotate_wait_ns = int(rotate_wait * 1e9)
        self.stats = TailStats()
        self._files: dict[tuple[int, int], _File] = {}
        # Files rotated away and read, and copytruncate copies read: never taken for a copy
        # again while they still start with these bytes. An identity alone is not enough: a
        # copy made over the previous one (`cp` onto it) keeps its inode, and file systems hand
        # a deleted copy's inode to the next file.
        self._done: dict[tuple[int, int], bytes] = {}
        self._first_scan = True
        self._from_start = from_start
        self._previous_scan_ns = 0
        # Matched paths that could not be read in the last poll, with why: the source is down
        # while there are any. Rebuilt every poll, so a path recovers by being read once.
        self.unreadable: dict[str, str] = {}
        self._failing: dict[str, str] = {}
        self.matched: list[str] = []  # regular files the last scan found
        # Sizes at start of files found unreadable then: where their end was when we started.
        self._end_at_start: dict[tuple[int, int], int] = {}

    # --- one pass ------------------------------------------------------------------------

    def poll(self, budget: int = 64 * READ_SIZE) -> int:
        """Look for new, rotated and truncated files and read what is new. Returns bytes read;
        at most about `budget` per pass, so a large backlog does not starve the caller."""
        scan_ns, now = time.time_ns(), time.monotonic_ns()
        self._failing = {}
        present = self._scan()
        read = 0
        for identity, tailed in list(self._files.items()):
            if identity not in present:  # renamed away or deleted: read on for a while
                if not tailed.gone_ns:
                    tailed.gone_ns = now
                    self.stats.rotations += 1
                if tailed.fingerprint:  # copytruncated, too, since the last poll?
                    self._check_truncation(tailed)
                read += self._read(tailed, budget)
                if now - tailed.gone_ns >= self.rotate_wait_ns and self._at_end(tailed):
                    self._close(tailed)
        for identity, path in present.items():
            known = self._files.get(identity) or self._open(path, identity)
            if known is None:
                continue
            tailed = known
            tailed.path = path
            tailed.gone_ns = 0
            self._check_truncation(tailed)
            read += self._read(tailed, budget)
        self._first_scan = False
        self._previous_scan_ns = scan_ns
        self.matched = sorted(present.values())
        self._report_unreadable()
        return read

    def close(self) -> None:
        for tailed in list(self._files.values()):
            self._close(tailed)

    @property
    def files(self) -> list[str]:
        return sorted(tailed.path for tailed in self._files.values())

    # --- internals -----------------------------------------------------------------------

    def _scan(self) -> dict[tuple[int, int], str]:
        present: dict[tuple[int, int], str] = {}
        for pattern in self.patterns:
            magic = glob.has_magic(pattern)
            for path in sorted(glob.glob(pattern)) if magic else [pattern]:
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    present.setdefault((st.st_dev, st.st_ino), path)
                elif not magic:
                    # Named outright, so meant to be a log; never opened (a FIFO would block).
                    # A glob's other matches (a directory beside the logs) are not its files.
                    self._failed(path, os.strerror(errno.EISDIR) if stat.S_ISDIR(st.st_mode)
                                 else "not a regular file")
        return present

    def _failed(self, path: str, reason: str) -> None:
        self.stats.read_errors += 1
        self._failing.setdefault(path, reason)

    def _report_unreadable(self) -> None:
        """Log each path once when it becomes unreadable and once when it is read again."""
        for path, reason in self._failing.items():
            if path not in self.unreadable:
                log.warning("cannot read log file; its source is down until it can",
                            extra={"path": path, "error": reason})
        for path in self.unreadable.keys() - self._failing.keys():
            log.info("log file readable again", extra={"path": path})
        self.unreadable = self._failing

    def _open(self, path: str, identity: tuple[int, int]) -> _File | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            self._failed(path, exc.strerror or str(exc))
            if self._first_scan and not self._from_start:
                with contextlib.suppress(OSError):  # stat needs no read permission
                    self._end_at_start[identity] = os.stat(path).st_size
            return None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != identity:  # replaced between scan and open: next pass
            os.close(fd)
            return None
        # A file found at start began before us: only copies made from now on are its own.
        # One that appeared later was not here at the previous scan: its copies are newer.
        since = time.time_ns() if self._first_scan else self._previous_scan_ns
        tailed = _File(path, fd, identity, 0, since_ns=since - MTIME_SLACK_NS)
        start = st.st_size if self._first_scan and not self._from_start \
            else self._end_at_start.pop(identity, None)
        if start is not None and start <= st.st_size:  # shorter: truncated since, read it all
            # Size before head: if the file is truncated in between, the head belongs to the
            # new content and no copy matches it, rather than the old head matching its copy.
            tailed.offset = start
            tailed.fingerprint = os.pread(fd, FINGERPRINT, 0)
        self._files[identity] = tailed
        return tailed

    def _check_truncation(self, tailed: _File) -> None:
        try:
            size = os.fstat(tailed.fd).st_size
            head = os.pread(tailed.fd, FINGERPRINT, 0)
        except OSError as exc:
            self._failed(tailed.path, exc.strerror or str(exc))
            return
        known = tailed.fingerprint
        if size < tailed.offset or (known and head[:len(known)] != known):
            copy = self._find_copy(tailed, lambda first: first == known)
        elif not known:
            # Nothing read of the current content, so no fingerprint: it was written and
            # copytruncated between two polls. Its copy is a sibling modified since the content
            # began that does not start like the file does now.
            copy = self._find_copy(tailed, lambda first: bool(first) and not head.startswith(first))
            if copy is None:
                return
        else:
            return
        self.stats.truncations += 1
        if copy is not None:
            self._read_copy(tailed, copy)
        self._deliver_partial(tailed)
        tailed.offset = 0
        tailed.discarding = False
        tailed.fingerprint = b""
        tailed.since_ns = time.time_ns() - MTIME_SLACK_NS

    def _find_copy(self, tailed: _File, matches: Callable[[bytes], bool]) -> str | None:
        """The newest rotated copy of `tailed` (`name.1`, `name-20261126`, ...)."""
        candidates = []
        for path in glob.glob(glob.escape(tailed.path) + "[.-]*"):
            if path.endswith((".gz", ".bz2", ".xz", ".zst")):
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            identity = (st.st_dev, st.st_ino)
            if identity in self._files or st.st_size < tailed.offset \
                    or st.st_mtime_ns < tailed.since_ns:
                continue
            candidates.append((st.st_mtime_ns, path, identity))
        for _, path, identity in sorted(candidates, reverse=True):
            try:
                with open(path, "rb") as copy:
                    head = copy.read(FINGERPRINT)
            except OSError:
                continue
            if self._done.get(identity) != head \
                    and matches(head[:len(tailed.fingerprint) or FINGERPRINT]):
                return path
        return None

    def _read_copy(self, tailed: _File, path: str) -> None:
        """copytruncate copied the file before truncating it: read our missing tail there."""
        try:
            with open(path, "rb") as copy:
                st = os.fstat(copy.fileno())
                self._remember_done((st.st_dev, st.st_ino), os.pread(copy.fileno(), FINGERPRINT, 0))
                copy.seek(tailed.offset)
                while chunk := copy.read(READ_SIZE):
                    self._deliver(tailed, chunk)
        except OSError as exc:
            # Read once or never: no state to recover from, so logged here, not in unreadable.
            self.stats.read_errors += 1
            log.warning("cannot read the rotated copy; the lines written just before the "
                        "truncation are lost", extra={"path": path, "error": str(exc)})

    def _read(self, tailed: _File, budget: int) -> int:
        total = 0
        while total < budget:
            try:
                chunk = os.pread(tailed.fd, READ_SIZE, tailed.offset)
            except OSError as exc:
                self._failed(tailed.path, exc.strerror or str(exc))
                break
            if not chunk:
                break
            start = tailed.offset
            if start < FINGERPRINT and len(tailed.fingerprint) >= start:  # the start of it
                tailed.fingerprint = (tailed.fingerprint[:start] + chunk)[:FINGERPRINT]
            tailed.offset += len(chunk)
            total += len(chunk)
            self._deliver(tailed, chunk)
        return total

    def _at_end(self, tailed: _File) -> bool:
        try:
            return os.fstat(tailed.fd).st_size <= tailed.offset
        except OSError:
            return True

    def _deliver(self, tailed: _File, chunk: bytes) -> None:
        """Hand complete lines on; keep the unfinished last one; drop over-long ones."""
        if tailed.discarding:
            newline = chunk.find(b"\n")
            if newline < 0:
                return
            tailed.discarding = False
            chunk = chunk[newline + 1:]
        data = tailed.partial + chunk if tailed.partial else chunk
        last = data.rfind(b"\n")
        if last < 0:
            tailed.partial = data
        else:
            tailed.partial = data[last + 1:]
            block = data[:last + 1]
            if len(block) > self.max_line and self._has_long_line(block):
                block = self._without_long_lines(block)  # lines that arrived whole
            if block:
                self.on_lines(block)
        if len(tailed.partial) > self.max_line:
            tailed.partial = b""
            tailed.discarding = True
            self._dropped(1)

    def _has_long_line(self, block: bytes) -> bool:
        """Whether a line of `block` (complete lines) is over max_line, at C speed: from a
        line's start, the next max_line + 1 bytes hold a newline unless that line is too long;
        after the last newline among them starts the next line to look from. A few steps per
        MiB, where splitting the block into lines would cost one object per line."""
        start, window = 0, self.max_line + 1
        while start < len(block):
            newline = block.rfind(b"\n", start, start + window)
            if newline < 0:
                return True
            start = newline + 1
        return False

    def _without_long_lines(self, block: bytes) -> bytes:
        lines = block.split(b"\n")  # the last is empty: the block ends with a newline
        kept = [line for line in lines if len(line) <= self.max_line]
        self._dropped(len(lines) - len(kept))
        return b"\n".join(kept)

    def _dropped(self, lines: int) -> None:
        self.stats.dropped_long_lines += lines
        for _ in range(lines):
            self.on_dropped()

    def _deliver_partial(self, tailed: _File) -> None:
        if tailed.partial and not tailed.discarding:
            self.on_lines(tailed.partial + b"\n")
        tailed.partial = b""

    def _close(self, tailed: _File) -> None:
        self._deliver_partial(tailed)
        try:
            self._remember_done(tailed.identity, os.pread(tailed.fd, FINGERPRINT, 0))
        except OSError:
            self.stats.read_errors += 1
        os.close(tailed.fd)
        del self._files[tailed.identity]

    def _remember_done(self, identity: tuple[int, int], head: bytes) -> None:
        self._done.pop(identity, None)  # newest last, so the oldest go first
        self._done[identity] = head
        if len(self._done) > DONE_LIMIT:
            del self._done[next(iter(self._done))]

