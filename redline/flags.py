"""Flag values shared by every command: argparse `type=` parsers whose errors say what was
expected, and the one alias for argparse's subparsers object.

Each parser raises ValueError with a sentence for the user; `flag_type` turns it into the
ArgumentTypeError argparse prints (`redline ambassador: error: argument --listen: expected ...`).
The same parsers check REDLINE_<FLAG> environment values (redline/cli.py).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import TypeAlias, TypeVar

from redline.exporters.instruments import validate_buckets

# argparse keeps the type of `add_subparsers()` private; one alias so no module spells it.
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

T = TypeVar("T")


def flag_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """Use a parser as argparse `type=` so that its ValueError text reaches the user."""

    @functools.wraps(parse)
    def wrapper(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    return wrapper


def host_port(text: str, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """`H:P`, `:P` or `[::1]:P`; port 0 asks the system for any free port."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"expected HOST:PORT with a port from 0 (any free) to 65535, got {text!r}")
    host = host.strip("[]") or default_host
    return host, int(port)


def port_number(text: str) -> int:
    """A TCP port from 1 to 65535 (a port in a manifest, where 0 means nothing)."""
    if not text.strip().isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"expected a port from 1 to 65535, got {text!r}")
    return int(text)


def positive_number(text: str) -> float:
    """A number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"expected a number > 0, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """A duration in seconds > 0."""
    try:
        return positive_number(text)
    except ValueError:
        raise ValueError(f"expected a number of seconds > 0, got {text!r}") from None


def non_negative_seconds(text: str) -> float:
    """A duration in seconds >= 0 (0: not at all, e.g. no drain delay)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise ValueError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def positive_integer(text: str) -> int:
    """A whole number >= 1 (sizes, counts, limits)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def ratio(text: str) -> float:
    """A share from 0 to 1 (sample ratios)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"expected a ratio from 0 to 1, got {text!r}")
    return value


def buckets(text: str) -> tuple[float, ...]:
    """Histogram bucket bounds in seconds, comma-separated, increasing: `0.1,0.5,1`."""
    try:
        values = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise ValueError(f"expected numbers separated by commas, got {text!r}") from None
    return validate_buckets(values)
