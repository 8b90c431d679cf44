"""The route templater: explicit patterns, the id heuristic, ignores and the cardinality cap."""

from __future__ import annotations

import random
import re
import uuid
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from redline.config import ConfigError
from redline.exporters.routes import (
    ID,
    OTHER,
    OTHER_TEMPLATE,
    RoutePattern,
    RouteTemplater,
    heuristic_template,
    heuristic_templates,
    is_id_segment,
    load_routes,
    strip_controls,
)


def template(templater: RouteTemplater, path: str | bytes) -> str | None:
    route = templater.route(path)
    return None if route is None else route.template


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "/"),
        ("", "/"),
        ("/users", "/users"),
        ("/users/42", "/users/{id}"),
        ("/users/42/orders/7", "/users/{id}/orders/{id}"),
        ("/v1/items", "/v1/items"),
        ("/items/550e8400-e29b-41d4-a716-446655440000", "/items/{id}"),
        ("/commits/9fceb02d0ae598e95dc970b74767f19372d61af8", "/commits/{id}"),
        ("/objects/5f1d7a3b", "/objects/{id}"),
        ("/t/eyJhbGciOiJIUzI1NiJ9x1", "/t/{id}"),
        ("/reports/2024-01-31", "/reports/{id}"),
        ("/orders/order-123456", "/orders/{id}"),
        ("/people/jane.doe@example.com", "/people/{id}"),
        ("/files/" + "a" * 80, "/files/{id}"),
        ("/users/42/", "/users/{id}/"),
        ("/search?q=42", "/search"),
        ("/users/7#top", "/users/{id}"),
        ("http://shop.internal:8080/users/9?x=1", "/users/{id}"),
        ("https://shop.internal", "/"),
        ("/api/checkout", "/api/checkout"),
        ("/deadbeef", "/deadbeef"),  # a word made of hex letters stays a word
        ("/authentication-service", "/authentication-service"),
    ],
)
def test_heuristic_templates(path: str, expected: str) -> None:
    assert template(RouteTemplater(), path) == expected


def test_bytes_targets_as_a_parser_gives_them() -> None:
    assert template(RouteTemplater(), b"/users/42?page=2") == "/users/{id}"


def test_control_characters_never_reach_a_route() -> None:
    """An ESC sequence or a CR in a logged path would run in the terminal of whoever reads
    the metrics; both ways of templating strip them."""
    nasty = ["/a\x1b[31m/b\r", "/users/42\x07", "/c\x9bd\x7f", "/healthz\r"]
    one_by_one, prefilled = RouteTemplater(), RouteTemplater()
    prefilled.prefill(nasty)
    for templater in (one_by_one, prefilled):
        assert [template(templater, path) for path in nasty] == \
            ["/a[31m/b", "/users/{id}", "/cd", None]
    assert strip_controls("/caf\u00e9 ok") == "/caf\u00e9 ok"


def test_explicit_patterns_win_over_the_heuristic_first_match_first() -> None:
    templater = RouteTemplater([
        RoutePattern("/users/me"),
        RoutePattern("/users/{user}"),
        RoutePattern("/static/*"),
        RoutePattern("/files/{name}.json"),
        RoutePattern("/a/*/c"),
        RoutePattern("/events", streaming=True),
    ])
    assert template(templater, "/users/me") == "/users/me"
    assert template(templater, "/users/12") == "/users/{user}"
    assert template(templater, "/users/jane") == "/users/{user}"
    assert template(templater, "/users/12/orders") == "/users/{id}/orders"
    for path in ("/static", "/static/", "/static/css/site.css"):
        assert template(templater, path) == "/static/*"
    assert template(templater, "/files/report.json") == "/files/{name}.json"
    assert template(templater, "/a/b/c") == "/a/*/c"
    assert template(templater, "/a/b/x/c") == "/a/b/x/c"
    route = templater.route("/events?since=1")
    assert route is not None and route.streaming
    assert not templater.route("/users/me").streaming  # type: ignore[union-attr]


def test_regex_characters_in_patterns_are_literal() -> None:
    templater = RouteTemplater([RoutePattern("/a.b/{id}")])
    assert template(templater, "/a.b/1") == "/a.b/{id}"
    assert template(templater, "/axb/1") == "/axb/{id}"  # heuristic, not the pattern


def test_health_checks_and_metrics_are_ignored_by_default() -> None:
    templater = RouteTemplater()
    for path in ("/healthz", "/readyz", "/livez", "/metrics", "/metrics?x=1"):
        assert templater.route(path) is None
    assert template(templater, "/healthz/deep") == "/healthz/deep"
    assert templater.ignores_user_agent("kube-probe/1.29")
    assert templater.ignores_user_agent(b"kube-probe/1.31")
    assert not templater.ignores_user_agent("curl/8.5.0")
    assert not templater.ignores_user_agent(None)


