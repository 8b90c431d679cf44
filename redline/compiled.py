"""Which of redline's hot modules run compiled by mypyc, and REDLINE_PURE=1 to run none.

The modules in MYPYC_MODULES may exist twice side by side: the `.py` source and an
extension module compiled from it by mypyc (`tools/compile.py`, or the wheel's build hook).
Python imports the extension when both exist. REDLINE_PURE=1 makes redline import the `.py`
files instead (`force_pure()`, installed from `redline/__init__.py` before any of them is
imported), so the same installation can run and test both builds.

This file imports nothing but the standard library: tools/compile.py (and through it a build
hook) loads it by path to read MYPYC_MODULES. redline/build.py reports the optional C modules.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

# The one list of modules compiled by mypyc. Each compiles unchanged from its mypy --strict
# clean source; what keeps the other candidates out is in docs/build.md.
MYPYC_MODULES: tuple[str, ...] = (
    "redline.exporters.instruments",  # histogram children, gauges, counters
    "redline.exporters.red",  # the RED recorders
    "redline.exporters.routes",  # the route templater
    "redline.sidecars.ambassador.http1",  # HTTP/1 framing
    "redline.sidecars.adapter.formats",  # access-log lines to events
    "redline.sidecars.adapter.pipeline",  # events to observations, per block
)

PURE_ENV = "REDLINE_PURE"
MYPYC, PURE = "mypyc", "pure"


def pure_forced(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    return environ.get(PURE_ENV, "") not in ("", "0")


class PureSourceFinder(importlib.abc.MetaPathFinder):
    """Finds the `.py` source of the compiled modules, ahead of the extension modules."""

    def __init__(self, modules: Sequence[str]) -> None:
        self.modules = frozenset(modules)

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.modules or path is None:
            return None  # anything else: the usual finders
        leaf = fullname.rpartition(".")[2] + ".py"
        for directory in path:
            source = os.path.join(directory, leaf)
            if os.path.isfile(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def force_pure(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Install the PureSourceFinder when REDLINE_PURE is set; whether it is installed.

    Must run before the compiled modules are imported: a module already imported stays what it
    is (redline/__init__.py calls this first).
    """
    if not pure_forced(environ):
        return False
    if not any(isinstance(finder, PureSourceFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, PureSourceFinder(MYPYC_MODULES))
    return True


def _is_extension(path: str | None) -> bool:
    return (path or "").endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def is_compiled(module: ModuleType) -> bool:
    return _is_extension(getattr(module, "__file__", None))


def runs_compiled(name: str) -> bool:
    """Whether module `name` is (or, not imported yet, would be) its compiled extension."""
    module = sys.modules.get(name)
    if module is not None:
        return is_compiled(module)
    spec = importlib.util.find_spec(name)  # through the finders, REDLINE_PURE's first
    return spec is not None and _is_extension(spec.origin)


def compiled_modules() -> tuple[str, ...]:
    """Those of MYPYC_MODULES that this process runs compiled (found, not imported: cheap
    enough for `redline --version` and every scrape's build info)."""
    return tuple(name for name in MYPYC_MODULES if runs_compiled(name))


def build_name() -> str:
    """`mypyc` when any hot module runs compiled, else `pure`."""
    return MYPYC if compiled_modules() else PURE


def describe() -> str:
    """For `redline --version`: `mypyc (6 of 6 hot modules compiled)` or `pure`."""
    compiled = compiled_modules()
    if not compiled:
        return PURE
    return f"{MYPYC} ({len(compiled)} of {len(MYPYC_MODULES)} hot modules compiled)"
