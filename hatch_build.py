"""hatchling build hook: compiles redline's optional C extensions with the system's compiler,
and its hot modules with mypyc.

Why a hook and not setuptools: hatchling stays the one build backend (pyproject.toml), and a
hook is its way to add built files to a wheel. Everything compiled is optional: redline has a
pure-Python path for each (e.g. the ambassador's asyncio relay for `_splice`, the `.py` source of
each module in redline/compiled.py's MYPYC_MODULES), so where no C compiler exists, or
compiling fails, the hook says so and the wheel is (in part) pure Python. A build never fails
because something could not be compiled.

- C extensions (EXTENSIONS): the compiler is called directly, one source file each;
- mypyc (MYPYC_MODULES): `tools/compile.py`, run in a subprocess with this build environment's
  Python (pyproject.toml's [build-system] requires pins mypy, and the hook requires redline's
  runtime dependencies, so mypy sees the same types as `make typecheck`); a subprocess, because
  mypy reports type errors by exiting, and so the build survives whatever happens there.

- wheel (`pip install .`, the Dockerfile): built in a temporary directory and force-included,
  so the wheel is tagged for this interpreter and platform;
- editable (`pip install -e .`, what `make test` does): built next to its source, where the
  editable install imports from (hatchling's editable wheel points at the source tree).

REDLINE_NO_EXTENSIONS=1 skips them all (a pure-Python build); REDLINE_NO_MYPYC=1 skips mypyc only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class Extension(NamedTuple):  # not a dataclass: hatchling loads this file outside sys.modules
    module: str  # dotted import name
    sources: tuple[str, ...]  # relative to the project root
    platforms: tuple[str, ...] = ("linux",)  # sys.platform prefixes it builds on

    def filename(self) -> str:
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        return self.module.replace(".", "/") + suffix


EXTENSIONS = (
    # The ambassador's opaque relay: splice(2) and epoll, Linux only.
    Extension("redline.sidecars.ambassador._splice",
              ("redline/sidecars/ambassador/_splice.c",)),
    # The adapter's reader of `combined` access log lines: portable C, any platform.
    Extension("redline.sidecars.adapter._logscan", ("redline/sidecars/adapter/_logscan.c",),
              platforms=("",)),
    # The ambassador's reader of HTTP/1.1 heads: portable C, any platform.
    Extension("redline.sidecars.ambassador._h1head", ("redline/sidecars/ambassador/_h1head.c",),
              platforms=("",)),
)


def compile_mypyc(root: Path, build_lib: Path | None) -> tuple[list[str], str | None]:
    """Compile MYPYC_MODULES in place or into `build_lib`: the files written (relative to it)
    and why not, or None when they were built."""
    compile_py = root / "tools" / "compile.py"
    if not compile_py.exists():
        return [], f"no {compile_py.relative_to(root)} in this source tree"
    command = [sys.executable, str(compile_py), "--root", str(root)]
    if build_lib is not None:
        command += ["--build-lib", str(build_lib)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        return [], "mypyc failed:\n" + "\n".join(output[-30:])  # the error is at the end
    return [line.removeprefix("built ") for line in result.stdout.splitlines()
            if line.startswith("built ")], None


def compile_extension(extension: Extension, root: Path, target: Path) -> str | None:
    """Compile `extension` into `target` (a file); why not, or None when it was built."""
    if not sys.platform.startswith(extension.platforms):
        return f"not built on {sys.platform}"
    compiler = (sysconfig.get_config_var("CC") or "cc").split()
    if shutil.which(compiler[0]) is None:
        return f"no C compiler ({compiler[0]})"
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        return f"no Python headers in {include}"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Built beside the target, then renamed over it: a process that has the old one loaded
    # (an editable install's running ambassador) keeps its mapping intact.
    building = target.with_name(f".{target.name}.{os.getpid()}")
    command = [*compiler, "-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror",
               f"-I{include}", *(str(root / source) for source in extension.sources),
               "-o", str(building), "-lpthread"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        building.unlink(missing_ok=True)
        return f"{' '.join(command)} failed:\n{result.stderr.strip()}"
    building.replace(target)
    return None


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or os.environ.get("REDLINE_NO_EXTENSIONS") == "1":
            return
        root = Path(self.root)
        editable = version == "editable"
        staging = Path(tempfile.mkdtemp(prefix="redline-ext-"))
        built = False
        for extension in EXTENSIONS:
            target = root / extension.filename() if editable else staging / extension.filename()
            why_not = compile_extension(extension, root, target)
            if why_not is not None:
                self.app.display_warning(
                    f"{extension.module}: {why_not}; redline uses its pure-Python path instead")
                continue
            built = True
            if not editable:
                build_data["force_include"][str(target)] = extension.filename()
            self.app.display_info(f"{extension.module}: compiled")
        built = self.build_mypyc(root, editable, staging, build_data) or built
        if built:
            build_data["pure_python"] = False
            build_data["infer_tag"] = True

    def build_mypyc(self, root: Path, editable: bool, staging: Path,
                    build_data: dict[str, Any]) -> bool:
        if os.environ.get("REDLINE_NO_MYPYC") == "1":
            return False
        files, why_not = compile_mypyc(root, None if editable else staging)
        if why_not is not None:
            if editable:  # an earlier build would be stale: redline would warn at each start
                subprocess.run([sys.executable, str(root / "tools" / "compile.py"), "--clean",
                                "--root", str(root)], capture_output=True, check=False)
            self.app.display_warning(
                f"redline's hot modules (mypyc): {why_not}\nredline runs them as pure Python")
            return False
        if not editable:
            for relative in files:
                build_data["force_include"][str(staging / relative)] = relative
        self.app.display_info(f"redline's hot modules: compiled by mypyc ({len(files) - 1} files)")
        return True
