"""The `redline` command as a user runs it: a real subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from redline import __version__, build


def run(*args: str, env: dict[str, str] | None = None, stdin: str = ""
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "redline.cli", *args], input=stdin, capture_output=True,
        text=True, timeout=60, env={**os.environ, **(env or {})}, check=False,
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    # Which optional compiled modules are in (hatch_build.py): "none" for a pure-Python build.
    assert result.stdout.strip() == f"redline {__version__} (compiled: {build.describe()})"


def test_help_lists_the_subcommands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "routes" in result.stdout


def test_no_subcommand_shows_help_and_exits_2() -> None:
    result = run()
    assert result.returncode == 2
    assert "usage: redline" in result.stdout


def test_routes_from_arguments_and_stdin() -> None:
    result = run("routes", "/users/42", "/healthz")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["/users/42\t/users/{id}", "/healthz\t(ignored)"]
    result = run("routes", stdin="/a/1\n\n/b\n")
    assert result.stdout.splitlines() == ["/a/1\t/a/{id}", "/b\t/b"]


def test_flags_come_from_the_environment(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  - pattern: /live\n    streaming: true\n")
    result = run("routes", "/live", env={"REDLINE_ROUTES": str(routes)})
    assert result.stdout.splitlines() == ["/live\t/live streaming"], result.stderr
    other = tmp_path / "other.yaml"
    other.write_text("routes:\n  - /x/{name}\n")
    result = run("routes", "--routes", str(other), "/x/y", env={"REDLINE_ROUTES": str(routes)})
    assert result.stdout.splitlines() == ["/x/y\t/x/{name}"]  # the command line wins


def test_config_errors_exit_2_naming_file_and_key(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  - pattern: nope\n")
    result = run("routes", "--routes", str(routes), "/a")
    assert result.returncode == 2
    assert f"{routes}: routes[0].pattern: expected a path starting with '/'" in result.stderr
    result = run("routes", "/a", env={"REDLINE_LOG_FORMAT": "xml"})
    assert result.returncode == 2
    assert "REDLINE_LOG_FORMAT: expected one of json, text, got 'xml'" in result.stderr


def test_a_busy_port_names_the_flag_and_exits_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("node-exporter", "--listen", f"127.0.0.1:{port}")
        assert result.returncode == 2
        assert result.stderr == (
            f"redline: --listen 127.0.0.1:{port}: address already in use (another process "
            "listens there); choose another address with --listen H:P\n")
        result = run("ambassador", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9",
                     "--admin", f"127.0.0.1:{port}")
        assert result.returncode == 2
        assert f"redline: --admin 127.0.0.1:{port}: address already in use" in result.stderr
        assert "Traceback" not in result.stderr


def test_an_unknown_flag_gets_the_subcommands_usage_and_a_suggestion() -> None:
    result = run("ambassador", "--lisen", "127.0.0.1:0", "--upstream", "127.0.0.1:9")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: redline ambassador")
    assert result.stderr.endswith(
        "redline ambassador: error: unrecognized arguments: --lisen (did you mean --listen?)\n")


def test_help_names_the_environment_variables() -> None:
    result = run("node-exporter", "--help")
    assert "REDLINE_LISTEN for --listen" in " ".join(result.stdout.split())


def test_a_repeatable_flag_from_the_command_line_replaces_the_environments() -> None:
    from redline.cli import build_parser

    environ = {"REDLINE_FILENAME": "a.yaml,b.yaml"}
    assert build_parser(environ, "inject").parse_args(["inject"]).filename == ["a.yaml",
                                                                               "b.yaml"]
    assert build_parser(environ, "inject").parse_args(
        ["inject", "-f", "c.yaml", "-f", "d.yaml"]).filename == ["c.yaml", "d.yaml"]
