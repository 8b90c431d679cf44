"""REDLINE_PURE=1 loads the `.py` sources of the compiled modules even where their extension
files exist (redline/compiled.py)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from redline import compiled
from tests.compiled.packages import source_and_broken_extension

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def package_with_both(tmp_path: Path) -> Iterator[Path]:
    """A package whose module `hot` is there as source and as a (broken) extension file."""
    with source_and_broken_extension(tmp_path, "both_builds",
                                     {"hot": "FROM = 'source'\n"}) as package:
        yield package


def test_python_prefers_the_extension_file(package_with_both: Path) -> None:
    with pytest.raises(ImportError):  # it tried the extension: the premise of the finder
        importlib.import_module("both_builds.hot")


def test_the_finder_loads_the_source_instead(package_with_both: Path) -> None:
    finder = compiled.SourceFinder(["both_builds.hot"], pure=True)
    sys.meta_path.insert(0, finder)
    try:
        module = importlib.import_module("both_builds.hot")
    finally:
        sys.meta_path.remove(finder)
    assert module.FROM == "source"
    assert module.__file__ == str(package_with_both / "hot.py")
    assert not compiled.is_compiled(module)


def test_force_pure_installs_one_pure_finder_and_only_when_asked() -> None:
    before = list(sys.meta_path)
    try:
        # redline/__init__.py installed one (it guards against stale builds): start without
        sys.meta_path[:] = [f for f in before if not isinstance(f, compiled.SourceFinder)]
        assert not compiled.force_pure({})
        assert not compiled.force_pure({compiled.PURE_ENV: "0"})
        assert not any(isinstance(f, compiled.SourceFinder) for f in sys.meta_path)
        assert compiled.force_pure({compiled.PURE_ENV: "1"})
        assert compiled.force_pure({compiled.PURE_ENV: "1"})
        assert compiled.force_pure({})  # already forced: stays so
        finders = [f for f in sys.meta_path if isinstance(f, compiled.SourceFinder)]
        assert len(finders) == 1 and sys.meta_path[0] is finders[0] and finders[0].pure
    finally:
        sys.meta_path[:] = before


def test_every_compiled_module_runs_from_its_source_when_forced() -> None:
    """In a fresh process, compiled build or not: each module of the list is its `.py`."""
    script = ("from redline import compiled; compiled.force_pure(); import importlib; "
              "print('\\n'.join(importlib.import_module(m).__file__ "
              "for m in compiled.MYPYC_MODULES))")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, check=True, env={compiled.PURE_ENV: "1",
                                                        "PATH": "/usr/bin:/bin"})
    files = result.stdout.split()
    assert len(files) == len(compiled.MYPYC_MODULES)
    assert all(file.endswith(".py") for file in files), files
