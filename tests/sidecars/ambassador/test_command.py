"""`redline ambassador` flags: a bad value exits 2 before anything starts, naming the flag."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

BASE = ("ambassador", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
        "--upstream", "127.0.0.1:9")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # A value wrongly accepted starts the proxy, which runs until the timeout: a failure too.
    return subprocess.run([sys.executable, "-m", "redline.cli", *BASE, *args],
                          capture_output=True, text=True, timeout=20, check=False,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--max-header-bytes", "0", "expected a whole number of bytes >= 1024, got '0'"),
        ("--max-header-bytes", "512", "expected a whole number of bytes >= 1024, got '512'"),
        ("--max-header-bytes", "-1", "expected a whole number of bytes >= 1024"),
        ("--max-header-bytes", "64k", "expected a whole number of bytes >= 1024, got '64k'"),
        ("--trace-sample-ratio", "1.5", "expected a ratio from 0 to 1, got '1.5'"),
        ("--trace-sample-ratio", "all", "expected a ratio from 0 to 1, got 'all'"),
        ("--buckets", "0.1,x", "expected numbers separated by commas"),
        ("--buckets", "1,0.5", "expected strictly increasing values"),
    ],
)
def test_a_bad_flag_value_exits_2_naming_the_flag(flag: str, value: str, expected: str) -> None:
    result = run(f"{flag}={value}")
    assert result.returncode == 2, result.stderr
    assert flag in result.stderr and expected in result.stderr


def test_a_bad_value_from_the_environment_exits_2_too() -> None:
    result = run(env={"REDLINE_MAX_HEADER_BYTES": "0"})
    assert result.returncode == 2, result.stderr
    assert "REDLINE_MAX_HEADER_BYTES" in result.stderr and ">= 1024" in result.stderr
