"""What this installation of redline was built with: its optional compiled modules.

hatch_build.py compiles them where a C compiler was found at install; each has a pure-Python
path, so an installation without them works, slower. `redline --version` and
`redline_build_info{extensions=...}` say which are in, so a slow ambassador can be told apart
from one that was installed without its relay.
"""

from __future__ import annotations

import importlib.util

from redline import compiled

# The modules hatch_build.py's EXTENSIONS may build (tests/test_build.py keeps both lists equal).
OPTIONAL_MODULES = ("redline.sidecars.ambassador._splice", "redline.sidecars.adapter._logscan",
                    "redline.sidecars.ambassador._h1head")
# Those REDLINE_PURE=1 turns off with the mypyc modules (the adapter's formats.py reads every
# block with its regexes then, the ambassador's http1.py every head: the paths the pure build's
# tests must run).
PURE_OFF = ("redline.sidecars.adapter._logscan", "redline.sidecars.ambassador._h1head")


def compiled_modules() -> tuple[str, ...]:
    """The optional modules built into this installation and used (found, not imported)."""
    pure = compiled.pure_forced()
    return tuple(module for module in OPTIONAL_MODULES
                 if not (pure and module in PURE_OFF)
                 and importlib.util.find_spec(module) is not None)


def describe() -> str:
    """For --version and build info: the compiled modules' short names (`mypyc` for the hot
    modules of redline/compiled.py, when this process runs them compiled), or "none"."""
    names = [module.rsplit(".", 1)[1].lstrip("_") for module in compiled_modules()]
    if compiled.compiled_modules():
        names.append(compiled.MYPYC)
    return ",".join(names) or "none"
