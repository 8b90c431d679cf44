"""Real cgroups on this machine for the tests: made, filled with a process, and always removed.

The machine mounts cgroup v1 controllers under /sys/fs/cgroup/<controller> (and an empty
cgroup v2 tree at /sys/fs/cgroup/unified, which has PSI files): a cgroup is one directory of the
same name under each controller used. Creating them needs root; a test that cannot is failed
with the reason, never skipped.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

CGROUPFS = Path("/sys/fs/cgroup")
BUSY_LOOP = ["sh", "-c", "while :; do :; done"]


def require_v1_root() -> None:
    missing = [c for c in ("cpu", "cpuacct", "memory") if not (CGROUPFS / c / "tasks").exists()]
    if missing:
        pytest.fail(f"these tests need cgroup v1 {', '.join(missing)} under {CGROUPFS}, as "
                    f"this project's test machine mounts them")
    if os.geteuid() != 0:
        pytest.fail("these tests create cgroups, which needs root")


@contextmanager
def cgroup(name: str, controllers: Sequence[str],
           settings: dict[str, str] | None = None, inner: str = "") -> Iterator[str]:
    """`/<name>-<pid><inner>` under each controller (and `unified`, for PSI), with `settings`
    written (`cpu/cpu.cfs_quota_us` -> `10000`) into the innermost; every directory made is
    removed on exit, its processes killed first."""
    require_v1_root()
    path = f"/{name}-{os.getpid()}{inner}"
    levels = path.strip("/").split("/")
    made: list[Path] = []
    try:
        for controller in (*controllers, "unified"):
            for depth in range(1, len(levels) + 1):
                directory = CGROUPFS / controller / "/".join(levels[:depth])
                directory.mkdir()
                made.append(directory)
        for file, value in (settings or {}).items():
            controller, _, setting = file.partition("/")
            try:
                (CGROUPFS / controller / path.lstrip("/") / setting).write_text(value)
            except OSError as exc:
                pytest.fail(f"the kernel refused {value!r} in {controller}/{setting}: {exc}")
        yield path
    finally:
        for directory in reversed(made):
            _remove(directory)


def _remove(directory: Path) -> None:
    deadline = time.monotonic() + 5
    while True:
        try:
            pids = [int(p) for p in (directory / "cgroup.procs").read_text().split()]
        except OSError:
            pids = []
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def running_in(path: str, controllers: Sequence[str], argv: Sequence[str]
               ) -> Iterator[subprocess.Popen[bytes]]:
    """`argv` started inside `path` (joined before it execs, so all its CPU is counted);
    killed on exit."""
    joins = " ".join(f"echo $$ > {CGROUPFS / c / path.lstrip('/') / 'cgroup.procs'};"
                     for c in (*controllers, "unified"))
    proc = subprocess.Popen(["sh", "-c", f"{joins} exec {shlex.join(argv)}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
