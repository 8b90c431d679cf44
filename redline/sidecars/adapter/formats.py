"""Access-log formats, sans IO: text of complete lines in, request events out.

Every format turns a block of complete lines into `Event` tuples plus the number of lines it
could not read; `parse_line` is the same for one line. A block is parsed with one compiled
regex (`findall` over the whole block, one match per line), because a Python loop that matches
line by line costs more than everything else the adapter does per line.

An Event is (method, path, status, duration_seconds | None, malformed_request):
`malformed_request` is True for lines the server itself logged as a bad request line (nginx
logs TLS handshakes sent to a plain port as `"\\x16\\x03..." 400`).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from redline.compiled import pure_forced

Event = tuple[str, str, int, float | None, bool]

# The C reader of the built-in formats' lines (_logscan.c): where it is sure of every line of
# a block, it gives the reference regex's rows without running a regex (bench_adapter.py
# --callgrind: 16,670 -> 9,183 instructions per line of the whole pipeline with mypyc). Not
# built (no C compiler at install), or REDLINE_PURE=1 (the pure build, whose tests must run the
# regex path): the regexes read every block.
Scan = Callable[[str, int, bool], list[tuple[str, ...]] | None]
# _logscan's `kind` of the duration after the agent; and the groups of its rows, in order (the
# duration's last).
SCAN_NGINX, SCAN_APACHE = 0, 1
SCAN_GROUPS = ("method", "path", "bad", "status", "agent")


def _load_logscan() -> tuple[Scan | None, Callable[[list[str]], list[float]] | None]:
    """_logscan's `scan`, and its `floats` (list(map(float, ...)), short decimals parsed in C:
    the pipeline's durations), or None for both."""
    if pure_forced():
        return None, None
    try:
        from redline.sidecars.adapter import _logscan
    except ImportError:
        return None, None
    return _logscan.scan, _logscan.floats


SCAN, FLOATS = _load_logscan()



# CPython before 3.11.5 could match a possessive quantifier on a group wrongly (gh-106052,
# gh-100061: Debian 12's 3.11.2 read `... 0.` as a duration of "0."); the line-bound variants
# use them, so there the format's own pattern reads every block (slower, the same rows).
POSSESSIVE_GROUPS_MATCH_RIGHT = sys.version_info >= (3, 11, 5)

class _Variant(NamedTuple):
    """How a built-in format's pattern is spelled; the three variants are below."""

    newline: str  # what a field's negated classes leave out besides the field's own end
    once: str  # "+" makes every repetition possessive (it never gives back what it took)
    agent: bool  # whether the user agent is captured


# - the reference: no field reaches past its line's end (`[^ \n]+`), the user agent captured;
# - line-bound: `\n` left out of the negated classes and every repetition possessive
#   (`[^ ]++`). `re` scans a class of one character in a tight loop, where a class of two
#   costs a call per character, and a possessive repetition leaves no point to come back to
#   (callgrind, bench_adapter.py's lines: 8,300 instructions a line, the reference 14,600;
#   about a third of its time, user agent left out). On a line, it matches as the
#   reference does: each repeated class stops only at what must follow it (`[^ ]++` before a
#   space), so what a possessive repetition does not give back could not have matched; and
#   its candidates that stay on the line are the reference's, tried in the same order. It
#   may run on past a line's end, which makes fewer rows than lines: `rows` then reads the
#   block with the reference (see there);
# - line-bound without the agent: the `agent` group left empty, for blocks in which no ignored
#   user agent occurs (the pipeline reads agents only where one does): one string fewer per line.
_REFERENCE = _Variant(r"\n", "", agent=True)
_LINE_BOUND = _Variant("", "+", agent=True)
_LINE_BOUND_NO_AGENT = _Variant("", "+", agent=False)


def _combined(variant: _Variant) -> str:
    """nginx's and Apache's `combined` line, without what ends it."""
    newline, once = variant.newline, variant.once
    agent = (rf'(?P<agent>[^"{newline}]*{once})' if variant.agent
             else rf'(?P<agent>)[^"{newline}]*{once}')
    return (rf"^[^ {newline}]+{once} [^ {newline}]+{once} [^ {newline}]+{once} "
            rf"\[[^\]{newline}]*{once}\] "
            # The request line as logged: method, target (query kept apart) and protocol; or
            # anything else.
            rf'"(?:(?P<method>[A-Za-z_-]+{once}) (?P<path>[^ "?]*{once})(?:\?[^ "]*{once})?{once}'
            rf'(?: HTTP/[0-9.]+{once})?{once}|(?P<bad>[^"]*{once}))"'
            rf' (?P<status>[0-9]{{3}}) (?:[0-9]+{once}|-) "[^"{newline}]*{once}" "{agent}"')


class LogFormat(Protocol):
    name: str

    def parse_block(self, text: str) -> tuple[list[Event], int]:
        """Events of a block of complete lines, and how many non-blank lines were not read."""
        ...


def parse_line(log_format: LogFormat, line: str) -> Event | None:
    events, _ = log_format.parse_block(line.rstrip("\n") + "\n")
    return events[0] if events else None


