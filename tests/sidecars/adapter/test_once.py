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


def test_label_sets_past_the_series_cap_fold_and_are_counted(tmp_path: Path) -> None:
    """20 routes x 200 statuses are 4,000 label sets of the duration family: past the cap
    (2,000) the rest are recorded in its _OTHER label set, every request still in the totals,
    and each fold counted in redline_adapter_folded_series_total."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
             "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
             "sierra", "tango"]
    log = tmp_path / "access.log"
    append(log, "".join(
        f'10.1.1.1 - - [26/Nov/2026:16:00:00 +0000] "GET /{word}/list HTTP/1.1" {status} 5 '
        f'"-" "curl" 0.010 -\n' for status in range(200, 400) for word in words))
    result = once("--access-log", str(log))
    assert result.returncode == 0, result.stderr
    families = {family.name: family for family in text_string_to_metric_families(result.stdout)}
    counts = [s for s in families["http_server_request_duration_seconds"].samples
              if s.name.endswith("_count")]
    folded = sum(s.value for s in counts if s.labels["http_route"] == "_OTHER")
    assert sum(s.value for s in counts) == 4000
    assert 2000 <= len(counts) <= 2002 and folded == 2000
    assert families["redline_adapter_folded_series"].samples[0].value == folded
