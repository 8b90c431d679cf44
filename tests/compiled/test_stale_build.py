"""A compiled build older than its sources never runs silently: redline records what each build
compiled (redline/mypyc_build.json) and, when a source, or the list of modules, differs from
that record, imports every compiled module from its `.py` and warns (redline/compiled.py)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from redline import compiled
from tests.compiled.packages import source_and_broken_extension

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("stalepkg.hot", "stalepkg.warm")


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    """A package of two modules, each there as source and as a (broken) extension file: an
    import that reaches an extension fails, so a successful one came from the source."""
    with source_and_broken_extension(tmp_path, "stalepkg", {
            name: f"NAME = {name!r}\n" for name in ("hot", "warm")}):
        yield tmp_path


def record(root: Path, modules: tuple[str, ...] = MODULES) -> Path:
    return compiled.write_build_record(compiled.build_record(modules, root), root / "stalepkg")


def import_with(finder: compiled.SourceFinder, name: str) -> str:
    sys.meta_path.insert(0, finder)
    try:
        module = importlib.import_module(name)
    finally:
        sys.meta_path.remove(finder)
    assert module.__file__ is not None
    return module.__file__


def finder(root: Path, pure: bool = False) -> compiled.SourceFinder:
    return compiled.SourceFinder(MODULES, pure, root / "stalepkg" / compiled.BUILD_RECORD, root)


def test_a_fresh_build_is_left_to_python(tree: Path) -> None:
    record(tree)
    with pytest.raises(ImportError):  # Python's own finder took the (broken) extension
        import_with(finder(tree), "stalepkg.hot")


def test_an_edited_source_runs_every_module_from_source_with_a_warning(tree: Path) -> None:
    record(tree)
    (tree / "stalepkg" / "hot.py").write_text("NAME = 'hat'\n")  # same size, new content
    stale = finder(tree)
    with pytest.warns(compiled.StaleBuildWarning, match=r"changed since it was compiled: "
                      r"stalepkg/hot\.py\).*rebuild"):
        assert import_with(stale, "stalepkg.hot").endswith("hot.py")
    # The unchanged module too: mypyc's shared library would bind it to the stale code.
    assert import_with(stale, "stalepkg.warm").endswith("warm.py")


def test_a_touched_but_unchanged_source_is_fresh(tree: Path) -> None:
    record(tree)
    source = tree / "stalepkg" / "hot.py"
    os.utime(source, ns=(1, 1))  # a checkout or a wheel install moves mtimes, not content
    assert compiled.staleness(MODULES, tree / "stalepkg" / compiled.BUILD_RECORD, tree)[1] == ""
    with pytest.raises(ImportError):
        import_with(finder(tree), "stalepkg.hot")


def test_a_build_of_another_module_list_is_stale(tree: Path) -> None:
    (tree / "stalepkg" / "gone.py").write_text("NAME = 'gone'\n")
    (tree / "stalepkg" / f"gone{sysconfig.get_config_var('EXT_SUFFIX')}").write_bytes(b"x")
    record(tree, (*MODULES, "stalepkg.gone"))
    with pytest.warns(compiled.StaleBuildWarning, match="another MYPYC_MODULES"):
        # a module the list no longer names is watched too: the record says it was built
        assert import_with(finder(tree), "stalepkg.gone").endswith("gone.py")


def test_extensions_without_a_record_are_stale(tree: Path) -> None:
    with pytest.warns(compiled.StaleBuildWarning, match="no mypyc_build.json"):
        assert import_with(finder(tree), "stalepkg.hot").endswith("hot.py")


def test_no_build_at_all_is_not_stale(tree: Path) -> None:
    for extension in (tree / "stalepkg").glob(f"*{sysconfig.get_config_var('EXT_SUFFIX')}"):
        extension.unlink()
    assert compiled.staleness(MODULES, tree / "stalepkg" / compiled.BUILD_RECORD, tree) == (
        frozenset(MODULES), "")


def test_the_pure_build_when_forced_needs_no_warning(tree: Path) -> None:
    # (a warning would fail this test: pyproject.toml's filterwarnings makes them errors)
    (tree / "stalepkg" / "hot.py").write_text("NAME = 'edited'\n")
    assert import_with(finder(tree, pure=True), "stalepkg.hot").endswith("hot.py")


def test_the_record_is_the_sources_as_built(tree: Path) -> None:
    path = record(tree)
    entry = json.loads(path.read_text())["modules"]["stalepkg.hot"]
    source = tree / "stalepkg" / "hot.py"
    assert entry["size"] == source.stat().st_size
    assert entry["mtime_ns"] == source.stat().st_mtime_ns
    assert len(entry["sha256"]) == 64


# --- this checkout's build ----------------------------------------------------------------

RECORD = ROOT / "redline" / compiled.BUILD_RECORD
needs_build = pytest.mark.skipif(not RECORD.exists(), reason="no compiled build in this "
                                 "checkout (`make install` builds one where mypyc runs)")


@needs_build
def test_the_installed_build_is_fresh() -> None:
    """`make test` reinstalls when a compiled module's source changes, so its build is the
    sources' (the Makefile's stamp depends on them)."""
    assert compiled.staleness(compiled.MYPYC_MODULES, RECORD) == (
        frozenset(compiled.MYPYC_MODULES), "")
    assert compiled.compiled_modules() == compiled.MYPYC_MODULES


@needs_build
def test_the_real_build_once_stale_runs_its_sources(tmp_path: Path) -> None:
    """The record copied with one source's hash and size changed stands for an edit (the tree's
    sources are not touched): a new process runs every hot module from its `.py`, and says so."""
    recorded = json.loads(RECORD.read_text())
    edited = compiled.MYPYC_MODULES[-1]
    recorded["modules"][edited].update(size=-1, sha256="0" * 64)
    stale_record = tmp_path / compiled.BUILD_RECORD
    stale_record.write_text(json.dumps(recorded))
    script = f"""
import importlib, sys
from pathlib import Path
from redline import compiled
sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, compiled.SourceFinder)]
compiled.install_finder({{}}, Path({str(stale_record)!r}))
for name in compiled.MYPYC_MODULES:
    print(importlib.import_module(name).__file__)
"""
    env = {key: value for key, value in os.environ.items() if key != compiled.PURE_ENV}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=True, timeout=60)
    files = result.stdout.split()
    assert len(files) == len(compiled.MYPYC_MODULES)
    assert all(file.endswith(".py") for file in files), files
    assert "StaleBuildWarning" in result.stderr
    assert compiled.source_of(edited).relative_to(ROOT).as_posix() in result.stderr


@pytest.mark.skipif(os.environ.get("REDLINE_EXPECT_COMPILED") != "1",
                    reason="only where the build is expected to compile (make pytest says so)")
def test_make_test_runs_the_compiled_build() -> None:
    """The build hook falls back to pure Python rather than fail an install; `make test` must
    not pass on that fallback unnoticed, so it runs the suite with REDLINE_EXPECT_COMPILED=1."""
    assert compiled.compiled_modules() == compiled.MYPYC_MODULES, compiled.describe()
