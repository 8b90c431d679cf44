"""Following logs as a real `redline adapter` process: start at the end, partial lines, new
files, garbage, and every line counted exactly once across rename and copytruncate rotation."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import promtool_check_metrics
from tests.sidecars.adapter.helpers import (
    AdapterProcess,
    append,
    line,
    without_root_reads,
)


def test_starts_at_the_end_unless_from_start(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    append(log, "".join(line(i) for i in range(100)))
    tail = AdapterProcess("--access-log", str(log))
    whole = AdapterProcess("--access-log", str(log), "--from-start")
    try:
        append(log, "".join(line(i) for i in range(100, 150)))
        assert whole.wait_recorded(150) == 150
        assert tail.wait_recorded(50) == 50
        assert tail.requests_recorded(http_route="/items/{id}") == 50
    finally:
        assert tail.stop() == 0
        assert whole.stop() == 0


def test_a_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.touch()
    adapter = AdapterProcess("--access-log", str(log))
    try:
        text = line(7)
        append(log, text[:40])
        time.sleep(0.4)  # several polls
        assert adapter.requests_recorded() == 0
        assert adapter.value("redline_adapter_parse_errors_total") == 0
        append(log, text[40:])
        assert adapter.wait_recorded(1) == 1
        assert adapter.value("redline_adapter_lines_total") == 1
    finally:
        assert adapter.stop() == 0


def test_files_that_appear_later_are_read_from_their_start(tmp_path: Path) -> None:
    pattern = str(tmp_path / "logs" / "*.log")
    adapter = AdapterProcess("--access-log", pattern)
    try:
        assert adapter.value("redline_adapter_source_up") == 0
        assert adapter.admin("/readyz")[0] == 503
        (tmp_path / "logs").mkdir()
        append(tmp_path / "logs" / "a.log", "".join(line(i) for i in range(10)))
        append(tmp_path / "logs" / "b.log", "".join(line(i) for i in range(5)))
        assert adapter.wait_recorded(15) == 15
        assert adapter.value("redline_adapter_source_up") == 1
        assert adapter.admin("/readyz")[0] == 200
    finally:
        assert adapter.stop() == 0


def test_garbage_binary_and_huge_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.touch()
    adapter = AdapterProcess("--access-log", str(log))
    rng = random.Random(5)
    try:
        append(log, "".join(line(i) for i in range(10)))
        append(log, "garbage\nnot a log line at all\n{\"json\": true}\n")
        append(log, bytes(rng.choice([b for b in range(256) if b != 10]) for _ in range(500))
               + b"\n")
        append(log, b"x" * (1024 * 1024) + b"\n")  # 1 MiB in one line
        append(log, "".join(line(i, 500) for i in range(10, 20)))
        assert adapter.wait_recorded(20) == 20
        assert adapter.wait_value("redline_adapter_parse_errors_total", 5) == 5
        assert adapter.value("redline_adapter_dropped_long_lines_total") == 1
        assert adapter.value("redline_adapter_lines_total") == 25
        assert adapter.requests_recorded(error_type="500") == 10
        promtool_check_metrics(adapter.metrics_text().encode())
    finally:
        assert adapter.stop() == 0


def test_an_unreadable_log_is_down_and_logged_once_until_it_can_be_read(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    append(log, "".join(line(i) for i in range(20)))  # before start: not to be read
    log.chmod(0)
    adapter = AdapterProcess("--access-log", str(log), prefix=without_root_reads())
    try:
        append(log, "".join(line(i) for i in range(20, 30)))  # while unreadable: not lost
        assert adapter.wait_value("redline_adapter_read_errors_total", 4, source=str(log)) >= 4
        assert adapter.value("redline_adapter_source_up", source=str(log)) == 0
        assert adapter.admin("/readyz") == (503, f"cannot read {log}: Permission denied\n")
        promtool_check_metrics(adapter.metrics_text().encode())
        about_it = [entry for entry in adapter.logs if entry.get("path") == str(log)]
        assert [(e["level"], e["error"]) for e in about_it] == [("warning", "Permission denied")]
        log.chmod(0o644)
        assert adapter.wait_recorded(10) == 10
        assert adapter.value("redline_adapter_source_up", source=str(log)) == 1
        assert adapter.admin("/readyz")[0] == 200
        append(log, "".join(line(i) for i in range(30, 35)))
        assert adapter.wait_recorded(15) == 15
        time.sleep(0.2)
        assert adapter.requests_recorded() == 15
        assert [e["msg"] for e in adapter.logs if e.get("path") == str(log)][1:] \
            == ["log file readable again"]
    finally:
        assert adapter.stop() == 0


def test_every_line_once_across_rename_and_copytruncate(tmp_path: Path) -> None:
    """200,000 lines; rotated 10 times by rename and 10 times by copytruncate, alternating."""
    log = tmp_path / "access.log"
    log.touch()
    adapter = AdapterProcess("--access-log", str(log))
    total, per_rotation = 200_000, 10_000
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            handle = log.open("a")
            copies = 0
            for start in range(0, total, 1000):
                handle.write("".join(line(i) for i in range(start, start + 1000)))
                handle.flush()
                written = start + 1000
                if written % per_rotation == 0:  # the last one, too: a copytruncate
                    copies += 1
                    rotated = Path(f"{log}.{copies}")
                    if copies % 2:  # rename and create, as logrotate's default does
                        handle.close()
                        os.rename(log, rotated)
                        handle = log.open("a")
                    else:  # copytruncate: the writer keeps its O_APPEND handle
                        shutil.copyfile(log, rotated)
                        os.truncate(log, 0)
                    time.sleep(0.15)  # rotations minutes apart in life; here a few polls
                time.sleep(0.002)
            handle.close()
        except BaseException as exc:  # surfaced by the test below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    try:
        thread.start()
        thread.join(120)
        assert not errors and not thread.is_alive()
        assert adapter.wait_recorded(total, timeout=30) == total
        time.sleep(0.3)  # nothing more may arrive: exactly once
        assert adapter.requests_recorded() == total
        assert adapter.value("redline_adapter_lines_total") == total
        assert adapter.value("redline_adapter_parse_errors_total") == 0
        assert adapter.value("redline_adapter_rotations_total") == 10
        assert adapter.value("redline_adapter_truncations_total") == 10
    finally:
        assert adapter.stop() == 0


def test_bad_flags_exit_2() -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "OTEL_SERVICE_NAME"}
        return subprocess.run([sys.executable, "-m", "redline.cli", "adapter", *args],
                              capture_output=True, text=True, timeout=30, check=False, env=env)

    result = run("--service", "s", "--access-log", "x", "--format", "regex:(?P<path>\\S+")
    assert result.returncode == 2 and "--format: regex: not a valid regular expression" \
        in result.stderr
    result = run("--service", "s", "--access-log", "x", "--format", "regex:(?P<path>\\S+)")
    assert result.returncode == 2 and "missing status" in result.stderr
    result = run("--service", "s", "--access-log", "x", "--format", "xml")
    assert result.returncode == 2 and "expected one of nginx, apache, json, regex:RE" \
        in result.stderr
    result = run("--access-log", "x")
    assert result.returncode == 2 and "--service" in result.stderr
    result = run("--service", "s", "--access-log", "x", "--rotate-wait", "0")
    assert result.returncode == 2 and "--rotate-wait" in result.stderr \
        and "expected a number of seconds > 0, got '0'" in result.stderr
    result = run("--service", "s", "--access-log", "x", "--buckets", "0.1,x")
    assert result.returncode == 2 and "argument --buckets: expected numbers separated by " \
        "commas, got '0.1,x'" in result.stderr
    result = run("--service", "s", "--access-log", "x", "--max-line-bytes", "-5")
    assert result.returncode == 2 and "argument --max-line-bytes: expected a whole number " \
        ">= 1, got '-5'" in result.stderr
    result = run("--service", "s", "--access-log", "x", "--max-line-bytes", "100")
    assert result.returncode == 2 and "--max-line-bytes: expected at least 1024, got 100" \
        in result.stderr
