"""hatchling build hook: compiles redline's optional C extensions with the system's compiler.

Why a hook and not setuptools: hatchling stays the one build backend (pyproject.toml), and a
hook is its way to add built files to a wheel. Each extension in EXTENSIONS is optional: redline
has a pure-Python path for each (e.g. the ambassador's asyncio relay for `_splice`), so where no
C compiler exists, or compiling fails, the hook says so and the wheel is pure Python. Issue #22
adds its compiled modules (mypyc) to this same hook: an entry in EXTENSIONS per module, built
the same way and shipped the same way.

- wheel (`pip install .`, the Dockerfile): built in a temporary directory and force-included,
  so the wheel is tagged for this interpreter and platform;
- editable (`pip install -e .`, what `make test` does): built next to its source, where the
  editable install imports from (hatchling's editable wheel points at the source tree).

REDLINE_NO_EXTENSIONS=1 skips them all (a pure-Python build).
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
)


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
        if built:
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
