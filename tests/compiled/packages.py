"""A throwaway package on sys.path whose modules are there both as source and as a broken
extension file: an import that reaches an extension fails, so one that succeeds came from the
source (what the pure finder and the stale-build guard must choose)."""

from __future__ import annotations

import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def source_and_broken_extension(root: Path, package: str, sources: dict[str, str]
                                ) -> Iterator[Path]:
    """`package` under `root`, each module of `sources` (name -> source text) written twice;
    the package's modules are forgotten by sys.modules afterwards. Yields the package's path."""
    path = root / package
    path.mkdir()
    (path / "__init__.py").write_text("")
    for name, text in sources.items():
        (path / f"{name}.py").write_text(text)
        (path / f"{name}{sysconfig.get_config_var('EXT_SUFFIX')}").write_bytes(b"not ELF")
    sys.path.insert(0, str(root))
    try:
        yield path
    finally:
        sys.path.remove(str(root))
        for loaded in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[loaded]
