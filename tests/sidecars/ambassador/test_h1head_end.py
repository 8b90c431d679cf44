"""_h1head.c's head_end, where a head ends, against bytes.find (its specification): random
data heavy in CR and LF (partial CRLFCRLFs before, overlapping and after the whole one, one at
the very end), from every position, the empty data, real heads; and the arguments it refuses.
A file of its own beside test_h1head.py, which tests the readers of the heads."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redline.compiled import pure_forced
from redline.sidecars.ambassador import http1
from tests.sidecars.ambassador.test_h1head import COMMON_REQUESTS, COMMON_RESPONSES, h1head

END = b"\r\n\r\n"
PIECES = [b"\r", b"\n", b"\r\n", b"\r\n\r", b"\n\r\n", END, b"\r\r\n\n", b"a", b"\x00", b"\xff"]
CR_LF_HEAVY = st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join)


def check(data: bytes) -> None:
    """head_end and http1.find_head_end (whichever path it takes) from every position."""
    for pos in range(len(data) + 1):
        expected = data.find(END, pos)
        assert h1head.head_end(data, pos) == expected, (data, pos)
        assert http1.find_head_end(data, pos) == expected, (data, pos)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(CR_LF_HEAVY, st.binary(max_size=120)))
def test_head_end_is_bytes_find(data: bytes) -> None:
    check(data)


def test_heads_and_their_ends() -> None:
    check(b"")
    check(END)
    for head in [*COMMON_REQUESTS, *COMMON_RESPONSES]:
        check(head)  # the end as the data's last bytes
        check(head + b"ok\n" + head)  # a body, then a pipelined head
        for cut in range(len(head)):  # a head not all there yet
            assert h1head.head_end(head[:cut], 0) == -1
    mib = 1 << 20
    for data in [b"\r" * mib + b"\n\r\n", b"\r\n" * mib, b"\r\n\r" * mib + b"\n", b"x" * mib]:
        for pos in (0, 1, len(data) - 4, len(data) - 3, len(data)):
            assert h1head.head_end(data, pos) == data.find(END, pos), (len(data), pos)


def test_arguments_are_checked() -> None:
    head = COMMON_REQUESTS[0]
    # Exactly bytes and an int, as the ambassador passes a transport's chunk: anything else is
    # a caller's bug, told as one (not declined: bytes.find, the fallback, would also differ).
    for data in [bytearray(head), memoryview(head), head.decode(), None,
                 type("Sub", (bytes,), {})(head)]:
        with pytest.raises(TypeError, match="takes bytes and an int"):
            h1head.head_end(data, 0)
    for pos in [0.0, "0", None]:
        with pytest.raises(TypeError, match="takes bytes and an int"):
            h1head.head_end(head, pos)
    for args in [(), (head,), (head, 0, 0)]:
        with pytest.raises(TypeError, match="takes 2 arguments"):
            h1head.head_end(*args)
    with pytest.raises(TypeError):
        h1head.head_end(head, pos=0)
    # Positions outside the data: bytes.find would count a negative one from the end.
    for pos in [-1, len(head) + 1, 1 << 64, -(1 << 64)]:
        with pytest.raises(ValueError, match="outside the data"):
            h1head.head_end(head, pos)
    assert h1head.head_end(head, len(head)) == -1
    assert h1head.head_end(head, True) == head.find(END, 1)  # an int as bytes.find takes it


def test_http1_uses_head_end_unless_pure() -> None:
    assert http1.FIND_HEAD_END is (None if pure_forced() else h1head.head_end)
