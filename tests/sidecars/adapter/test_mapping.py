"""The mapping language and the statsd parser, pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from redline.config import ConfigError
from redline.exporters.exposition import new_registry
from redline.exporters.red import ServerRecorder
from redline.exporters.routes import RouteTemplater
from redline.sidecars.adapter.mapping import load_mapping
from redline.sidecars.adapter.plain import PlainSeries
from redline.sidecars.adapter.translate import StatsdTranslator, flatten, parse_statsd

MAPPING = """
mappings:
  - match: "shop.http.*.*.*"
    name: request
    labels: {method: "$1", route: "/$2", status: "$3"}
  - match: 'legacy_(?P<kind>\\w+)_latency'
    match_type: regex
    name: request
    labels: {method: "${verb}", route: "${path}", status: "${code}"}
  - match: "db.pool.state"
    name: shop_db_pool_up
    value_map: {ok: 1, degraded: 0.5, down: 0}
  - match: "shop.jobs.*"
    name: shop_jobs_total
    type: counter
    labels: {queue: "$1"}
  - match: "shop.debug.*"
    action: drop
  - match: "shop.*.*.*.*"
    name: never_reached
"""


def mapping_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    return path


def test_glob_regex_labels_and_first_match(tmp_path: Path) -> None:
    mapping = load_mapping(mapping_file(tmp_path, MAPPING))
    mapped = mapping.match("shop.http.GET.users.200")
    assert mapped is not None
    assert mapped.labels == {"method": "GET", "route": "/users", "status": "200"}
    legacy = mapping.match("legacy_http_latency", {"verb": "PUT", "path": "/a", "code": "503"})
    assert legacy is not None
    assert legacy.labels == {"method": "PUT", "route": "/a", "status": "503"}
    assert mapping.match("shop.debug.x") is None  # dropped
    assert mapping.match("other.metric") is None  # no rule
    assert mapping.match("shop.http.GET.users") is None  # globs match whole names
    pool = mapping.match("db.pool.state")
    assert pool is not None
    assert (pool.value("degraded"), pool.value(3), pool.value("7.5"), pool.value("??")) == \
        (0.5, 3.0, 7.5, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mappings: []\n", r"mapping\.yaml: mappings: expected a non-empty list"),
        ("mappings:\n  - name: request\n", r"mappings\[0\]\.match: expected a non-empty"),
        ("mappings:\n  - match: a\n    match_type: re\n    name: x\n",
         r"mappings\[0\]\.match_type: expected glob or regex, got 're'"),
        ("mappings:\n  - match: '(('\n    match_type: regex\n    name: x\n",
         r"mappings\[0\]\.match: not a valid regular expression"),
        ("mappings:\n  - match: a\n    name: request\n    labels: {host: x}\n",
         r"mappings\[0\]\.labels\.host: a request has the labels method, route, status"),
        ("mappings:\n  - match: a\n    name: 9bad\n",
         r"mappings\[0\]\.name: expected 'request' or a Prometheus metric name"),
        ("mappings:\n  - match: a\n    name: x\n    type: histogram\n",
         r"mappings\[0\]\.type: expected counter or gauge"),
        ("mappings:\n  - match: a\n    name: x\n    value_map: {ok: yes}\n",
         r"mappings\[0\]\.value_map\.ok: expected a number"),
        ("mappings:\n  - match: a\n    nam: x\n", r"mappings\[0\]: unknown key 'nam'"),
        ("mapings: []\n", r"unknown key 'mapings'"),
    ],
)
def test_bad_mappings_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_mapping(mapping_file(tmp_path, text))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("a.b:1|c", [("a.b", 1.0, "c", 1.0, {})]),
        ("a.b:250|ms|@0.5", [("a.b", 250.0, "ms", 0.5, {})]),
        ("a:1.5|h|#method:GET,status:200", [("a", 1.5, "h", 1.0,
                                              {"method": "GET", "status": "200"})]),
        ("a:1:2:3|d", [("a", 1.0, "d", 1.0, {}), ("a", 2.0, "d", 1.0, {}),
                       ("a", 3.0, "d", 1.0, {})]),
        ("a:-4|g", [("a", -4.0, "g", 1.0, {})]),
    ],
)
def test_statsd_lines(line: str, expected: list[tuple[object, ...]]) -> None:
    samples = parse_statsd(line)
    assert samples is not None
    assert [(s.name, s.value, s.kind, s.rate, s.tags) for s in samples] == expected


@pytest.mark.parametrize("line", ["", "a", "a:1", "a:1|x", "a:x|c", ":1|c", "a:1|c|@2",
                                  "a:1|c|@0", "a:1|c|junk", "\x00\xff:1|"])
def test_bad_statsd_lines(line: str) -> None:
    assert parse_statsd(line) is None


def test_statsd_translation(tmp_path: Path) -> None:
    mapping = load_mapping(mapping_file(tmp_path, MAPPING))
    recorder = ServerRecorder("shop")
    translator = StatsdTranslator(mapping, recorder, RouteTemplater())
    registry = new_registry("t", recorder.collector(), translator.plain)
    translator.feed(b"shop.http.GET.users.200:120|ms|@0.5\nshop.http.POST.orders.503:3|c\n"
                    b"shop.jobs.email:4|c\nshop.jobs.email:1|c|@0.25\n"
                    b"garbage\nshop.http.GET.users.abc:1|ms\nunknown.metric:1|c\n")
    labels = {"service_name": "shop", "http_request_method": "GET", "http_route": "/users",
              "http_response_status_code": "200", "url_scheme": "http", "error_type": ""}
    count = registry.get_sample_value("http_server_request_duration_seconds_count", labels)
    assert count == 2  # a timer sampled at 0.5 stands for two requests
    assert registry.get_sample_value("http_server_request_duration_seconds_sum", labels) \
        == pytest.approx(0.24)
    untimed = {**labels, "http_request_method": "POST", "http_route": "/orders",
               "http_response_status_code": "503", "error_type": "503"}
    assert registry.get_sample_value("redline_untimed_requests_total", untimed) == 3
    assert registry.get_sample_value("shop_jobs_total", {"queue": "email"}) == 8
    assert (translator.lines, translator.parse_errors, translator.unmapped) == (7, 2, 1)


def test_statsd_values_that_would_break_a_series_are_refused(tmp_path: Path) -> None:
    mapping = load_mapping(mapping_file(tmp_path, MAPPING))
    recorder = ServerRecorder("shop")
    translator = StatsdTranslator(mapping, recorder, RouteTemplater())
    registry = new_registry("t", recorder.collector(), translator.plain)
    translator.feed(b"shop.jobs.email:3|c\nshop.jobs.email:-5|c\nshop.jobs.email:nan|c\n"
                    b"shop.jobs.email:1e308|c|@0.5\nshop.http.GET.users.200:inf|ms\n"
                    b"shop.http.GET.users.200:-1|ms\nshop.http.POST.users.503:-2|c\n"
                    b"shop.http.GET.users.200:1e308|h|@0.5\ndb.pool.state:-1|g\n")
    assert registry.get_sample_value("shop_jobs_total", {"queue": "email"}) == 3
    assert registry.get_sample_value("shop_db_pool_up") == -1  # a gauge may be negative
    assert registry.get_sample_value("http_server_request_duration_seconds_count", {
        "service_name": "shop", "http_request_method": "GET", "http_route": "/users",
        "http_response_status_code": "200", "url_scheme": "http", "error_type": ""}) is None
    assert translator.rejected_values == 7
    assert (translator.parse_errors, translator.unmapped) == (0, 0)


def test_a_tiny_sample_rate_is_one_weighted_observation_at_the_floor(tmp_path: Path) -> None:
    mapping = load_mapping(mapping_file(tmp_path, MAPPING))
    recorder = ServerRecorder("shop")
    translator = StatsdTranslator(mapping, recorder, RouteTemplater())
    registry = new_registry("t", recorder.collector())
    translator.feed(b"shop.http.GET.users.200:5|ms|@0.00000001\n"
                    b"shop.http.GET.users.200:5|ms|@0.01\n")
    labels = {"service_name": "shop", "http_request_method": "GET", "http_route": "/users",
              "http_response_status_code": "200", "url_scheme": "http", "error_type": ""}
    assert registry.get_sample_value("http_server_request_duration_seconds_count",
                                     labels) == 1000 + 100
    assert registry.get_sample_value("http_server_request_duration_seconds_bucket",
                                     {**labels, "le": "0.005"}) == 1100
    assert registry.get_sample_value("http_server_request_duration_seconds_sum",
                                     labels) == pytest.approx(5.5)
    assert translator.clamped_rates == 1


def test_a_rule_past_its_series_cap_folds_counters_and_drops_gauges(tmp_path: Path) -> None:
    mapping = load_mapping(mapping_file(tmp_path, MAPPING + """
  - match: "shop.queue.*"
    name: shop_queue_depth
    labels: {queue: "$1"}
