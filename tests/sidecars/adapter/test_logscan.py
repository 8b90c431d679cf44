"""The C reader of `combined` lines (_logscan.c) against the reference regex: the same random
blocks (valid lines, near-valid ones with one field broken, garbage, NULs, invalid UTF-8 decoded
as the tailer decodes it, CRLF, empty and unterminated lines) read by both. Where the reader
answers, every row must be findall's; wherever it declines, the regex reads the block; and the
metrics of a pipeline with the reader must be those of one without it."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redline.compiled import pure_forced
from redline.exporters.red import ServerRecorder
from redline.exporters.routes import RouteTemplater
from redline.sidecars.adapter.formats import (
    SCAN_APACHE,
    SCAN_NGINX,
    RegexFormat,
    apache_format,
    custom_format,
    nginx_format,
)
from redline.sidecars.adapter.pipeline import LogPipeline
from tests.compiled.optional import load_optional

logscan = load_optional("redline.sidecars.adapter._logscan")

FORMATS = [(nginx_format(), SCAN_NGINX), (apache_format("us"), SCAN_APACHE),
           (apache_format("s"), SCAN_APACHE)]

# --- random lines ----------------------------------------------------------------------------

# Characters that end or delimit a field, and some that no field expects.
ODD = ' "[]?-.\t\r\x00\\/xA09é\ufffd'
odd_text = st.text(ODD, max_size=8)
word = st.text("abcXYZ019_-./%:", min_size=1, max_size=10)


@st.composite
def field(draw: st.DrawFn, valid: st.SearchStrategy[str]) -> str:
    """Mostly a valid value; one in twenty replaced by odd characters or followed by them (a
    line has 13 fields: about half the lines come out valid)."""
    broken = draw(st.integers(0, 39))
    if broken == 0:
        return draw(odd_text)
    return draw(valid) + (draw(odd_text) if broken == 1 else "")


request = st.one_of(
    st.builds(lambda m, p, q, v: f"{m} {p}{q}{v}",
              field(st.sampled_from(["GET", "POST", "PUT", "get", "M-_x", "PROPFIND"])),
              field(word.map(lambda text: "/" + text)),
              st.sampled_from(["", "?a=1", "?", "?a?b", "?a b"]),
              st.sampled_from([" HTTP/1.1", " HTTP/2.0", "", " HTTP/", " HTTP/1.x", " http/1.1",
                               " HTTP/1.1 x"])),
    st.sampled_from(["", "-", "\\x16\\x03\\x01", "GET", "GET ", "GET  HTTP/1.1", "\\\"", " "]),
    odd_text)
duration = st.sampled_from(["", " 0.123", " 12", " -", " 1.", " .5", " 0.5 0.4", " 0.5 -",
                            " 0.5\r", " 0.5 \t", " \t", "\r", " 1.5x", "  0.1", " 12345",
                            " 0.5\tx", " 7 upstream", " -5", " 1..2"])


@st.composite
def log_line(draw: st.DrawFn) -> str:
    """One line without its newline: mostly `combined` with a duration, with broken fields."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(ODD + "abc", max_size=40))  # garbage
    parts = [draw(field(st.sampled_from(["10.0.0.1", "::1", "host"]))), " ",
             draw(field(st.just("-"))), " ", draw(field(st.sampled_from(["-", "bob"]))), " ",
             draw(field(st.just("[26/Nov/2026:16:00:00 +0000]"))), ' "', draw(request), '" ',
             draw(field(st.sampled_from(["200", "404", "503", "099"]))), " ",
             draw(field(st.sampled_from(["-", "0", "1234"]))), ' "',
             draw(field(st.sampled_from(["-", "http://a/b?c"]))), '" "',
             draw(field(st.sampled_from(["Mozilla/5.0 (X11)", "kube-probe/1.29", ""]))), '"',
             draw(duration)]
    return "".join(parts)


@st.composite
def block(draw: st.DrawFn) -> str:
    """Complete lines as the tailer hands them on: bytes decoded with replacement."""
    lines = draw(st.lists(log_line(), min_size=1, max_size=6))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text = "".join(line + ending for line in lines)
    if draw(st.integers(0, 5)) == 0:  # raw bytes: invalid UTF-8 as the tailer decodes it
        raw = bytearray(text.encode())
        raw.insert(draw(st.integers(0, len(raw) - 1)), draw(st.sampled_from([0xff, 0xc3, 0x80])))
        text = raw.decode("utf-8", "replace")
    return text


def valid_line(rng: random.Random) -> str:
    path = rng.choice(["/users/{}", "/a/{}/b", "/s?q={}", "/x%20{}"]).format(rng.randrange(999))
    return (f'10.0.0.{rng.randrange(256)} - - [26/Nov/2026:16:00:00 +0000] '
            f'"{rng.choice(["GET", "POST"])} {path} HTTP/1.1" {rng.choice([200, 404, 503])} '
            f'{rng.randrange(9999)} "-" "{rng.choice(["curl/8", "kube-probe/1.29"])}" '
            f'{rng.random():.3f}\n')


# --- the reader against the regex ------------------------------------------------------------

