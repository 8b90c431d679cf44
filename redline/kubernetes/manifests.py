"""Manifest files as documents and back, so that a GitOps diff shows only what redline changed.

YAML goes through ruamel.yaml's round-trip mode, which keeps comments, flow style, quoting and
key order (PyYAML drops them all). On top of that:
- a file is split at its `---` lines, and a document redline left equal is written back as the
  very text it was read from; only changed documents are re-emitted;
- each document is re-emitted with its own indentation (mapping indent, and whether `- ` is
  indented under its key, as in most hand-written manifests, or not, as kubectl writes);
- JSON documents stay JSON.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redline.config import ConfigError

if TYPE_CHECKING:
    from ruamel.yaml import YAML

# ruamel.yaml is imported where it is used: this module is imported by every `redline`
# command through inject's Options, sidecars included, which should not pay for it.
_SEPARATOR = re.compile(r"^---(?:[ \t][^\n]*)?(?:\n|\Z)", re.MULTILINE)


@dataclass(frozen=True)
class Indent:
    mapping: int = 2
    offset: int = 2  # of the `-` under its key

    def yaml(self) -> YAML:
        from ruamel.yaml import YAML

        yaml = YAML()  # round-trip
        yaml.preserve_quotes = True
        yaml.width = 1_000_000  # never re-wrap a long line
        yaml.brace_single_entry_mapping_in_flow_sequence = True  # [{a: 1}] stays so
        yaml.indent(mapping=self.mapping, sequence=self.offset + 2, offset=self.offset)
        return yaml


@dataclass(frozen=True)
class Piece:
    """One document of a file: the `---` line before it ('' for the first), its text as read,
    and what it parsed to (None for a piece of comments only)."""

    separator: str
    text: str
    document: Any
    indent: Indent
    is_json: bool = False


def parse(text: str, source: str) -> list[Piece]:
    starts = [(m.start(), m.end()) for m in _SEPARATOR.finditer(text)]
    bounds = [(0, 0), *starts]
    ends = [start for start, _ in starts] + [len(text)]
    pieces = []
    for (sep_start, body_start), body_end in zip(bounds, ends, strict=True):
        body = text[body_start:body_end]
        pieces.append(_piece(text[sep_start:body_start], body, source))
    return pieces


def _piece(separator: str, body: str, source: str) -> Piece:
    indent = guess_indent(body)
    if body.lstrip().startswith(("{", "[")):
        try:
            return Piece(separator, body, json.loads(body), indent, is_json=True)
        except ValueError:
            pass  # YAML in flow style
    from ruamel.yaml.error import YAMLError

    try:
        document = indent.yaml().load(body)
    except YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML or JSON: {exc}") from exc
    return Piece(separator, body, document, indent)


def guess_indent(text: str) -> Indent:
    """The indentation a document is written with, from its first nested block lines."""
    mapping = offset = None
    lines = [line for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    for parent, child in itertools.pairwise(lines):
        if not parent.rstrip().endswith(":"):
            continue
        key = parent.lstrip()
        column = len(parent) - len(key)
        while key.startswith("- "):  # `- name:` opens a mapping at the name's column
            column, key = column + 2, key[2:]
        child_column = len(child) - len(child.lstrip())
        if child.lstrip().startswith("-") and offset is None:
            offset = child_column - column
        elif child_column > column and mapping is None:
            mapping = child_column - column
    return Indent(mapping or 2, 2 if offset is None else max(offset, 0))


def render(piece: Piece, document: Any) -> str:
    """The piece with `document` in place of what it held: its own text when unchanged."""
    if document == piece.document:
        return piece.separator + piece.text
    return piece.separator + dump(document, piece.indent, piece.is_json)


def dump(document: Any, indent: Indent = Indent(), as_json: bool = False) -> str:
    if as_json:
        return json.dumps(document, indent=2) + "\n"
    out = io.StringIO()
    indent.yaml().dump(document, out)
    return str(out.getvalue())


def quote_style(value: Any) -> str | None:
    """`"` or `'` for a string the file quoted that way, else None."""
    style = getattr(value, "style", None)
    return style if isinstance(value, str) and style in ('"', "'") else None


def quoted(value: str, style: str | None) -> str:
    """`value`, to be written with the quotes `style` (as quote_style gives)."""
    if style is None:
        return value  # (and ruamel.yaml is not imported: JSON, the webhook)
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

    styled: str = (DoubleQuotedScalarString if style == '"' else SingleQuotedScalarString)(value)
    return styled


def saved(mapping: Any, key: str) -> Any:
    """`mapping[key]` (None when absent) as JSON for redline's record of what it overwrote,
    with how the file wrote it: its quotes, and the column of its end-of-line comment (which
    a longer value pushes right)."""
    value = mapping.get(key)
    style = quote_style(value)
    entry = getattr(getattr(mapping, "ca", None), "items", {}).get(key)
    comment = entry[2] if entry and len(entry) > 2 else None
    column = getattr(comment, "column", None)
    if style is None and column is None:
        return value
    record = {"value": str(value) if style else value, "quote": style, "column": column}
    return {k: v for k, v in record.items() if v is not None}


def restore(mapping: Any, key: str, record: Any) -> None:
    """Put back what `saved` recorded; a key that was absent is removed."""
    value, style, column = (record.get("value"), record.get("quote"), record.get("column")
                            ) if isinstance(record, dict) else (record, None, None)
    if value is None:
        mapping.pop(key, None)
        return
    mapping[key] = quoted(value, style) if isinstance(value, str) else value
    entry = getattr(getattr(mapping, "ca", None), "items", {}).get(key)
    if column is not None and entry and len(entry) > 2 and entry[2] is not None:
        entry[2].column = column


def replace(mapping: Any, key: str, value: str) -> None:
    """`mapping[key] = value`, quoted as the value it replaces was."""
    mapping[key] = quoted(value, quote_style(mapping.get(key)))
