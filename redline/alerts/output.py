"""Generated files on disk, for `redline alerts --out` and `redline dashboards`: each file
written is named on stderr, so a user sees what changed where (stdout stays for the rules
themselves when there is no --out)."""

from __future__ import annotations

import sys
from pathlib import Path

from redline.config import ConfigError


def write_files(out: Path, files: dict[Path, str]) -> list[Path]:
    """`out`/name <- text for each file, each path named on stderr (`wrote PATH`); a
    directory that cannot be written is an error naming --out."""
    written = []
    for name, text in files.items():
        path = out / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--out {out}: cannot write {path}: "
                              f"{exc.strerror or exc}") from exc
        print(f"wrote {path}", file=sys.stderr)
        written.append(path)
    return written