def test_cap_sends_new_routes_to_other_and_counts_each_request() -> None:
    templater = RouteTemplater(max_routes=2)
    assert template(templater, "/a") == "/a"
    assert template(templater, "/b/1") == "/b/{id}"
    assert templater.route("/c") is OTHER
    assert templater.route("/c") is OTHER  # cached, still counted
    assert template(templater, "/b/2") == "/b/{id}"  # admitted routes stay admitted
    assert templater.overflow_total == 2
    assert templater.distinct_routes == 2


def test_one_off_paths_never_fill_the_reserve_for_recurring_templates() -> None:
    """3,000 random paths once filled the cap and every later route was /{other} for good."""
    templater = RouteTemplater(max_routes=200)
    rng = random.Random(17)
    for _ in range(3000):
        path = "/" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(12))
        templater.route(path)
    assert templater.distinct_routes == 150  # the first-sight part; the reserve is free
    assert templater.route("/api/orders/77") is OTHER  # a new route, seen once
    assert template(templater, "/api/orders/78") == "/api/orders/{id}"  # it recurs
    assert template(templater, "/api/orders/77") == "/api/orders/{id}"
    assert templater.overflow_total == 3000 - 150 + 1


def test_the_reserve_is_a_quarter_of_the_cap_and_then_the_cap_holds() -> None:
    templater = RouteTemplater(max_routes=8)
    for name in "abcdef":
        assert template(templater, f"/{name}") == f"/{name}"
    assert templater.route("/g") is OTHER and templater.route("/h") is OTHER
    assert template(templater, "/g") == "/g" and template(templater, "/h") == "/h"
    assert templater.route("/i") is OTHER and templater.route("/i") is OTHER  # cap reached
    assert templater.distinct_routes == 8


def test_a_small_cache_gives_the_same_answers() -> None:
    paths = [f"/p{i % 30}/{i}" for i in range(500)]
    big = RouteTemplater(max_routes=20)
    small = RouteTemplater(max_routes=20, cache_size=7)
    assert [template(big, p) for p in paths] == [template(small, p) for p in paths]
    assert big.overflow_total == small.overflow_total


def test_heuristic_can_be_turned_off() -> None:
    assert template(RouteTemplater(heuristic=False), "/users/42") == "/users/42"


# --- the property: bounded, templated, deterministic ---------------------------------------

WORDS = ["api", "v1", "v2", "users", "orders", "items", "search", "static", "cart", "admin"]


def random_segment(rng: random.Random) -> str:
    kind = rng.randrange(8)
    if kind == 0:
        return str(rng.randrange(10**9))
    if kind == 1:
        return str(uuid.UUID(int=rng.getrandbits(128)))
    if kind == 2:
        return f"{rng.getrandbits(160):040x}"
    if kind == 3:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(16, 40))) + "7"
    if kind == 4:  # a random word: new literal routes, which is what the cap is for
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randrange(3, 9)))
    return rng.choice(WORDS)


def assert_is_template(route: str, path: str) -> None:
    """A route is /{other}, or literal non-id segments and {id}s that match the path."""
    if route == "/{other}":
        return
    segments = route.split("/")
    assert all(s == "{id}" or not is_id_segment(s) for s in segments), (route, path)
    pattern = "/".join("[^/]+" if s == "{id}" else re.escape(s) for s in segments)
    assert re.fullmatch(pattern, path.split("?", maxsplit=1)[0]), (route, path)


def test_a_million_distinct_paths_stay_within_the_cap() -> None:
    cap = 200
    templater = RouteTemplater(max_routes=cap)
    rng = random.Random(20261126)
    seen: set[str] = set()
    routes: dict[str, str] = {}
    samples: list[tuple[str, str]] = []
    while len(seen) < 1_000_000:
        path = "/" + "/".join(random_segment(rng) for _ in range(rng.randrange(1, 5)))
        if path in seen:
            continue
        seen.add(path)
        route = templater.route(path)
        assert route is not None
        routes[route.template] = path
        if len(samples) < 20_000:
            samples.append((path, route.template))
    assert len(routes) <= cap + 1
    assert "/{other}" in routes  # random words did overflow the cap
    for route_template, path in routes.items():
        assert_is_template(route_template, path)
    # The same path always maps to the same route, also after the cache was cleared many times;
    # or, if it was /{other}, to its own template if that took a reserve place since.
    assert templater.distinct_routes == cap
    for path, expected in samples:
        again = template(templater, path)
        assert again == expected or (expected == OTHER_TEMPLATE
                                     and again == heuristic_template(path))


segment = st.one_of(
    st.integers(min_value=0, max_value=10**12).map(str),
    st.uuids().map(str),
    st.sampled_from(WORDS),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~%@", min_size=1, max_size=70),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(segment, min_size=0, max_size=6).map(lambda s: "/" + "/".join(s)),
                min_size=1, max_size=60))
