"""Which of redline's hot modules run compiled by mypyc; REDLINE_PURE=1 to run none; and the
guard that keeps a stale compiled build from running silently.

The modules in MYPYC_MODULES may exist twice side by side: the `.py` source and an
extension module compiled from it by mypyc (hatch_build.py at install, or `tools/compile.py`).
Python imports the extension when both exist. redline/__init__.py installs `SourceFinder`
ahead of Python's own finders (`install_finder()`), before any of them is imported; it makes
redline import the `.py` files instead when

- REDLINE_PURE=1 is set, so the same installation can run and test both builds; or
- the compiled build is stale: a build records each source it compiled in BUILD_RECORD
  (its size, mtime and sha256); an edited source, a changed MYPYC_MODULES or an extension
  without a record means the extensions are not the code on disk. Then every compiled module
  loads from source, not only the edited one (mypyc compiles them into one shared library whose
  modules call each other's compiled code directly), and a StaleBuildWarning says what changed
  and how to rebuild.

This file imports nothing but the standard library: tools/compile.py (and through it the build
hook) loads it by path to read MYPYC_MODULES and write the record. redline/build.py reports the
optional C modules.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType

# The one list of modules compiled by mypyc. Each compiles unchanged from its mypy --strict
# clean source; what keeps the other candidates out is in docs/build.md.
MYPYC_MODULES: tuple[str, ...] = (
    "redline.exporters.instruments",  # histogram children, gauges, counters
    "redline.exporters.red",  # the RED recorders
    "redline.exporters.last_series",  # the series their last request used
    "redline.exporters.routes",  # the route templater
    "redline.sidecars.ambassador.http1",  # HTTP/1 heads
    "redline.sidecars.ambassador.http1_body",  # HTTP/1 bodies: where each ends, its size
    # the connection pair: its handlers' base, ClientSide in its three layers, the upstream side
    "redline.sidecars.ambassador.handler",
    "redline.sidecars.ambassador.http1_requests",
    "redline.sidecars.ambassador.http1_upgrade",
    "redline.sidecars.ambassador.http1_client",
    "redline.sidecars.ambassador.http1_upstream",
    "redline.sidecars.ambassador.replay",  # what a reconnect to the upstream sends again
    "redline.exporters.tcp",  # the TCP meter each connection counts its bytes in
    "redline.sidecars.ambassador.observe",  # the exchange and its observers (begin, finish)
    "redline.sidecars.adapter.formats",  # access-log lines to events
    "redline.sidecars.adapter.pipeline",  # events to observations, per block
)

PURE_ENV = "REDLINE_PURE"
MYPYC, PURE = "mypyc", "pure"
# Written by each build beside this file (gitignored, like the extensions).
BUILD_RECORD = "mypyc_build.json"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the directory holding redline/
REBUILD_HINT = ("rebuild (`make install`, `pip install .`, or `python tools/compile.py`) "
                "or remove the build (`python tools/compile.py --clean`)")


class StaleBuildWarning(RuntimeWarning):
    """The compiled build is not the code on disk: redline runs the `.py` sources instead."""


def pure_forced(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    return environ.get(PURE_ENV, "") not in ("", "0")


def source_of(module: str, root: Path = PACKAGE_ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def source_record(path: Path) -> dict[str, int | str]:
    """What a build remembers of a source: size and mtime to tell it unchanged at the cost of a
    stat, and its sha256 for when the mtime moved but the content did not (a checkout, a wheel
    install)."""
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def build_record(modules: Iterable[str], root: Path = PACKAGE_ROOT) -> dict[str, object]:
    """The record of a build of `modules`, taken before compiling them: a source edited while
    they compile is then found changed (and the build not trusted) rather than missed."""
    return {"modules": {module: source_record(source_of(module, root)) for module in modules}}


def write_build_record(record: dict[str, object], package_dir: Path) -> Path:
    path = package_dir / BUILD_RECORD
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return path


def _unchanged(path: Path, recorded: dict[str, int | str]) -> bool:
    try:
        stat = path.stat()
        if stat.st_size != recorded.get("size"):
            return False
        if stat.st_mtime_ns == recorded.get("mtime_ns"):
            return True
        return hashlib.sha256(path.read_bytes()).hexdigest() == recorded.get("sha256")
    except OSError:
        return False


def _has_extension(module: str, root: Path) -> bool:
    base = root.joinpath(*module.split("."))
    return any(base.with_name(base.name + suffix).exists()
               for suffix in importlib.machinery.EXTENSION_SUFFIXES)


def staleness(modules: Sequence[str], record_path: Path,
              root: Path = PACKAGE_ROOT) -> tuple[frozenset[str], str]:
    """The modules a compiled build may have built (those recorded, and `modules`), and why
    that build is stale ("" when it is not, or when there is none)."""
    try:
        record = json.loads(record_path.read_text())
        recorded: dict[str, dict[str, int | str]] = record["modules"]
    except FileNotFoundError:
        orphans = [module for module in modules if _has_extension(module, root)]
        if orphans:
            return frozenset(modules), (f"{', '.join(orphans)} compiled, but no {BUILD_RECORD} "
                                        "says from which sources")
        return frozenset(modules), ""
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return frozenset(modules), f"{record_path} is unreadable ({exc})"
    watched = frozenset(modules) | frozenset(recorded)
    if set(recorded) != set(modules):
        return watched, (f"built from another MYPYC_MODULES ({len(recorded)} modules, "
                         f"{len(modules)} listed now)")
    changed = [str(source_of(module, root).relative_to(root)) for module, entry in
               sorted(recorded.items()) if not _unchanged(source_of(module, root), entry)]
    if changed:
        return watched, f"changed since it was compiled: {', '.join(changed)}"
    return watched, ""


class SourceFinder(importlib.abc.MetaPathFinder):
    """Finds the `.py` source of the compiled modules, ahead of their extension modules, when
    the pure build is forced or the compiled one is stale; otherwise leaves them to Python."""

    def __init__(self, modules: Sequence[str], pure: bool, record_path: Path | None = None,
                 root: Path = PACKAGE_ROOT) -> None:
        self.modules = tuple(modules)
        self.packages = tuple({module.partition(".")[0] + "." for module in modules})
        self.pure = pure
        self.record_path = record_path
        self.root = root
        self._stale: tuple[frozenset[str], str] | None = None  # found at the first import

    def stale(self) -> tuple[frozenset[str], str]:
        if self._stale is None:
            if self.record_path is None:
                self._stale = frozenset(self.modules), ""
            else:
                self._stale = staleness(self.modules, self.record_path, self.root)
                if self._stale[1] and not self.pure:
                    # explicit: raised inside the import system, no caller's line would help
                    warnings.warn_explicit(
                        f"redline's compiled build is stale ({self._stale[1]}): running the "
                        f"pure-Python modules instead; {REBUILD_HINT}", StaleBuildWarning,
                        __file__, 0, module=__name__)
        return self._stale

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if path is None or not fullname.startswith(self.packages):
            return None  # anything else: the usual finders
        watched, why_stale = self.stale()
        if fullname not in watched or not (self.pure or why_stale):
            return None
        leaf = fullname.rpartition(".")[2] + ".py"
        for directory in path:
            source = os.path.join(directory, leaf)
            if os.path.isfile(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def install_finder(environ: dict[str, str] | os._Environ[str] = os.environ,
                   record_path: Path | None = PACKAGE_ROOT / "redline" / BUILD_RECORD) -> bool:
    """Install the SourceFinder (once); whether it forces the pure build.

    Must run before the compiled modules are imported: a module already imported stays what it
    is (redline/__init__.py calls this first).
    """
    pure = pure_forced(environ)
    for finder in sys.meta_path:
        if isinstance(finder, SourceFinder):
            finder.pure = finder.pure or pure
            return finder.pure
    sys.meta_path.insert(0, SourceFinder(MYPYC_MODULES, pure, record_path))
    return pure


def force_pure(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """The SourceFinder forcing the pure build when REDLINE_PURE is set; whether it does."""
    if not pure_forced(environ):
        return any(isinstance(finder, SourceFinder) and finder.pure for finder in sys.meta_path)
    return install_finder(environ)


def stale_reason() -> str:
    """Why this process runs the pure modules though a compiled build exists ("" if not)."""
    finders = [finder for finder in sys.meta_path if isinstance(finder, SourceFinder)]
    return finders[0].stale()[1] if finders else ""


def _is_extension(path: str | None) -> bool:
    return (path or "").endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def is_compiled(module: ModuleType) -> bool:
    return _is_extension(getattr(module, "__file__", None))


def runs_compiled(name: str) -> bool:
    """Whether module `name` is (or, not imported yet, would be) its compiled extension."""
    module = sys.modules.get(name)
    if module is not None:
        return is_compiled(module)
    spec = importlib.util.find_spec(name)  # through the finders, SourceFinder first
    return spec is not None and _is_extension(spec.origin)


def compiled_modules() -> tuple[str, ...]:
    """Those of MYPYC_MODULES that this process runs compiled (found, not imported: cheap
    enough for `redline --version` and every scrape's build info)."""
    return tuple(name for name in MYPYC_MODULES if runs_compiled(name))


def build_name() -> str:
    """`mypyc` when any hot module runs compiled, else `pure`."""
    return MYPYC if compiled_modules() else PURE


def describe() -> str:
    """For `redline --version`: `mypyc (6 of 6 hot modules compiled)`, `pure`, or `pure (stale
    mypyc build: ...)`."""
    compiled = compiled_modules()
    if not compiled:
        stale = stale_reason()
        return f"{PURE} (stale {MYPYC} build: {stale})" if stale else PURE
    return f"{MYPYC} ({len(compiled)} of {len(MYPYC_MODULES)} hot modules compiled)"
