"""redline's format negotiation answers every Accept header as prometheus_client's
choose_encoder does (the format, the escaping, the content type), without importing it."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import exposition
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics import exposition as openmetrics_exposition

from redline.exporters.exposition import collectors_of, new_registry, render
from redline.exporters.negotiate import Format, negotiate
from redline.exporters.sliced import pieces
from redline.exporters.textformat import FallbackError

PROMETHEUS_2 = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
PROMETHEUS_3 = ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
                "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;"
                "escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1")
# Prometheus 3 with scrape_protocols: [PrometheusText1.0.0, PrometheusText0.0.4]
PROMETHEUS_3_TEXT = ("text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,"
                     "text/plain;version=0.0.4;q=0.4,*/*;q=0.3")
HEADERS = [
    "", "*/*", "text/plain", "text/plain; version=0.0.4", "text/plain;version=1.0.0",
    "text/plain; version=1.0.0; charset=utf-8; escaping=underscores",
    "text/plain;version=1.0.0;escaping=dots", "text/plain;version=1.0.0;escaping=values",
    "text/plain;version=1.0.0;escaping=nonsense", "text/plain;version=2",
    "application/openmetrics-text", "application/openmetrics-text; version=1.0.0",
    "application/openmetrics-text; version=1.0.0; charset=utf-8",
    "application/openmetrics-text;version=0.0.1", "application/openmetrics-text;version=2.0.0",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;escaping=dots",
    "application/openmetrics-text;version=", "application/openmetrics-text;version=1",
    "application/openmetrics-text;version=1.0.0.1", "application/openmetrics-text;version= 1.0",
    "application/openmetrics-text ; version=1.0.0", "APPLICATION/OPENMETRICS-TEXT",
    "application/openmetrics-text;q=0.1,text/plain;version=1.0.0;q=1",
    "text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.1",
    "text/html, application/xhtml+xml, application/xml;q=0.9, */*;q=0.8",
    PROMETHEUS_2, PROMETHEUS_3, PROMETHEUS_3_TEXT, ";;,,;=;", "version=1.0.0", "text/plain;=",
]
# choose_encoder raises TypeError for these (a version part that is not a number compared
# with 1.0.0's): redline passes the media range over instead.
UNCOMPARABLE = ["application/openmetrics-text;version=x",
                "text/plain;version=1.y.0", "application/openmetrics-text;version=1.0.0-rc1"]


def choose_encoder(accept: str) -> Format:
    """choose_encoder's answer in negotiate's terms."""
    encoder, content_type = exposition.choose_encoder(accept)
    if isinstance(encoder, partial):
        escaping = encoder.keywords["escaping"]
        return Format(encoder.func is openmetrics_exposition.generate_latest, escaping,
                      content_type)
    assert encoder is exposition.generate_latest
    return Format(False, "underscores", content_type)


@pytest.mark.parametrize("accept", HEADERS)
def test_answers_as_choose_encoder(accept: str) -> None:
    assert negotiate(accept) == choose_encoder(accept)


def test_prometheus_gets_what_it_prefers() -> None:
    assert negotiate(PROMETHEUS_2) == Format(True, "underscores", (
        "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"))
    assert negotiate(PROMETHEUS_3) == Format(True, "allow-utf-8", (
        "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"))
    assert negotiate(PROMETHEUS_3_TEXT) == Format(False, "allow-utf-8", (
        "text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8"))
    assert negotiate(None) == negotiate("") == Format(
        False, "underscores", "text/plain; version=0.0.4; charset=utf-8")


@pytest.mark.parametrize("accept", UNCOMPARABLE)
def test_an_uncomparable_version_is_passed_over(accept: str) -> None:
    with pytest.raises(TypeError):
        exposition.choose_encoder(accept)
    assert negotiate(accept) == negotiate("")
    assert negotiate(accept + ",application/openmetrics-text") == negotiate(
        "application/openmetrics-text")


@pytest.mark.parametrize("accept", [*HEADERS, *UNCOMPARABLE])
def test_the_content_type_selects_its_format_again(accept: str) -> None:
    """admin.py shares renders by the content type chosen, and falls back to prometheus_client
    with it as the Accept header: both must mean the format first chosen (an OpenMetrics type
    without an escaping gains `escaping=underscores`, the same format, once)."""
    chosen = negotiate(accept)
    again = negotiate(chosen.content_type)
    assert again[:2] == chosen[:2]
    assert negotiate(again.content_type) == again == choose_encoder(again.content_type)


class OnlyPrometheusClientWrites:
    """Families redline's writers leave to prometheus_client's encoders: a `:` in a name
    (OpenMetrics) and a timestamp (text)."""

    def collect(self) -> Iterable[Metric]:
        colon = GaugeMetricFamily("job:up", "Recorded by a rule.")
        colon.add_metric([], 1)
        stamped = GaugeMetricFamily("stamped", "With a timestamp.")
        stamped.add_metric([], 1, timestamp=5)
        return [colon, stamped]


@pytest.mark.parametrize("accept", [*HEADERS, *UNCOMPARABLE])
def test_the_fallback_answers_the_content_type_negotiated(accept: str) -> None:
    fallback = new_registry("test", OnlyPrometheusClientWrites())
    with pytest.raises(FallbackError):
        b"".join(pieces(collectors_of(fallback), accept)[0])
    assert render(fallback, accept)[1] == render(new_registry("test"), accept)[1] == negotiate(
        accept).content_type


# Media ranges built from the pieces that matter, in any order and spacing.
_MEDIA = st.sampled_from(["application/openmetrics-text", "text/plain", "*/*", "text/html",
                          " text/plain ", "application/openmetrics-text "])
_VERSION = st.sampled_from(["0.0.1", "0.0.4", "1", "1.0", "1.0.0", "1.0.0.0", "2.0.0", "10",
                            "", "01.0.0", " 1.0.0", "1.0.0 "])
_PARAM = st.one_of(
    _VERSION.map(lambda version: f"version={version}"),
    st.sampled_from(["allow-utf-8", "underscores", "dots", "values", "x", ""]).map(
        lambda escaping: f"escaping={escaping}"),
    st.sampled_from(["q=0.5", "q=1", "charset=utf-8", "", "=", "version", " version=1.0.0"]),
)
_RANGE = st.tuples(_MEDIA, st.lists(_PARAM, max_size=4), st.sampled_from([";", "; ", " ;"])
                   ).map(lambda parts: parts[2].join([parts[0], *parts[1]]))


@given(st.lists(_RANGE, max_size=4).map(",".join))
def test_generated_headers_answer_as_choose_encoder(accept: str) -> None:
    assert negotiate(accept) == choose_encoder(accept)


@given(st.text(max_size=80))
def test_any_text_answers_as_choose_encoder_or_passes_over(accept: str) -> None:
    try:
        expected = choose_encoder(accept)
    except TypeError:  # an uncomparable version: passed over, the answer is still a format
        assert negotiate(accept).content_type
        return
    assert negotiate(accept) == expected
