"""What every side-by-side benchmark needs: free loopback ports and the RSS of a process."""

from __future__ import annotations

from pathlib import Path

from redline.ports import free_port, wait_port

__all__ = ["free_port", "rss_mb", "wait_port"]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")
