"""`redline ambassador` flags: a bad value exits 2 before anything starts, naming the flag."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import cast

import pytest

from tests.sidecars.ambassador.conftest import AmbassadorProcess

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
        ("--http2-max-early-resets", "0", "expected a whole number >= 1, got '0'"),
        ("--http2-max-streams-per-read", "many", "expected a whole number >= 1, got 'many'"),
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


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--listen", "127.0.0.1:0"),
         "--listen, --upstream: expected them in pairs, got 2 --listen and 1 --upstream"),
        (("--protocol", "opaque", "--protocol", "tls"),
         "--protocol: expected none (every port auto) or one per --listen/--upstream pair, "
         "got 2 for 1 pairs"),
        (("--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:10", "--protocol", "opaque"),
         "--protocol: expected none (every port auto) or one per --listen/--upstream pair, "
         "got 1 for 2 pairs"),
        (("--mode", "outbound", "--protocol", "opaque"),
         "--mode outbound: expected one --listen/--upstream pair of HTTP/1"),
        (("--mode", "outbound", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:10"),
         "--mode outbound: expected one --listen/--upstream pair of HTTP/1"),
        (("--listen", "127.0.0.1:0", "--upstream", "https://127.0.0.1:10", "--protocol", "auto",
          "--protocol", "tls"),
         "--protocol tls: --upstream https://... originates TLS, which only HTTP/1 and h2c "
         "ports do"),
        (("--protocol", "http"), "argument --protocol: invalid choice: 'http'"),
        (("--tcp-idle-timeout", "-1"), "expected a number of seconds >= 0, got '-1'"),
        (("--detect-timeout", "0"), "expected a number of seconds > 0"),
    ],
)
def test_pairs_that_do_not_pair_exit_2_naming_the_flags(args: tuple[str, ...],
                                                       expected: str) -> None:
    result = run(*args)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr


def test_pairs_from_the_environment_are_comma_separated_lists() -> None:
    env = {"REDLINE_LISTEN": "127.0.0.1:0,127.0.0.1:0", "REDLINE_UPSTREAM": "127.0.0.1:9",
           "REDLINE_PROTOCOL": "opaque,tls"}
    result = subprocess.run([sys.executable, "-m", "redline.cli", "ambassador", "--admin",
                             "127.0.0.1:0"], capture_output=True, text=True, timeout=20,
                            check=False, env={**os.environ, **env})
    assert result.returncode == 2, result.stderr
    assert "got 2 --listen and 1 --upstream" in result.stderr


def test_several_ports_from_the_environment_start() -> None:
    env = {"REDLINE_LISTEN": "127.0.0.1:0,127.0.0.1:0",
           "REDLINE_UPSTREAM": "127.0.0.1:9,127.0.0.1:10", "REDLINE_PROTOCOL": "opaque,tls",
           "REDLINE_DRAIN_DELAY": "0"}
    proc = AmbassadorProcess(env=env, listen=False)
    try:
        assert [(port["upstream"], port["protocol"])
                for port in cast(list[dict[str, str]], proc.started["ports"])] == [
            ("127.0.0.1:9", "opaque"), ("127.0.0.1:10", "tls")]
        assert len(set(proc.ports)) == 2
    finally:
        assert proc.stop() == 0


def test_the_http2_rapid_reset_limits_reach_the_ports_limits() -> None:
    from redline.cli import build_parser
    from redline.sidecars.ambassador.command import config_from_args

    args = build_parser({"REDLINE_HTTP2_MAX_EARLY_RESETS": "7"}).parse_args(
        [*BASE, "--http2-max-streams-per-read", "32"])
    limits = config_from_args(args).limits
    assert (limits.http2_max_streams_per_read, limits.http2_max_early_resets) == (32, 7)