_EMPTY_LINE = re.compile(r"^$", re.MULTILINE)


def _count_lines(text: str) -> int:
    """Lines in a block that ends with a newline, empty lines not counted."""
    lines = text.count("\n")
    if "\n\n" in text or text.startswith("\n"):  # rare: only then pay for finding them
        lines -= len(_EMPTY_LINE.findall(text)) - 1  # minus the match after the last newline
    return lines


class RegexFormat:
    """A format given as a regex with named groups `method`, `path`, `status`, and optionally
    `duration` (seconds), `duration_ms` or `duration_us`, `agent` (the user agent, to ignore
    kubelet probes) and `bad` (a malformed request line).

    `rows` gives findall's tuples and where each field is in them: the adapter's hot loop reads
    them directly instead of building an Event per line. Optional groups that the pattern lacks
    are appended as empty groups, so every row has every field.
    """

    def __init__(self, name: str, pattern: str, line_bound: tuple[str, str] | None = None,
                 scan_kind: int | None = None) -> None:
        self.name = name
        try:
            groups = set(re.compile(pattern).groupindex)
        except re.error as exc:
            raise ValueError(f"{name}: not a valid regular expression: {exc}") from exc
        missing = {"path", "status"} - groups
        if missing:
            raise ValueError(f"{name}: expected named groups method, path and status; "
                             f"missing {', '.join(sorted(missing))}")
        durations = [(n, s) for n, s in (("duration", 1.0), ("duration_ms", 1e-3),
                                         ("duration_us", 1e-6)) if n in groups]
        if len(durations) > 1:
            raise ValueError(f"{name}: expected at most one of duration, duration_ms, "
                             f"duration_us")
        duration_group, self.scale = durations[0] if durations else ("duration", 1.0)
        extra = "".join(f"(?P<{g}>)" for g in ("method", "bad", "agent", duration_group)
                        if g not in groups)
        self.regex = re.compile(f"(?:{pattern}){extra}", re.MULTILINE)
        order = sorted(self.regex.groupindex, key=self.regex.groupindex.__getitem__)
        self.method_at = order.index("method")
        self.path_at = order.index("path")
        self.status_at = order.index("status")
        self.bad_at = order.index("bad")
        self.agent_at = order.index("agent")
        self.duration_at = order.index(duration_group)
        # The built-in formats' line-bound variants (with and without the agent), their
        # groups where the reference has its own: rows of either read alike.
        self.line_bound: tuple[re.Pattern[str], re.Pattern[str]] | None = None
        self.unread_lines_lately = False  # whether the last block had a line not read
        if line_bound is not None and POSSESSIVE_GROUPS_MATCH_RIGHT:
            with_agent, without_agent = (re.compile(p, re.MULTILINE) for p in line_bound)
            if not (self.regex.groupindex == with_agent.groupindex == without_agent.groupindex
                    and self.regex.groups == with_agent.groups == without_agent.groups):
                raise ValueError(f"{name}: the line-bound patterns' groups differ")
            self.line_bound = with_agent, without_agent
        # A built-in format's C reader, where it is built, and its kind (SCAN_NGINX or
        # SCAN_APACHE; kept where it is not, for a test to set `scan`).
        self.scan: Scan | None = None
        self.scan_kind = SCAN_NGINX if scan_kind is None else scan_kind
        if scan_kind is not None:
            if order != [*SCAN_GROUPS, duration_group]:
                raise ValueError(f"{name}: the groups are not in the C reader's order")
            self.scan = SCAN

    def rows(self, text: str, agents: bool = True) -> tuple[list[tuple[str, ...]], int]:
        """findall's rows for a block of complete lines, and how many lines did not match.
        With `agents` false, a row's agent may be empty.

        The C reader reads the block first where the format has one; it gives findall's rows
        or nothing (a line it is not sure of: see _logscan.c). Else a line-bound pattern reads
        the block when the format has one. If it made one row per line, each row is one line
        whole (rows start at a line's start, end at one's end, and do not overlap), matched as
        the reference matches it (see _Variant). Otherwise (a line not read, an empty line, a
        match run on into the next line) the reference reads the block again; and the blocks
        after it first, until one has every line read: a log with a bad line in every block
        reads each once, not twice."""
        if self.scan is not None:
            scanned = self.scan(text, self.scan_kind, agents)
            if scanned is not None:
                self.unread_lines_lately = False  # every line read
                return scanned, 0
        lines = text.count("\n")
        if self.line_bound is not None and not self.unread_lines_lately:
            rows = self.line_bound[0 if agents else 1].findall(text)
            if len(rows) == lines:
                return rows, 0
        rows = self.regex.findall(text)
        self.unread_lines_lately = len(rows) != lines
        if not self.unread_lines_lately:  # every line read: no empty lines to look for
            return rows, 0
        return rows, _count_lines(text) - len(rows)

    def parse_block(self, text: str) -> tuple[list[Event], int]:
        rows, errors = self.rows(text)
        events: list[Event] = []
        for row in rows:
            raw = row[self.duration_at]
            seconds: float | None = None
            if raw and raw != "-":
                try:
                    seconds = float(raw) * self.scale
                except ValueError:
                    seconds = None
            path = row[self.path_at]
            events.append((row[self.method_at], path, int(row[self.status_at]), seconds,
                           bool(row[self.bad_at]) and not path))
        return events, errors


