"""The shared flag parsers: values in, typed values out, errors that say what was expected."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

import pytest

from redline import flags


@pytest.mark.parametrize(("parse", "text", "expected"), [
    (flags.host_port, "127.0.0.1:8080", ("127.0.0.1", 8080)),
    (flags.host_port, ":9901", ("0.0.0.0", 9901)),
    (flags.host_port, "[::1]:0", ("::1", 0)),
    (flags.port_number, "15080", 15080),
    (flags.positive_seconds, "0.5", 0.5),
    (flags.non_negative_seconds, "0", 0.0),
    (flags.positive_integer, "1024", 1024),
    (flags.ratio, "0", 0.0),
    (flags.ratio, "1", 1.0),
    (flags.buckets, "0.1, 0.5,1", (0.1, 0.5, 1.0)),
])
def test_good_values(parse: Callable[[str], object], text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(("parse", "text", "message"), [
    (flags.host_port, "8080", "expected HOST:PORT with a port from 0 (any free) to 65535"),
    (flags.host_port, "h:70000", "expected HOST:PORT"),
    (flags.port_number, "0", "expected a port from 1 to 65535, got '0'"),
    (flags.positive_seconds, "0", "expected a number of seconds > 0, got '0'"),
    (flags.positive_seconds, "inf", "expected a number of seconds > 0"),
    (flags.positive_seconds, "5s", "expected a number of seconds > 0, got '5s'"),
    (flags.non_negative_seconds, "-1", "expected a number of seconds >= 0, got '-1'"),
    (flags.non_negative_seconds, "nan", "expected a number of seconds >= 0, got 'nan'"),
    (flags.positive_integer, "0", "expected a whole number >= 1, got '0'"),
    (flags.positive_integer, "1.5", "expected a whole number >= 1"),
    (flags.ratio, "1.1", "expected a ratio from 0 to 1, got '1.1'"),
    (flags.ratio, "x", "expected a ratio from 0 to 1, got 'x'"),
    (flags.buckets, "0.1,x", "expected numbers separated by commas"),
    (flags.buckets, "1,0.5", "expected strictly increasing values"),
])
def test_bad_values_say_what_was_expected(parse: Callable[[str], object], text: str,
                                          message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse(text)
    with pytest.raises(argparse.ArgumentTypeError) as wrapped:
        flags.flag_type(parse)(text)
    assert message in str(wrapped.value)  # argparse prints exactly this
