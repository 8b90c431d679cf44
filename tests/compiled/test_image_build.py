"""The image ships the compiled build: its build stage has what the build hook needs to run
mypyc (a C compiler, Python's headers, tools/compile.py) and fails unless every hot module was
compiled. (No Docker engine runs here, so the Dockerfile is read, not built: hatch_build.py's
wheel build itself is what `make test`'s install runs.)"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build_stage() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    stage = text[text.index("AS build"):text.index("\nFROM ", text.index("AS build"))]
    return stage.replace("\\\n", " ").splitlines()  # continued lines joined, as Docker does


def test_the_build_stage_can_compile_with_mypyc() -> None:
    stage = build_stage()
    # the official python images carry Python.h; a distro's python3 would need python3-dev
    assert stage[0].startswith("AS build") and "FROM python:3.11-slim" in (
        ROOT / "Dockerfile").read_text().split("AS build")[0].splitlines()[-1]
    installs = [line for line in stage if "apt-get install" in line]
    assert installs and "gcc" in installs[0] and "libc6-dev" in installs[0]
    copied = " ".join(line for line in stage if line.startswith("COPY "))
    for needed in ("pyproject.toml", "hatch_build.py", "tools/compile.py", "redline"):
        assert needed in copied, f"the build stage does not copy {needed}"


def test_the_hook_compiles_with_the_pinned_mypy() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requires = pyproject["build-system"]["requires"]
    pinned = [requirement for requirement in requires if requirement.startswith("mypy==")]
    assert pinned and pinned[0] in pyproject["project"]["optional-dependencies"]["dev"]
    assert any(requirement.startswith("setuptools") for requirement in requires)
    hook = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["custom"]
    assert hook["require-runtime-dependencies"]  # mypy needs the dependencies' types
    tree = ast.parse((ROOT / "hatch_build.py").read_text())
    strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)}
    assert {"tools", "compile.py"} <= strings


def test_the_image_build_fails_unless_every_hot_module_is_compiled() -> None:
    runs = " ".join(line for line in build_stage() if line.startswith("RUN "))
    installed = runs.index("pip install --no-cache-dir /src")
    check = runs.index("assert c.compiled_modules() == c.MYPYC_MODULES", installed)
    assert "python -W error -c" in runs[installed:check]  # a stale build fails it too
    assert "from redline import build as b, compiled as c" in runs[installed:check]
