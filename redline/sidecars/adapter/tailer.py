"""Follow log files as mtail and promtail users expect; every line is delivered exactly once.

Files are followed by identity (device and inode), not by name, and polled (no busy loop):
- files matched at start begin at their end (`from_start` reads them whole); files that appear
  later, including the new file after a rotation, are read from their beginning;
- rename-and-create rotation: the old file is read to its end through the descriptor we hold,
  then closed; the new file under the name is a new identity, read from 0;
- copytruncate: a file that got shorter than what we read, or whose first bytes changed, was
  truncated; what was written between our last read and the truncation is read from the
  rotated copy (`name.1`, `name-20261126`, ... whose first bytes match), then the file from 0;
- a last line without its newline is held until the newline arrives (or the file is closed);
- a line longer than `max_line` is dropped and reported, never buffered whole.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

READ_SIZE = 1 << 20
FINGERPRINT = 256  # first bytes of a file, to recognise it after truncation or in a copy

LinesCallback = Callable[[bytes], None]


def _ignore() -> None:
    pass


@dataclass
class _File:
    path: str
    fd: int
    identity: tuple[int, int]
    offset: int
    fingerprint: bytes = b""
    partial: bytes = b""
    discarding: bool = False  # inside an over-long line, dropping until its newline


@dataclass
class TailStats:
    rotations: int = 0
    truncations: int = 0
    dropped_long_lines: int = 0
    read_errors: int = 0


class Tailer:
    def __init__(self, patterns: Sequence[str], on_lines: LinesCallback, *,
                 from_start: bool = False, max_line: int = 256 * 1024,
                 on_dropped: Callable[[], None] = _ignore) -> None:
        self.patterns = list(patterns)
        self.on_lines = on_lines
        self.on_dropped = on_dropped
        self.max_line = max_line
        self.stats = TailStats()
        self._files: dict[tuple[int, int], _File] = {}
        self._first_scan = True
        self._from_start = from_start

    # --- one pass ------------------------------------------------------------------------

    def poll(self, budget: int = 64 * READ_SIZE) -> int:
        """Look for new, rotated and truncated files and read what is new. Returns bytes read;
        at most about `budget` per pass, so a large backlog does not starve the caller."""
        present = self._scan()
        read = 0
        for identity, tailed in list(self._files.items()):
            if identity not in present:
                read += self._read(tailed, budget)  # renamed away or deleted: drain it
                if tailed.identity in self._files and self._at_end(tailed):
                    self._close(tailed, rotated=True)
        for identity, path in present.items():
            known = self._files.get(identity) or self._open(path, identity)
            if known is None:
                continue
            tailed = known
            tailed.path = path
            self._check_truncation(tailed)
            read += self._read(tailed, budget)
        self._first_scan = False
        return read

    def close(self) -> None:
        for tailed in list(self._files.values()):
            self._close(tailed, rotated=False)

    @property
    def files(self) -> list[str]:
        return sorted(tailed.path for tailed in self._files.values())

    # --- internals -----------------------------------------------------------------------

    def _scan(self) -> dict[tuple[int, int], str]:
        present: dict[tuple[int, int], str] = {}
        for pattern in self.patterns:
            for path in sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]:
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if os.path.isfile(path):
                    present.setdefault((st.st_dev, st.st_ino), path)
        return present

    def _open(self, path: str, identity: tuple[int, int]) -> _File | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.stats.read_errors += 1
            return None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != identity:  # replaced between scan and open: next pass
            os.close(fd)
            return None
        start_at_end = self._first_scan and not self._from_start
        tailed = _File(path, fd, identity, st.st_size if start_at_end else 0)
        tailed.fingerprint = os.pread(fd, FINGERPRINT, 0)
        self._files[identity] = tailed
        return tailed

    def _check_truncation(self, tailed: _File) -> None:
        try:
            size = os.fstat(tailed.fd).st_size
            head = os.pread(tailed.fd, len(tailed.fingerprint), 0) if tailed.fingerprint else b""
        except OSError:
            self.stats.read_errors += 1
            return
        shrunk = size < tailed.offset
        rewritten = bool(tailed.fingerprint) and head != tailed.fingerprint
        if not (shrunk or rewritten):
            return
        self.stats.truncations += 1
        self._recover_from_copy(tailed)
        self._deliver_partial(tailed)
        tailed.offset = 0
        tailed.discarding = False
        tailed.fingerprint = os.pread(tailed.fd, FINGERPRINT, 0)

    def _recover_from_copy(self, tailed: _File) -> None:
        """copytruncate copied the file before truncating it: read our missing tail there."""
        candidates = []
        for path in glob.glob(glob.escape(tailed.path) + "[.-]*"):
            if path.endswith((".gz", ".bz2", ".xz", ".zst")):
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            if st.st_size >= tailed.offset and (st.st_dev, st.st_ino) not in self._files:
                candidates.append((st.st_mtime, path))
        for _, path in sorted(candidates, reverse=True):
            try:
                with open(path, "rb") as copy:
                    if copy.read(len(tailed.fingerprint)) != tailed.fingerprint:
                        continue
                    copy.seek(tailed.offset)
                    while chunk := copy.read(READ_SIZE):
                        self._deliver(tailed, chunk)
                return
            except OSError:
                self.stats.read_errors += 1

    def _read(self, tailed: _File, budget: int) -> int:
        total = 0
        while total < budget:
            try:
                chunk = os.pread(tailed.fd, READ_SIZE, tailed.offset)
            except OSError:
                self.stats.read_errors += 1
                break
            if not chunk:
                break
            tailed.offset += len(chunk)
            total += len(chunk)
            if len(tailed.fingerprint) < FINGERPRINT and tailed.offset <= FINGERPRINT * 4:
                tailed.fingerprint = os.pread(tailed.fd, FINGERPRINT, 0)
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
            # A long line that arrived whole goes on: the parser counts it as an error.
            self.on_lines(data[:last + 1])
        if len(tailed.partial) > self.max_line:
            tailed.partial = b""
            tailed.discarding = True
            self.stats.dropped_long_lines += 1
            self.on_dropped()

    def _deliver_partial(self, tailed: _File) -> None:
        if tailed.partial and not tailed.discarding:
            self.on_lines(tailed.partial + b"\n")
        tailed.partial = b""

    def _close(self, tailed: _File, *, rotated: bool) -> None:
        self._deliver_partial(tailed)
        os.close(tailed.fd)
        del self._files[tailed.identity]
        if rotated:
            self.stats.rotations += 1


def read_once(paths: Sequence[str], on_lines: LinesCallback, max_line: int = 256 * 1024,
              on_dropped: Callable[[], None] = _ignore) -> TailStats:
    """Read every matched file from its start to its end (for `--once`)."""
    tailer = Tailer(paths, on_lines, from_start=True, max_line=max_line, on_dropped=on_dropped)
    while tailer.poll():
        pass
    tailer.close()
    return tailer.stats
