"""One way to load configuration files: YAML in, typed values out, path-prefixed errors.

Every error names the file, the key path inside it and what was expected, e.g.
`routes.yaml: routes[2].pattern: expected a path starting with '/', got 'users'`.
A bad config file stops start-up: the CLI turns ConfigError into exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A configuration problem, already phrased for the user."""


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file; unreadable files and syntax errors become ConfigError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: expected UTF-8 text: {exc}") from exc
    import yaml  # only when a config file is read: it costs ~1.5 MB of RSS in every sidecar

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc


class Node:
    """A value inside a config document that knows where it came from, for error messages."""

    def __init__(self, source: str, path: str, value: Any) -> None:
        self.source = source
        self.path = path
        self.value = value

    def error(self, expected: str) -> ConfigError:
        where = f"{self.source}: {self.path}" if self.path else self.source
        return ConfigError(f"{where}: expected {expected}, got {self.value!r}")

    def child(self, key: str | int) -> Node:
        path = f"{self.path}[{key}]" if isinstance(key, int) else (
            f"{self.path}.{key}" if self.path else key
        )
        if isinstance(key, int):
            return Node(self.source, path, self.value[key])
        value = self.value.get(key) if isinstance(self.value, dict) else None
        return Node(self.source, path, value)

    def mapping(self, allowed: set[str] | None = None, *, optional: bool = False) -> Node:
        if self.value is None and optional:
            self.value = {}
        if not isinstance(self.value, dict):
            raise self.error("a mapping")
        if allowed is not None:
            unknown = sorted(str(k) for k in self.value if k not in allowed)
            if unknown:
                where = f"{self.source}: {self.path}" if self.path else self.source
                raise ConfigError(
                    f"{where}: unknown key {unknown[0]!r}; expected one of {sorted(allowed)}"
                )
        return self

    def items(self) -> list[Node]:
        """The elements of a list (a missing key reads as an empty list)."""
        if self.value is None:
            return []
        if not isinstance(self.value, list):
            raise self.error("a list")
        return [self.child(i) for i in range(len(self.value))]

    def string(self, default: str | None = None) -> str:
        if self.value is None and default is not None:
            return default
        if not isinstance(self.value, str) or not self.value:
            raise self.error("a non-empty string")
        return self.value

    def boolean(self, default: bool) -> bool:
        if self.value is None:
            return default
        if not isinstance(self.value, bool):
            raise self.error("true or false")
        return self.value

    def integer(self, default: int, minimum: int = 0) -> int:
        if self.value is None:
            return default
        if isinstance(self.value, bool) or not isinstance(self.value, int) or self.value < minimum:
            raise self.error(f"a whole number >= {minimum}")
        return self.value