def _combined_format(name: str, ending: Callable[[str], str], scan_kind: int) -> RegexFormat:
    """`combined` followed by what `ending` spells (given `once`), in the three variants, and
    the C reader's `scan_kind` of that ending."""
    def spelled(variant: _Variant) -> str:
        return _combined(variant) + ending(variant.once)

    return RegexFormat(name, spelled(_REFERENCE),
                       (spelled(_LINE_BOUND), spelled(_LINE_BOUND_NO_AGENT)), scan_kind)


def nginx_format() -> RegexFormat:
    """nginx `combined`, optionally followed by `$request_time` and `$upstream_response_time`."""
    return _combined_format("nginx", lambda once: (
        rf"(?: (?P<duration>[0-9]+{once}(?:\.[0-9]+{once})?{once}|-)(?: [^\n]*{once})?{once})?"
        rf"{once}[ \t\r]*{once}$"), SCAN_NGINX)


def apache_format(time_unit: str = "us") -> RegexFormat:
    """Apache `combined`, optionally followed by `%D` (microseconds) or `%T` (seconds)."""
    group = {"us": "duration_us", "s": "duration", "ms": "duration_ms"}[time_unit]
    return _combined_format("apache", lambda once: (
        rf"(?: (?P<{group}>[0-9]+{once})(?: [^\n]*{once})?{once})?{once}[ \t\r]*{once}$"),
        SCAN_APACHE)


def custom_format(pattern: str) -> RegexFormat:
    """`regex:RE`: the user's regex must match a whole line (anchors are added)."""
    return RegexFormat("regex", rf"^(?:{pattern})[ \t\r]*$")


@dataclass(frozen=True)
class JsonFields:
    """Where a JSON log line keeps each value; dotted names reach into nested objects."""

    method: Sequence[str] = ("method", "request_method", "http_method", "verb",
                             "http.request.method", "request.method")
    path: Sequence[str] = ("path", "uri", "request_uri", "url", "url.path", "request.path",
                           "http.target", "request.uri")
    status: Sequence[str] = ("status", "status_code", "response_status", "code",
                             "http.response.status_code", "response.status")
    duration: Sequence[str] = ("duration", "request_time", "response_time", "elapsed",
                               "latency", "duration_s")
    duration_ms: Sequence[str] = ("duration_ms", "response_time_ms", "latency_ms",
                                  "elapsed_ms", "took_ms")


def _lookup(document: dict[str, object], names: Sequence[str],
            kinds: tuple[type, ...]) -> object:
    """The first of `names` present with a value of one of `kinds` (`url` may be a string in
    one logger and an object holding `url.path` in another)."""
    for name in names:
        value: object = document.get(name)
        if value is None and "." in name:
            value = document
            for part in name.split("."):
                value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, kinds) and not isinstance(value, bool):
            return value
    return None


class JsonFormat:
    """One JSON object per line (the logs of most structured loggers)."""

    name = "json"

    def __init__(self, fields: JsonFields | None = None) -> None:
        self.fields = fields or JsonFields()

    def parse_block(self, text: str) -> tuple[list[Event], int]:
        events: list[Event] = []
        errors = 0
        for line in text.splitlines():
            if not line.strip():
                continue
            event = self._parse(line)
            if event is None:
                errors += 1
            else:
                events.append(event)
        return events, errors

    def _parse(self, line: str) -> Event | None:
        try:
            document = json.loads(line)
        except ValueError:
            return None
        if not isinstance(document, dict):
            return None
        fields = self.fields
        path = _lookup(document, fields.path, (str,))
        status = _lookup(document, fields.status, (int, str))
        method = _lookup(document, fields.method, (str,))
        try:
            status_code = int(status)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return None
        if not isinstance(path, str) or not 100 <= status_code <= 599:
            return None
        seconds: float | None = None
        duration, scale = _lookup(document, fields.duration, (int, float, str)), 1.0
        if duration is None:
            duration, scale = _lookup(document, fields.duration_ms, (int, float, str)), 1e-3
        if isinstance(duration, int | float):
            seconds = float(duration) * scale
        elif isinstance(duration, str):
            try:
                seconds = float(duration) * scale
            except ValueError:
                seconds = None
        return (method if isinstance(method, str) else "GET",
                path.split("?", 1)[0], status_code, seconds, False)


FORMATS = ("nginx", "apache", "json", "regex:RE")


def make_format(spec: str, *, apache_time_unit: str = "us",
                json_fields: JsonFields | None = None) -> LogFormat:
    if spec == "nginx":
        return nginx_format()
    if spec == "apache":
        return apache_format(apache_time_unit)
    if spec == "json":
        return JsonFormat(json_fields)
    if spec.startswith("regex:"):
        return custom_format(spec[len("regex:"):])
    raise ValueError(f"expected one of {', '.join(FORMATS)}, got {spec!r}")
