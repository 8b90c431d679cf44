"""Which exposition format a scraper's Accept header asks for, answered as prometheus_client's
`choose_encoder` answers it.

The ambassador renders its own scrapes (sliced.py) and must not import prometheus_client's
package for it: its `__init__` pulls its HTTP servers, urllib and email along, 5.5 MB of a
sidecar's memory. This is choose_encoder's rule, kept in step with it by
tests/exporters/test_negotiate.py: the first media range of `application/openmetrics-text`
(version 1.0.0 or later, or none) or `text/plain` (version 1.0.0 or later) wins, in the order
given, q-values ignored; anything else is the text format 0.0.4. The one difference: a version
that is not numbers where choose_encoder compares it with 1.0.0 (`version=x`, `version=1.y`)
makes it raise TypeError, and a scrape fail; here that media range is passed over, as one
below 1.0.0 is.
"""

from __future__ import annotations

from typing import NamedTuple

OPENMETRICS = "application/openmetrics-text"
TEXT = "text/plain"
TEXT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"
TEXT_1_0_0 = "text/plain; version=1.0.0; charset=utf-8"
OPENMETRICS_1_0_0 = "application/openmetrics-text; version=1.0.0; charset=utf-8"
UNDERSCORES = "underscores"
# The escapings an Accept header may name; any other value means UNDERSCORES.
KNOWN_ESCAPINGS = ("allow-utf-8", UNDERSCORES, "dots", "values")


class Format(NamedTuple):
    openmetrics: bool  # else the Prometheus text format
    escaping: str  # how names outside the legacy character set are written
    content_type: str  # as choose_encoder gives it; as an Accept header it selects this again


def negotiate(accept: str | None) -> Format:
    for accepted in (accept or "").split(","):
        params = accepted.split(";")
        media = params[0].strip()
        if media == OPENMETRICS:
            version = _param(params, "version")
            if not version:
                return Format(True, UNDERSCORES, OPENMETRICS_1_0_0)
            if _at_least_1(version):
                escaping = _escaping(params)
                return Format(True, escaping, f"{OPENMETRICS}; version={version}; "
                                              f"charset=utf-8; escaping={escaping}")
        elif media == TEXT:
            version = _param(params, "version")
            if version and _at_least_1(version):
                escaping = _escaping(params)
                return Format(False, escaping, f"{TEXT_1_0_0}; escaping={escaping}")
    return Format(False, UNDERSCORES, TEXT_0_0_4)


def _param(params: list[str], key: str) -> str:
    """The first `key=value` parameter's value ("" when none), split as choose_encoder does:
    the parameter stripped, the key not stripped again."""
    for param in params:
        if "=" in param:
            name, value = param.strip().split("=", 1)
            if name == key:
                return value
    return ""


def _escaping(params: list[str]) -> str:
    escaping = _param(params, "escaping")
    return escaping if escaping in KNOWN_ESCAPINGS else UNDERSCORES


def _at_least_1(version: str) -> bool:
    """prometheus_client's `parse_version(version) >= (1, 0, 0)`: dotted parts compared as
    numbers where `int` reads them, as strings otherwise."""
    parts: list[int | str] = []
    for part in version.split("."):
        try:
            parts.append(int(part))
        except ValueError:
            parts.append(part)
    try:
        return tuple(parts) >= (1, 0, 0)
    except TypeError:  # a string compared with a number: choose_encoder raises here
        return False
