"""`redline adapter --once` as a real process: a log it cannot read is a config error (exit 2,
nothing on stdout), since with --once nothing waits for the file to appear or become readable."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.sidecars.adapter.helpers import append, line, without_root_reads


def once(*args: str, prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "redline.cli", "adapter", "--service",
                           "shop", "--once", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_once_reads_an_existing_log_and_prints_its_metrics(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    append(log, "".join(line(i) for i in range(5)))
    result = once("--access-log", str(log))
    assert result.returncode == 0, result.stderr
    counts = [s.value for family in text_string_to_metric_families(result.stdout)
              for s in family.samples if s.name == "http_server_request_duration_seconds_count"]
    assert sum(counts) == 5


def test_once_with_a_missing_file_exits_2_naming_the_flag_and_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.log"
    result = once("--access-log", str(missing))
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"--access-log: no file matches {missing}" in result.stderr
    assert "Traceback" not in result.stderr


def test_once_with_a_glob_that_matches_nothing_exits_2(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    append(log, line(1))
    pattern = str(tmp_path / "*.jsonl")
    # The first pattern is fine: one that fails still fails the whole run.
    result = once("--access-log", str(log), "--access-log", pattern)
    assert (result.returncode, result.stdout) == (2, "")
    assert f"--access-log: no file matches {pattern}" in result.stderr


def test_once_with_an_unreadable_file_exits_2_with_the_reason(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    append(log, line(1))
    log.chmod(0)
    result = once("--access-log", str(log), prefix=without_root_reads())
    assert (result.returncode, result.stdout) == (2, "")
    assert f"--access-log: cannot read {log}: Permission denied" in result.stderr


def test_once_with_a_directory_as_the_log_exits_2(tmp_path: Path) -> None:
    result = once("--access-log", str(tmp_path))
    assert (result.returncode, result.stdout) == (2, "")
    assert f"--access-log: cannot read {tmp_path}: {os.strerror(21)}" in result.stderr
