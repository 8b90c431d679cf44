"""The commands' surface: `redline alerts --out` names what it writes; the help of alerts,
dashboards and stat shows a metavar for every value and every default (#15 items 9, 10)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from redline.cli import build_parser

REPO = Path(__file__).resolve().parents[2]


def subcommand(name: str) -> argparse.ArgumentParser:
    parser = build_parser(environ={}, command=name)
    choices = next(a for a in parser._actions
                   if isinstance(a, argparse._SubParsersAction)).choices
    found: argparse.ArgumentParser = choices[name]
    return found


def help_problems(parser: argparse.ArgumentParser) -> list[str]:
    """Flags whose help shows argparse's dest name (`--namespace NAMESPACE` by accident) or
    hides the default."""
    problems = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flag = action.option_strings[-1] if action.option_strings else action.dest
        takes_value = action.nargs != 0
        if takes_value and action.option_strings and action.metavar is None \
                and action.choices is None:
            problems.append(f"{flag}: no metavar (help shows {action.dest.upper()})")
        if "(default" not in (action.help or ""):
            problems.append(f"{flag}: no default in its help")
        elif isinstance(action.default, str | float) and action.default != "" \
                and f"{action.default}" not in (action.help or ""):
            problems.append(f"{flag}: help does not show the default {action.default!r}")
    return problems


@pytest.mark.parametrize("name", ["alerts", "dashboards", "stat"])
def test_help_shows_a_metavar_and_the_default_of_every_flag(name: str) -> None:
    assert help_problems(subcommand(name)) == []


def test_the_help_check_catches_what_argparse_does_by_default() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namespace", help="operator: the namespace")
    parser.add_argument("--name", default="redline", metavar="NAME", help="x (default: other)")
    assert help_problems(parser) == [
        "--namespace: no metavar (help shows NAMESPACE)", "--namespace: no default in its help",
        "--name: help does not show the default 'redline'"]


def test_out_names_every_file_written_on_stderr(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "redline.cli", "alerts", "--slo",
         str(REPO / "deploy/prometheus/slo.yaml"), "--out", str(tmp_path / "rules")],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    written = sorted(str(p) for p in (tmp_path / "rules").iterdir())
    assert len(written) == 4
    assert sorted(result.stderr.splitlines()) == [f"wrote {path}" for path in written]


def test_without_out_the_rules_go_to_stdout_and_nothing_is_written(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "redline.cli", "alerts"],
                            capture_output=True, text=True, timeout=60, check=False,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "groups:" in result.stdout and "wrote" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_out_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where the directory would go\n")
    result = subprocess.run([sys.executable, "-m", "redline.cli", "alerts", "--out", "taken"],
                            capture_output=True, text=True, timeout=60, check=False,
                            cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("redline: --out taken: cannot write taken/")
    assert "Traceback" not in result.stderr