def test_property_bounded_templated_deterministic(paths: list[str]) -> None:
    cap = 10
    templater = RouteTemplater([RoutePattern("/static/*")], max_routes=cap)
    first = {path: template(templater, path) for path in paths}
    for path in paths:
        # The same route again, or its own template once that took a reserve place.
        again = template(templater, path)
        assert again == first[path] or (first[path] == OTHER_TEMPLATE
                                        and again == heuristic_template(path.split("?")[0]))
        first[path] = again
    values = {v for v in first.values() if v is not None}
    assert len(values - {"/static/*"}) <= cap + 1
    for path, route in first.items():
        if route is None:
            assert path.split("?")[0] in ("/healthz", "/readyz", "/livez", "/metrics")
        elif path == "/static" or path.startswith("/static/"):
            assert route == "/static/*"
        else:
            assert_is_template(route, path)


def one_pass_reference(path: str) -> str:
    """The heuristic as its definition says: each whole segment that is an id becomes {id}."""
    return "/".join(ID if i and is_id_segment(seg) else seg
                    for i, seg in enumerate(path.split("/")))


any_segment = st.one_of(segment, st.text(max_size=8),  # unicode digits, spaces, anything
                        st.sampled_from(["\u0663\u0664", "12 34", "a" * 66 + " b", ""]))
raw_paths = st.lists(any_segment, max_size=6).map(lambda s: "/" + "/".join(s))


@settings(max_examples=500, deadline=None)
@given(st.lists(raw_paths, min_size=1, max_size=30))
@example(["/0\n"])  # `$` matched before the final newline: '0\n' taken for an id
def test_property_staged_and_batched_heuristics_equal_the_definition(paths: list[str]) -> None:
    expected = [one_pass_reference(path) for path in paths]
    assert [heuristic_template(path) for path in paths] == expected
    assert heuristic_templates(paths) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(raw_paths, st.sampled_from(["/healthz", "/static/a.css", "",
                                                       "/a?b=1", "/u/1#x", "http://h/u/2"])),
                min_size=1, max_size=60), st.integers(min_value=1, max_value=12))
# An empty target (routed as '/') beside one holding " /" once passed prefill's check for
# plain paths, and '' was routed as ''.
@example(paths=["/", "", "/ /"], cap=2)
def test_property_prefill_changes_nothing_but_the_cost(paths: list[str], cap: int) -> None:
    """prefill, then route per request (the adapter's way) = route per request alone: same
    routes, same admission order, same overflow count."""
    def templater() -> RouteTemplater:
        return RouteTemplater([RoutePattern("/static/*")], max_routes=cap, cache_size=16)

    alone, prefilled = templater(), templater()
    expected = [alone.route(path) for path in paths]
    got = []
    for start in range(0, len(paths), 7):  # blocks of lines
        block = paths[start:start + 7]
        prefilled.prefill(block)
        got += [prefilled.route(path) for path in block]
    assert got == expected
    assert list(prefilled._admitted) == list(alone._admitted)
    assert prefilled.overflow_total == alone.overflow_total


# --- routes files ---------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    return path


def test_routes_file(tmp_path: Path) -> None:
    templater = load_routes(write(tmp_path, """
routes:
  - /users/{id}
  - pattern: /events
    streaming: true
ignore: [/internal/*]
ignore_user_agents: [GoogleHC/]
max_routes: 5
"""))
    assert template(templater, "/users/abc") == "/users/{id}"
    assert templater.route("/events").streaming  # type: ignore[union-attr]
    assert templater.route("/internal/debug") is None
    assert templater.route("/healthz") is None
    assert templater.ignores_user_agent("GoogleHC/1.0")
    assert not templater.ignores_user_agent("kube-probe/1.29")
    assert templater.max_routes == 5


def test_empty_routes_file_means_defaults(tmp_path: Path) -> None:
    templater = load_routes(write(tmp_path, ""))
    assert templater.route("/healthz") is None
    assert templater.max_routes == 200


def test_defaults_can_be_dropped(tmp_path: Path) -> None:
    templater = load_routes(write(tmp_path, "ignore_defaults: false\n"))
    assert template(templater, "/healthz") == "/healthz"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("routes:\n  - /ok\n  - users/{id}\n", r"routes\.yaml: routes\[1\]: expected a path "
                                                r"starting with '/', got 'users/{id}'"),
        ("routes:\n  - pattern: /a*b\n", r"routes\[0\]\.pattern: '\*' must be a whole segment"),
        ("routes:\n  - pattern: 5\n", r"routes\[0\]\.pattern: expected a non-empty string, got 5"),
        ("routes:\n  - pattern: /a\n    stream: true\n", r"routes\[0\]: unknown key 'stream'"),
        ("max_routes: 0\n", r"max_routes: expected a whole number >= 1, got 0"),
        ("max_routes: many\n", r"max_routes: expected a whole number >= 1, got 'many'"),
        ("heuristic: maybe\n", r"heuristic: expected true or false, got 'maybe'"),
        ("routes: /a\n", r"routes: expected a list, got '/a'"),
        ("- /a\n", r"routes\.yaml: expected a mapping"),
        ("routes: [\n", r"routes\.yaml: not valid YAML"),
        ("rutes: []\n", r"unknown key 'rutes'"),
    ],
)
def test_bad_routes_files_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_routes(write(tmp_path, text))


def test_missing_routes_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read"):
        load_routes(tmp_path / "nope.yaml")