def check_block(text: str) -> bool:
    """Each format's reader against its reference regex on `text`; whether any reader answered."""
    answered = False
    for fmt, kind in FORMATS:
        rows = logscan.scan(text, kind, True)
        if rows is None:
            continue
        answered = True
        assert rows == fmt.regex.findall(text), text
        assert len(rows) == text.count("\n")
        without_agents = logscan.scan(text, kind, False)
        assert without_agents == [(*row[:4], "", row[5]) for row in rows]
    return answered


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block())
def test_the_reader_gives_the_regex_rows_or_declines(text: str) -> None:
    check_block(text)
    for _, kind in FORMATS:  # a partial last line (the tailer never hands one on): declined
        assert logscan.scan(text.rstrip("\n"), kind, True) is None
    for line in text.splitlines(keepends=True):  # each line alone too
        if line.endswith("\n"):
            check_block(line)


def test_it_reads_valid_lines_and_declines_what_it_must() -> None:
    rng = random.Random(7)
    text = "".join(valid_line(rng) for _ in range(500))
    assert check_block(text)  # it answers for valid lines (else every comparison above is idle)
    assert logscan.scan(text + "10.0.0.1 - - [x] \"GET", SCAN_NGINX, True) is None  # no newline
    assert logscan.scan(text + "\n", SCAN_NGINX, True) is None  # an empty line
    assert logscan.scan(text.replace("curl/8", "curl/é"), SCAN_NGINX, True) is None  # not ASCII
    # A request quote left open: the reference's `bad` runs on into the next line.
    assert logscan.scan(text.replace(' HTTP/1.1"', " HTTP/1.1", 1), SCAN_NGINX, True) is None
    assert logscan.scan("", SCAN_NGINX, True) is None
    with pytest.raises(ValueError):
        logscan.scan(text, 2, True)


def test_huge_lines_and_binary_garbage_are_bad_lines_not_crashes() -> None:
    rng = random.Random(3)
    huge = ('1 - - [t] "GET /' + "a" * 5_000_000 + ' HTTP/1.1" 200 1 "-" "x" 0.1\n')
    assert logscan.scan(huge, SCAN_NGINX, True) == [("GET", "/" + "a" * 5_000_000, "", "200",
                                                      "x", "0.1")]
    garbage = bytes(rng.randrange(256) for _ in range(200_000)).decode("utf-8", "replace")
    fmt = nginx_format()
    rows, bad = fmt.rows(garbage.replace("\n", "") + "\n")
    assert (rows, bad) == ([], 1)
    ascii_garbage = "".join(chr(rng.randrange(1, 128)) for _ in range(200_000)) + "\n"
    assert logscan.scan(ascii_garbage, SCAN_NGINX, True) in (None, fmt.regex.findall(ascii_garbage))


# --- durations --------------------------------------------------------------------------------

def float_or_error(strings: list[str]) -> list[float] | str:
    try:
        return list(map(float, strings))
    except ValueError as exc:
        return str(exc)


def floats_or_error(strings: list[str]) -> list[float] | str:
    try:
        values: list[float] = logscan.floats(strings)
    except ValueError as exc:
        return str(exc)
    return values


decimal = st.one_of(
    st.builds(lambda whole, frac: whole + frac, st.text("0123456789", min_size=1, max_size=17),
              st.one_of(st.just(""), st.text("0123456789", max_size=17).map(lambda d: "." + d))),
    st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(repr),
    st.text("0123456789.-+e _ \u0663", max_size=8))


@settings(max_examples=3000, deadline=None)
@given(st.lists(decimal, max_size=5))
def test_floats_are_float_of_each_string(strings: list[str]) -> None:
    expected = float_or_error(strings)
    got = floats_or_error(strings)
    assert got == expected
    if isinstance(got, list) and isinstance(expected, list):  # 0.0 == -0.0: the bits too
        assert [v.hex() for v in got] == [v.hex() for v in expected]


# --- whole pipelines -------------------------------------------------------------------------

Samples = list[tuple[str, list[tuple[str, str]], float]]


def run(fmt: RegexFormat, blocks: list[str]) -> tuple[int, int, Samples]:
    routes = RouteTemplater()
    recorder = ServerRecorder("svc", routes=routes)
    pipeline = LogPipeline(fmt, recorder, routes)
    for text in blocks:
        pipeline.feed(text)
    samples = sorted((s.name, sorted(s.labels.items()), s.value)
                     for metric in recorder.collector().collect() for s in metric.samples)
    return pipeline.lines, pipeline.parse_errors, samples


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(block(), min_size=1, max_size=4), st.integers(0, 1000))
def test_a_pipeline_with_the_reader_records_what_one_without_it_does(
        blocks: list[str], seed: int) -> None:
    rng = random.Random(seed)
    blocks.append("".join(valid_line(rng) for _ in range(20)))  # one the reader surely reads
    for make in (nginx_format, apache_format):
        with_reader, without = make(), make()
        with_reader.scan, without.scan = logscan.scan, None
        assert run(with_reader, blocks) == run(without, blocks)


def test_the_formats_use_the_reader_unless_pure() -> None:
    expected = None if pure_forced() else logscan.scan
    assert nginx_format().scan is expected
    assert apache_format().scan is expected
    assert custom_format(r"(?P<path>\S+) (?P<status>\d+)").scan is None
