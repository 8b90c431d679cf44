"""`--help` of every subcommand, as a user runs it: every value a flag takes has a meaningful
name (never argparse's upper-case dest), and every default is shown.

The flags come from the parser (to know each default); the text checked is the real `--help`
output of a `redline` process, with wide COLUMNS so no help line wraps.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys

import pytest

from redline.cli import SUBCOMMANDS, build_parser


def subcommand_parser(command: str) -> argparse.ArgumentParser:
    parser = build_parser({}, command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: argparse.ArgumentParser = sub.choices[command]
    return found


def help_entries(text: str) -> dict[str, str]:
    """Each option's help line by its flags' text (`--admin H:P` -> its help)."""
    entries: dict[str, str] = {}
    current = ""
    for raw in text.splitlines():
        if re.match(r"^  -", raw):
            invocation, _, rest = raw.strip().partition("  ")
            current = invocation
            entries[current] = rest.strip()
        elif current and raw.startswith("    "):
            entries[current] = f"{entries[current]} {raw.strip()}".strip()
        else:
            current = ""
    return entries


def shown(default: object) -> str:
    """How a default reads in help text."""
    if isinstance(default, float) and math.isinf(default):
        return "no limit"
    if isinstance(default, int):
        return str(default)
    if isinstance(default, float):
        return f"{default:g}"
    if isinstance(default, tuple) and len(default) == 2 and isinstance(default[1], int):
        return f"{default[0]}:{default[1]}"
    if isinstance(default, tuple):
        return ",".join(f"{value:g}" for value in default)
    return str(default)


def help_problems(parser: argparse.ArgumentParser, help_text: str) -> list[str]:
    """Flags shown with argparse's dest name, or whose default the help does not show."""
    entries = help_entries(help_text)
    problems = []
    for action in parser._actions:
        if not action.option_strings or action.nargs == 0:  # positionals; on/off switches
            continue
        flag = action.option_strings[-1]
        invocation = next((i for i in entries
                           if any(part.split(" ")[0] == flag for part in i.split(", "))), None)
        if invocation is None:
            problems.append(f"{flag}: not in --help")
            continue
        if action.metavar is None and action.choices is None:
            problems.append(f"{flag}: shown as {invocation!r}, argparse's dest name")
        help_text = entries[invocation]
        if action.default not in (None, [], ()) and (
                "default" not in help_text
                or shown(action.default) not in help_text.replace(", ", ",")):
            problems.append(f"{flag}: default {shown(action.default)!r} not in {help_text!r}")
    return problems


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_help_names_every_value_and_shows_every_default(command: str) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("REDLINE_") and k != "OTEL_SERVICE_NAME"}
    result = subprocess.run([sys.executable, "-m", "redline.cli", command, "--help"],
                            capture_output=True, text=True, timeout=30, check=True,
                            env={**env, "COLUMNS": "2000"})
    problems = help_problems(subcommand_parser(command), result.stdout)
    assert not problems, "\n".join(problems)


def test_the_check_catches_what_argparse_does_by_default(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setenv("COLUMNS", "2000")
    parser = argparse.ArgumentParser()
    parser.add_argument("--namespace", default="shop", help="the namespace")
    parser.add_argument("--name", default="redline", metavar="NAME", help="x (default: other)")
    parser.add_argument("--on", action="store_true", help="a switch: its default is off")
    assert help_problems(parser, parser.format_help()) == [
        "--namespace: shown as '--namespace NAMESPACE', argparse's dest name",
        "--namespace: default 'shop' not in 'the namespace'",
        "--name: default 'redline' not in 'x (default: other)'"]
