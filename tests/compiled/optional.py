"""The optional C extensions (redline/build.py's OPTIONAL_MODULES), imported by their tests."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def load_optional(module: str) -> ModuleType:
    """The extension itself, not the module that calls it: its tests also read its answers
    where REDLINE_PURE=1 keeps redline on the Python path. Skipped where it was not built (no C
    compiler at install), except under `make test`, which built it: a build without it must
    not pass unnoticed (REDLINE_EXPECT_COMPILED=1)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("REDLINE_EXPECT_COMPILED") == "1":
            raise
        pytest.skip(f"{module} is not built (no C compiler at install)")
