"""Route templating: turn a raw request target into a bounded `http_route` label.

A raw path is never a label: `/users/8812` would make one series per user. In order:
1. ignore patterns (health checks and `/metrics` by default) -> not recorded at all;
2. explicit patterns from a routes file, first match wins: `/users/{id}`, `/static/*`;
3. a heuristic that collapses id-like segments (numbers, UUIDs, long hex, opaque tokens,
   dates, e-mail addresses) into `{id}`;
4. a cap on distinct heuristic routes; past it every new route is `/{other}` and counted.
   The last quarter of the cap is a reserve for templates that recur: a new template is
   admitted there only when it is seen again (within the last RECENT_TEMPLATES new ones), so a
   flood of one-off random paths fills the first three quarters and never the reserve, and a
   real route that appears after the flood gets its own template from its second request on.
Control characters (ESC, CR, ...) are stripped from paths first: they never reach a label.

The templater is a pure object (no IO, no clock). Its cache is bounded, so a flood of distinct
paths costs CPU, never memory. Once a route is admitted it stays admitted, so a path maps to the
same route from then on (before, it was `/{other}` while its template waited for a reserve
place).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from redline.config import ConfigError, Node, load_yaml

DEFAULT_IGNORE = ("/healthz", "/readyz", "/livez", "/metrics")
# Kubelet sends "kube-probe/<version>" on HTTP liveness, readiness and startup probes.
DEFAULT_IGNORE_USER_AGENTS = ("kube-probe/",)
DEFAULT_MAX_ROUTES = 200
DEFAULT_CACHE_SIZE = 16384
# Templates seen once while waiting for a reserve place, remembered by hash (bounded memory
# whatever their length); forgotten all at once when full, as the cache is.
RECENT_TEMPLATES = 16384
ID = "{id}"
OTHER_TEMPLATE = "/{other}"

_PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
# A segment is an id when it is one of these. Each alternative needs a digit or an '@' or great
# length, so ordinary words ("users", "checkout", "v1") stay literal.
_ID_SEGMENT = re.compile(
    r"""
      \d+                                                         # 42, 2024
    | [0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}   # UUID
    | (?=[a-fA-F]*\d)[0-9a-fA-F]{8,}                              # long hex: sha, object id
    | (?=[^/]*\d)[A-Za-z0-9_\-+=~.%]{16,}                         # opaque token with a digit
    | [^/]*\d{4}[^/]*                                             # dates, order-12345
    | [^/@]+@[^/@]+                                               # e-mail addresses
    | [^/]{65,}                                                   # anything very long
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Route:
    """A templated route; `streaming` routes are timed to the first byte of the response."""

    template: str
    streaming: bool = False


OTHER: Final = Route(OTHER_TEMPLATE)  # Final: compiled, a C static (read per request)
MISS = Route("")  # what `cached` returns for a target it has not templated yet


@dataclass(frozen=True, slots=True)
class RoutePattern:
    pattern: str
    streaming: bool = False


def compile_pattern(pattern: str) -> str:
    """Translate a route pattern into a regular expression (without anchors).

    `{name}` matches one non-empty segment or part of one; `*` as the last segment matches the
    rest of the path (`/static/*` matches `/static`, `/static/` and `/static/a/b.css`); `*`
    elsewhere matches one segment.
    """
    if not pattern.startswith("/"):
        raise ValueError(f"expected a path starting with '/', got {pattern!r}")
    segments = pattern[1:].split("/")
    parts: list[str] = []
    for index, segment in enumerate(segments):
        if segment == "*" and index == len(segments) - 1:
            parts.append("(?:/.*)?")
            continue
        if segment == "*":
            parts.append("/[^/]+")
            continue
        if "*" in segment:
            raise ValueError(f"'*' must be a whole segment, got {pattern!r}")
        pieces: list[str] = []
        position = 0
        for match in _PLACEHOLDER.finditer(segment):
            pieces.append(re.escape(segment[position:match.start()]))
            pieces.append("[^/]+?")
            position = match.end()
        pieces.append(re.escape(segment[position:]))
        if "{" in segment[position:] or "}" in segment[position:]:
            raise ValueError(f"placeholders look like {{name}}, got {pattern!r}")
        parts.append("/" + "".join(pieces))
    return "".join(parts)


