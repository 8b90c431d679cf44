"""The optional compiled modules: the build hook's list and what redline reports agree."""

from __future__ import annotations

import ast
from pathlib import Path

from redline import build, compiled
from redline.exporters.exposition import new_registry
from redline.sidecars.adapter import formats
from redline.sidecars.ambassador import http1, relay

ROOT = Path(__file__).resolve().parents[1]


def test_the_build_hook_builds_the_modules_redline_reports() -> None:
    # hatch_build.py imports hatchling, which only build environments have: read it as code.
    tree = ast.parse((ROOT / "hatch_build.py").read_text())
    built = {call.args[0].value for call in ast.walk(tree)
             if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
             and call.func.id == "Extension" and isinstance(call.args[0], ast.Constant)}
    assert built == set(build.OPTIONAL_MODULES)


def test_build_info_and_version_name_the_compiled_relay() -> None:
    names = [*(["splice"] if relay.compiled() else []),
             *(["logscan"] if formats.SCAN is not None else []),
             *(["h1head"] if http1.READ_REQUEST_HEAD is not None else []),
             *(["mypyc"] if compiled.compiled_modules() else [])]
    expected = ",".join(names) or "none"
    assert build.describe() == expected
    samples = [sample for metric in new_registry("ambassador").collect()
               for sample in metric.samples if sample.name == "redline_build_info"]
    assert [sample.labels["extensions"] for sample in samples] == [expected]
