"""Shared by the adapter's process tests (and tests/abuse): a real `redline adapter`, nginx
lines, appending to a log, and a command prefix that makes a mode-000 file unreadable."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tests.conftest import tool_path
from tests.process import SidecarProcess


class AdapterProcess(SidecarProcess):
    def __init__(self, *args: str, prefix: Sequence[str] = ()) -> None:
        super().__init__("adapter", "--poll-interval", "0.05", *args, started="adapter started",
                         prefix=prefix)


def line(i: int, status: int = 200) -> str:
    return (f'10.1.{i % 256}.{i % 200} - - [26/Nov/2026:16:00:00 +0000] "GET /items/{i} HTTP/1.1"'
            f' {status} {i % 5000} "-" "Mozilla/5.0" 0.{i % 1000:03d} -\n')


def append(path: Path, text: str | bytes) -> None:
    with path.open("ab") as handle:
        handle.write(text.encode() if isinstance(text, str) else text)


def without_root_reads() -> list[str]:
    """A command prefix under which a file of mode 000 cannot be read. Root could read it
    (it has CAP_DAC_OVERRIDE), so as root the process runs under `setpriv` without that
    capability and CAP_DAC_READ_SEARCH: the kernel's own permission check then denies it."""
    if os.geteuid() != 0:
        return []
    return [tool_path("setpriv"), "--bounding-set=-dac_override,-dac_read_search"]


