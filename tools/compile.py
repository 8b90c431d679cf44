"""Compile redline's hot modules with mypyc, in place, or remove what it built.

    .venv/bin/python tools/compile.py [--root DIR] [--opt-level 3]   # build
    .venv/bin/python tools/compile.py --clean [--root DIR]           # back to pure Python

The modules are redline.compiled.MYPYC_MODULES. Each gets an extension file beside its `.py`
(`red.cpython-311-x86_64-linux-gnu.so`), and all share one library at the root,
`redline__mypyc.<suffix>`, which holds the compiled code (the per-module files are small shims
that load it). Python then imports the extension instead of the source; REDLINE_PURE=1 still
imports the sources (redline/compiled.py).

Why setuptools driven by hand, not `setup.py build_ext`: mypyc produces setuptools Extensions,
and setuptools' own command line reads pyproject.toml, whose PEP 639 `license = "..."` string
the setuptools this venv has refuses. A bare Distribution reads no configuration file.

`mypyc_extensions(root)` is what a build hook calls to get the same Extensions.
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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from setuptools import Extension  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
GROUP = "redline"  # the shared library's name: redline__mypyc.<suffix>
WORK_DIR = Path("build") / "mypyc"  # generated C and objects, under the root (gitignored)


def compiled_modules(root: Path = ROOT) -> tuple[str, ...]:
    """MYPYC_MODULES read from the source tree, without importing the redline package."""
    source = root / "redline" / "compiled.py"
    spec = importlib.util.spec_from_file_location("_redline_compiled", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names: tuple[str, ...] = module.MYPYC_MODULES
    return names


def source_path(module: str) -> str:
    return module.replace(".", "/") + ".py"


def mypyc_extensions(root: Path = ROOT, opt_level: str = "3") -> list[Extension]:
    """setuptools Extensions for the compiled modules; the current directory must be `root`
    (mypyc names modules and writes its C files relative to it)."""
    from mypyc.build import mypycify

    if Path.cwd().resolve() != root.resolve():
        raise RuntimeError(f"mypyc_extensions: run from {root}, not {Path.cwd()}")
    return mypycify([source_path(module) for module in compiled_modules(root)],
                    opt_level=opt_level, group_name=GROUP, target_dir=str(WORK_DIR))


def build(root: Path, opt_level: str = "3", build_lib: Path | None = None) -> list[str]:
    """Compile the modules, in place or into `build_lib` (a wheel's staging directory); the
    files built, relative to where they went (`redline/exporters/red.cpython-...so`)."""
    from setuptools import Distribution

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
        base = root if build_lib is None else build_lib
        return [str(Path(command.get_ext_fullpath(extension.name)).resolve()
                    .relative_to(base.resolve())) for extension in command.extensions]
    finally:
        os.chdir(previous)


def built_files(root: Path) -> Iterator[Path]:
    """The extension files a build leaves in the tree (not the sources)."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        yield from root.glob(f"{GROUP}__mypyc*{suffix}")
        for module in compiled_modules(root):
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
    parser.add_argument("--clean", action="store_true", help="remove the compiled files")
    parser.add_argument("--opt-level", default="3", choices=("0", "1", "2", "3"))
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.clean:
        for path in clean(root):
            print(f"removed {path.relative_to(root)}")
        return 0
    for relative in build(root, args.opt_level):
        print(f"built {relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