"""))
    translator = StatsdTranslator(mapping, ServerRecorder("shop"), RouteTemplater(),
                                  PlainSeries(max_series=3))
    registry = new_registry("t", translator.plain)
    translator.feed(b"".join(b"shop.jobs.q%d:1|c\nshop.queue.q%d:%d|g\n" % (i, i, i)
                             for i in range(10)))
    translator.feed(b"shop.jobs.q0:1|c\nshop.queue.q1:7|g\n")  # admitted series go on
    jobs = [(s.labels, s.value) for family in registry.collect() for s in family.samples
            if s.name == "shop_jobs_total"]
    assert jobs == [({"queue": "_OTHER"}, 7.0), ({"queue": "q0"}, 2.0), ({"queue": "q1"}, 1.0),
                    ({"queue": "q2"}, 1.0)]
    depths = {s.labels["queue"]: s.value for family in registry.collect()
              for s in family.samples if s.name == "shop_queue_depth"}
    assert depths == {"q0": 0, "q1": 7, "q2": 2}
    assert translator.plain.capped == 14


def test_control_characters_never_reach_a_mapped_label(tmp_path: Path) -> None:
    mapping = load_mapping(mapping_file(tmp_path, MAPPING))
    translator = StatsdTranslator(mapping, ServerRecorder("shop"), RouteTemplater())
    registry = new_registry("t", translator.plain)
    translator.feed(b"shop.jobs.e\x1b[2Jmail\r:1|c\n")
    assert registry.get_sample_value("shop_jobs_total", {"queue": "e[2Jmail"}) == 1


def test_flatten_json() -> None:
    document = {"db": {"pool": {"active": 3, "state": "ok"}}, "workers": [{"busy": True}]}
    assert dict(flatten(document)) == {"db.pool.active": 3, "db.pool.state": "ok",
                                       "workers.0.busy": True}
