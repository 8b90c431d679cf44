"""Compile redline's hot modules with mypyc, in place or into a wheel's staging directory, or
remove what it built.

    .venv/bin/python tools/compile.py [--root DIR] [--opt-level 3]   # build in place
    .venv/bin/python tools/compile.py --build-lib DIR                # build into DIR
    .venv/bin/python tools/compile.py --clean [--root DIR]           # back to pure Python
    python3 tools/compile.py --list-sources                          # what a build reads

The modules are redline.compiled.MYPYC_MODULES. Each gets an extension file beside its `.py`
(`red.cpython-311-x86_64-linux-gnu.so`), and all share one library at the root,
`redline__mypyc.<suffix>`, which holds the compiled code (the per-module files are small shims
that load it). Python then imports the extension instead of the source; REDLINE_PURE=1 still
imports the sources (redline/compiled.py). Each build writes redline/mypyc_build.json, the
record of the sources it compiled, by which redline tells a stale build and runs the sources
instead of it.

hatch_build.py runs this file at install (`pip install .`, `pip install -e .`); `make install`
therefore rebuilds when a compiled module's source changes (the Makefile's stamp depends on
`--list-sources`).

Why setuptools driven by hand, not `setup.py build_ext`: mypyc produces setuptools Extensions,
and setuptools' own command line reads pyproject.toml, whose PEP 639 `license = "..."` string
older setuptools refuse. A bare Distribution reads no configuration file.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from setuptools import Extension  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
GROUP = "redline"  # the shared library's name: redline__mypyc.<suffix>
WORK_DIR = Path("build") / "mypyc"  # generated C and objects, under the root (gitignored)


def compiled_py(root: Path = ROOT) -> ModuleType:
    """redline/compiled.py of the tree at `root`, loaded by path: importing the redline package
    would install its finder and import what a build has yet to build."""
    spec = importlib.util.spec_from_file_location("_redline_compiled", root / "redline" /
                                                  "compiled.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compiled_modules(root: Path = ROOT) -> tuple[str, ...]:
    """MYPYC_MODULES read from the source tree."""
    names: tuple[str, ...] = compiled_py(root).MYPYC_MODULES
    return names


def source_path(module: str) -> str:
    return module.replace(".", "/") + ".py"


def mypyc_extensions(root: Path = ROOT, opt_level: str = "3") -> list[Extension]:
    """setuptools Extensions for the compiled modules; the current directory must be `root`
    (mypyc names modules and writes its C files relative to it, and reads the mypy settings
    of its pyproject.toml)."""
    from mypyc.build import mypycify

    if Path.cwd().resolve() != root.resolve():
        raise RuntimeError(f"mypyc_extensions: run from {root}, not {Path.cwd()}")
    return mypycify([source_path(module) for module in compiled_modules(root)],
                    opt_level=opt_level, group_name=GROUP, target_dir=str(WORK_DIR))


def build(root: Path, opt_level: str = "3", build_lib: Path | None = None) -> list[str]:
    """Compile the modules, in place or into `build_lib` (a wheel's staging directory), and
    write the build's record; the files written, relative to where they went
    (`redline/exporters/red.cpython-...so`, `redline/mypyc_build.json`)."""
    from setuptools import Distribution

    record_module = compiled_py(root)
    record = record_module.build_record(record_module.MYPYC_MODULES, root)  # before compiling
    previous = Path.cwd()
    os.chdir(root)
    try:
        distribution = Distribution({"name": "redline-mypyc",
                                     "ext_modules": mypyc_extensions(root, opt_level)})
        command = distribution.get_command_obj("build_ext")
        command.inplace = build_lib is None
        command.build_lib = str(build_lib or WORK_DIR / "lib")  # in place: a copy is left here
        command.build_temp = str(WORK_DIR / "temp")
        distribution.run_command("build_ext")
        base = (root if build_lib is None else build_lib).resolve()
        built = [str(Path(command.get_ext_fullpath(extension.name)).resolve()
                     .relative_to(base)) for extension in command.extensions]
    finally:
        os.chdir(previous)
    written = record_module.write_build_record(record, base / "redline")
    return [*built, str(written.relative_to(base))]


def built_files(root: Path) -> Iterator[Path]:
    """The files a build leaves in the tree (not the sources), also of modules that were in
    MYPYC_MODULES when it was built and no longer are."""
    record_module = compiled_py(root)
    record = root / "redline" / record_module.BUILD_RECORD
    modules = set(compiled_modules(root))
    modules |= record_module.staleness(tuple(modules), record, root)[0]
    if record.exists():
        yield record
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        yield from root.glob(f"{GROUP}__mypyc*{suffix}")
        for module in sorted(modules):
            yield from root.glob(module.replace(".", "/") + suffix)


def clean(root: Path) -> list[Path]:
    removed = sorted(set(built_files(root)))
    for path in removed:
        path.unlink()
    shutil.rmtree(root / WORK_DIR, ignore_errors=True)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the source tree to build in (default: this checkout)")
    parser.add_argument("--build-lib", type=Path,
                        help="build into this directory instead of in place (a wheel's)")
    parser.add_argument("--clean", action="store_true", help="remove the compiled files")
    parser.add_argument("--list-sources", action="store_true",
                        help="print the sources a build compiles (for the Makefile)")
    parser.add_argument("--opt-level", default="3", choices=("0", "1", "2", "3"))
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.list_sources:
        print(" ".join(source_path(module) for module in compiled_modules(root)))
        return 0
    if args.clean:
        for path in clean(root):
            print(f"removed {path.relative_to(root)}")
        return 0
    for relative in build(root, args.opt_level, args.build_lib and args.build_lib.resolve()):
        print(f"built {relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
