"""The README's tour, run as a new user runs it: every `console` block's commands in order, in
a copy of the repository, each output compared with what the README shows. The README cannot
drift from what redline does.

A block is skipped when the line before it says why: `<!-- tour: needs a cluster -->` (or
Docker). `<!-- tour: values vary -->` compares metric lines by name only (a node's load or free
space are not the README's). A command ending in `&` starts a background process, killed at the
end; the commands after it are retried for a few seconds while it starts, as a person would.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
SKIP = re.compile(r"<!-- tour: needs (a cluster|Docker) -->")
VALUES_VARY = "<!-- tour: values vary -->"
HEREDOC = re.compile(r"<<-?'?(\w+)'?")
METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? \S+$")
RETRY_SECONDS = 10.0


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)
    values_vary: bool = False


def tour_steps(text: str) -> list[Step]:
    """The commands of every console block not marked as skipped, with their outputs."""
    steps: list[Step] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if line.strip() != "```console":
            continue
        before = lines[index - 2] if index >= 2 else ""
        skipped = bool(SKIP.search(before))
        vary = VALUES_VARY in before
        while index < len(lines) and lines[index].strip() != "```":
            line = lines[index]
            index += 1
            if skipped or line.startswith("#"):
                continue
            if line.startswith("$ "):
                command = line[2:]
                heredoc = HEREDOC.search(command)
                if heredoc:  # the document's lines belong to the command
                    while index < len(lines) and lines[index] != heredoc.group(1):
                        command += "\n" + lines[index]
                        index += 1
                    command += "\n" + lines[index]
                    index += 1
                steps.append(Step(command, values_vary=vary))
            elif steps:
                steps[-1].expected.append(line)
        index += 1
    return steps


def matches(step: Step, output: str) -> bool:
    """Line by line, blank lines at the end aside (a README block does not show them)."""
    got, expected = _trimmed(output.splitlines()), _trimmed(step.expected)
    if not step.values_vary:
        return got == expected
    return [_metric_name(line) for line in got] == [_metric_name(line) for line in expected]


def _trimmed(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _metric_name(line: str) -> str:
    found = METRIC_LINE.match(line)
    return found.group(1) if found else line


def test_the_parser_reads_commands_outputs_and_markers() -> None:
    text = "\n".join([
        "```console", "$ echo a", "a", "# a comment", "$ cat > f <<'EOF'", "x: 1", "EOF",
        "```", "<!-- tour: needs a cluster -->", "```console", "$ kubectl apply -k .", "```",
        VALUES_VARY, "```console", "$ load", "node_load1 0.13", "```"])
    steps = tour_steps(text)
    assert [s.command for s in steps] == ["echo a", "cat > f <<'EOF'\nx: 1\nEOF", "load"]
    assert steps[0].expected == ["a"]
    assert matches(steps[2], "node_load1 7.5\n") and not matches(steps[0], "b\n")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The repository's tracked files in a temporary directory (the tour writes files), with
    the installed virtualenv beside them as `make test` leaves it."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target, follow_symlinks=False)  # fixture trees hold links
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    return tmp_path


def test_the_readme_tour_runs_as_written(checkout: Path) -> None:
    steps = tour_steps(README.read_text(encoding="utf-8"))
    assert len(steps) >= 10, "the tour lost its commands"
    env = {key: value for key, value in os.environ.items()
           if key != "VIRTUAL_ENV" and not key.startswith("REDLINE_")}
    # PATH as a new shell has it: the tour itself must put redline on it.
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if not p.startswith(str(ROOT)) or "/.tools/" in p)
    with subprocess.Popen(["bash", "--norc", "--noprofile"], cwd=checkout, env=env,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as shell:
        try:
            background_started = False
            for step in steps:
                deadline = time.monotonic() + (RETRY_SECONDS if background_started else 0)
                while True:  # a failing command is tried again while a background one starts
                    status, output = _run(shell, step.command, checkout)
                    if (status == 0 and matches(step, output)) or time.monotonic() > deadline:
                        break
                    time.sleep(0.3)
                assert matches(step, output), (
                    f"README command: {step.command}\nexpected:\n" + "\n".join(step.expected)
                    + f"\ngot:\n{output}")
                background_started |= step.command.rstrip().endswith("&")
        finally:
            _run(shell, "kill $(jobs -p) 2>/dev/null; wait", checkout)


def _run(shell: subprocess.Popen[str], command: str, workdir: Path) -> tuple[int, str]:
    """One command in the tour's shell: its exit status and output (stdout and stderr).
    Background commands' own output goes to a log file, as it would scroll by for a person."""
    assert shell.stdin is not None and shell.stdout is not None
    marker = f"@@tour-{time.monotonic_ns()}@@"
    if command.rstrip().endswith("&"):
        command = command.rstrip()[:-1] + f" >>{workdir / 'background.log'} 2>&1 &"
    shell.stdin.write(f"{command}\necho {marker} $?\n")
    shell.stdin.flush()
    lines: list[str] = []
    for line in shell.stdout:
        if line.startswith(marker):
            return int(line.split()[1]), "".join(lines)
        lines.append(line)
    raise AssertionError(f"the tour's shell ended during: {command}\n{''.join(lines)}")