def _matcher(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """One regex for all patterns; the group that matched tells which pattern (first wins)."""
    if not patterns:
        return None
    return re.compile("|".join(f"({compile_pattern(p)})" for p in patterns))


# C0 and C1 control characters and DEL: a terminal runs ESC sequences when someone reads the
# metrics, and a CR rewrites the line; no route, method or label needs one.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    """`text` without control characters: every label value taken from what a client or an
    app sent (request paths here; mapped labels in the adapter) goes through this."""
    return text if text.isprintable() else _CONTROLS.sub("", text)


def strip_target(target: str) -> str:
    """The path of a request target: no scheme and authority, no query, no fragment."""
    if not target.startswith("/"):
        if "://" in target:  # absolute-form, as proxies receive it
            rest = target.split("://", 1)[1]
            slash = rest.find("/")
            target = rest[slash:] if slash >= 0 else "/"
        elif target == "*":  # OPTIONS * HTTP/1.1
            return "*"
    for separator in ("?", "#"):
        cut = target.find(separator)
        if cut >= 0:
            target = target[:cut]
    return target or "/"


# The same alternatives, applied to whole segments of a path in one C-level substitution: a
# Python loop over segments cost three times as much, and paths with ids are mostly cache misses.
# The lookahead skips ordinary words (no digit, no '@', short) in one scan before any
# alternative is tried: three times faster on typical paths.
_ID_SEGMENTS = re.compile(
    r"(?<=/)(?=[^/]*[\d@]|[^/]{65})(?:" + _ID_SEGMENT.pattern + r")(?=/|\Z)", re.VERBOSE)
_MAYBE_ID = re.compile(r"[\d@]|[^/]{65}")
# The commonest id, a number, collapsed first by a pattern that starts with a literal '/' (the
# regex engine skips to each '/' without trying anything) and needs no lookbehind: on typical
# paths with numeric ids this is a fifth of the cost of _ID_SEGMENTS, which then runs only on
# paths that still have a digit. '{id}' has none, so the two passes equal one of _ID_SEGMENTS.
# `\Z`, not `$`, ends a segment: `$` also matches before a final newline ('/0\n' is no id).
_NUMBER_SEGMENTS = re.compile(r"/[0-9]+(?=/|\Z)")
_SLASH_ID = "/" + ID
# The same for paths joined by spaces (heuristic_templates): a space ends a path too.
_NUMBER_SEGMENTS_JOINED = re.compile(r"/[0-9]+(?=[/ ]|\Z)")


def heuristic_template(path: str) -> str:
    """Collapse id-like segments of a path into `{id}`; other segments are kept as they are."""
    if _MAYBE_ID.search(path) is None:  # no digit, no '@', nothing long: nothing to collapse
        return path
    path = _NUMBER_SEGMENTS.sub(_SLASH_ID, path)
    if _MAYBE_ID.search(path) is None:
        return path
    return _ID_SEGMENTS.sub(ID, path)


def heuristic_templates(paths: list[str]) -> list[str]:
    """`heuristic_template` of each path, with one substitution over all of them joined by
    spaces (a request path has none; if one does, each is done alone)."""
    joined = " ".join(paths)
    if joined.count(" ") != len(paths) - 1:
        return [heuristic_template(path) for path in paths]
    joined = _NUMBER_SEGMENTS_JOINED.sub(_SLASH_ID, joined)
    parts = joined.split(" ")
    # Nothing left to collapse, asked with str methods (a regex search over the whole text
    # cost as much as the substitution): ASCII only (\d also means other scripts' digits), no
    # digit, no '@', no path long enough to hold a 65-character segment.
    if (joined.isascii() and not any(c in joined for c in "0123456789@")
            and max(map(len, parts)) < 65):
        return parts
    return [part if _MAYBE_ID.search(part) is None else _ID_SEGMENTS.sub(ID, part)
            for part in parts]


def is_id_segment(segment: str) -> bool:
    return _ID_SEGMENT.fullmatch(segment) is not None


class RouteTemplater:
    """Maps request targets to routes. Not thread-safe: use one per event loop or thread."""

    def __init__(
        self,
        patterns: Sequence[RoutePattern] = (),
        *,
        ignore: Iterable[str] = DEFAULT_IGNORE,
        ignore_user_agents: Iterable[str] = DEFAULT_IGNORE_USER_AGENTS,
        max_routes: int = DEFAULT_MAX_ROUTES,
        heuristic: bool = True,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if max_routes < 1:
            raise ValueError(f"max_routes: expected at least 1, got {max_routes}")
        self.patterns = tuple(patterns)
        self._explicit = _matcher([p.pattern for p in self.patterns])
        self._explicit_routes = [Route(p.pattern, p.streaming) for p in self.patterns]
        ignore = list(ignore)
        # Literal ignores (all the defaults) are a set lookup; only patterns need the regex.
        self._ignore_exact = frozenset(p for p in ignore if "{" not in p and "*" not in p)
        self._ignore = _matcher([p for p in ignore if p not in self._ignore_exact])
        self.ignore_user_agents = tuple(ignore_user_agents)
        self.max_routes = max_routes
        # Admitted at first sight below this; the rest of the cap is the recurring reserve.
        self.first_sight_routes = max_routes - max_routes // 4
        self._seen_once: set[int] = set()
        self.heuristic = heuristic
        self._cache_size = cache_size
        self._cache: dict[str | bytes, Route | None] = {}
        self._admitted: dict[str, Route] = {}
        self.overflow_total = 0

    def route(self, target: str | bytes) -> Route | None:
        """The route of a request target, or None when the request is not to be recorded."""
        try:
            route = self._cache[target]
        except KeyError:
            route = self._compute(target)
            if route is OTHER and len(self._admitted) < self.max_routes:
                return route  # not cached: seen again, its template may take a reserve place
            if len(self._cache) >= self._cache_size:
                # Clearing is O(1) amortised and keeps memory bounded under a flood of ids;
                # admitted routes live on in _admitted, so results do not change.
                self._cache.clear()
            self._cache[target] = route
            return route
        if route is OTHER:
            self.overflow_total += 1
        return route

    def prefill(self, targets: Sequence[str]) -> None:
        """Template the targets that are not cached yet, together, and cache them: after this,
        `cached` answers for each (the adapter calls it per block of log lines, where most
        paths with ids are new). The same routes as `route` on each target in order, and
        admitted in that order; a template past the first-sight part of the cap is left
        uncached, for `route` to count it per request or admit it to the reserve."""
        cache = self._cache
        new = [target for target in dict.fromkeys(targets) if target not in cache]
        if not new:
            return
        if len(cache) + len(new) > self._cache_size:
            cache.clear()
        joined = " ".join(new)
        # Plain paths already (each starts with '/', no query, no fragment), as access logs'
        # are: strip_target is identity. Counted at C speed: the joining spaces must be the
        # only spaces, or a target holding " /" would stand in for one that does not start
        # with '/' (['', '/ /'] joins to "  / /" with as many " /" as separators).
        separators = len(new) - 1
        if (joined.startswith("/") and joined.count(" ") == separators
                and joined.count(" /") == separators and "?" not in joined and "#" not in joined):
            paths = new
        else:
            paths = [strip_target(target) for target in new]
        if not joined.isprintable():  # one C-level scan of the block's new paths
            paths = [strip_controls(path) for path in paths]
        rest, rest_paths = self._not_ignored_nor_explicit(new, paths)
        templates = heuristic_templates(rest_paths) if self.heuristic else rest_paths
        # Admission in order of first appearance, as `route` one by one would admit them;
        # then the cache filled at C speed unless some template found the cap full.
        admitted = self._admitted
        overflowed = False
        for template in dict.fromkeys(templates):
            if template not in admitted:
                if len(admitted) >= self.first_sight_routes:
                    overflowed = True
                    continue
                admitted[template] = Route(template)
        if not overflowed:
            cache.update(zip(rest, map(admitted.__getitem__, templates), strict=True))
            return
        for target, template in zip(rest, templates, strict=True):
            route = admitted.get(template)
            if route is not None:
                cache[target] = route

    def _not_ignored_nor_explicit(self, targets: list[str], paths: list[str]
                                  ) -> tuple[list[str], list[str]]:
        """prefill's first step: ignored and explicitly matched targets cached, the rest
        returned for the heuristic (with their paths)."""
        ignore_exact, ignore, explicit = self._ignore_exact, self._ignore, self._explicit
        if ignore is None and explicit is None and ignore_exact.isdisjoint(paths):
            return targets, paths  # the usual block: nothing to do per path
        cache = self._cache
        rest: list[str] = []
        rest_paths: list[str] = []
        for target, path in zip(targets, paths, strict=True):
            if path in ignore_exact or (ignore is not None and ignore.fullmatch(path)):
                cache[target] = None
                continue
            if explicit is not None:
                match = explicit.fullmatch(path)
                if match is not None:
                    cache[target] = self._explicit_routes[match.lastindex - 1]  # type: ignore[operator]
                    continue
            rest.append(target)
            rest_paths.append(path)
        return rest, rest_paths

    @property
    def cached(self) -> Callable[[str | bytes, Route], Route | None]:
        """The cache's own `get`, for hot loops: `cached(target, MISS)` is MISS when unknown.
        Overflow (OTHER) must still go through `route`, which counts it."""
        return self._cache.get

    def ignores_user_agent(self, user_agent: str | bytes | None) -> bool:
        if not user_agent or not self.ignore_user_agents:
            return False
        agent = user_agent.decode("latin-1") if isinstance(user_agent, bytes) else user_agent
        return agent.startswith(self.ignore_user_agents)

    @property
    def distinct_routes(self) -> int:
        return len(self._admitted)

    def _compute(self, target: str | bytes) -> Route | None:
        text = target.decode("latin-1") if isinstance(target, bytes) else target
        path = strip_controls(strip_target(text))
        if path in self._ignore_exact or (
                self._ignore is not None and self._ignore.fullmatch(path)):
            return None
        if self._explicit is not None:
            match = self._explicit.fullmatch(path)
            if match is not None:
                # lastindex is the outermost group that matched: one group per pattern, and
                # compiled patterns contain no capturing groups of their own.
                return self._explicit_routes[match.lastindex - 1]  # type: ignore[operator]
        template = heuristic_template(path) if self.heuristic else path
        route = self._admitted.get(template)
        if route is not None:
            return route
        if len(self._admitted) >= self.first_sight_routes and not self._recurs(template):
            self.overflow_total += 1
            return OTHER
        route = Route(template)
        self._admitted[template] = route
        return route

    def _recurs(self, template: str) -> bool:
        """Whether a template may take a reserve place: there is one, and it was seen before."""
        if len(self._admitted) >= self.max_routes:
            return False
        key = hash(template)
        if key in self._seen_once:
            self._seen_once.discard(key)
            return True
        if len(self._seen_once) >= RECENT_TEMPLATES:
            self._seen_once.clear()
        self._seen_once.add(key)
        return False


def load_routes(path: str | Path) -> RouteTemplater:
    """Build a templater from a routes file; errors name the file and the key.

    ```yaml
    routes:                     # first match wins
      - /users/{id}
      - pattern: /events
        streaming: true         # timed to the first byte
    ignore: [/internal/*]       # added to the defaults unless ignore_defaults: false
    ignore_defaults: true
    ignore_user_agents: [kube-probe/]   # prefixes
    max_routes: 200
    heuristic: true
    ```
    """
    document = Node(str(path), "", load_yaml(path)).mapping(
        {"routes", "ignore", "ignore_defaults", "ignore_user_agents", "max_routes", "heuristic"},
        optional=True,
    )
    patterns: list[RoutePattern] = []
    for item in document.child("routes").items():
        if isinstance(item.value, str):
            pattern, streaming = item.value, False
        else:
            item.mapping({"pattern", "streaming"})
            pattern = item.child("pattern").string()
            streaming = item.child("streaming").boolean(False)
        _check_pattern(item if isinstance(item.value, str) else item.child("pattern"), pattern)
        patterns.append(RoutePattern(pattern, streaming))
    ignore = [_check_pattern(node, node.string()) for node in document.child("ignore").items()]
    if document.child("ignore_defaults").boolean(True):
        ignore = [*DEFAULT_IGNORE, *ignore]
    agents_node = document.child("ignore_user_agents")
    agents = (
        DEFAULT_IGNORE_USER_AGENTS
        if agents_node.value is None
        else tuple(node.string() for node in agents_node.items())
    )
    return RouteTemplater(
        patterns,
        ignore=ignore,
        ignore_user_agents=agents,
        max_routes=document.child("max_routes").integer(DEFAULT_MAX_ROUTES, minimum=1),
        heuristic=document.child("heuristic").boolean(True),
    )


def _check_pattern(node: Node, pattern: str) -> str:
    try:
        compile_pattern(pattern)
    except ValueError as exc:
        raise ConfigError(f"{node.source}: {node.path}: {exc}") from exc
    return pattern
