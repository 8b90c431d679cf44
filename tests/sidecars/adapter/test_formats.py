"""The built-in formats read a block as their reference pattern does: the line-bound variants
(the faster scan) give the reference's rows and error counts on any block, well-formed lines,
garbage, and lines cut and spliced so that a field runs on into the next line."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from redline.sidecars.adapter.formats import RegexFormat, apache_format, nginx_format

FORMATS = {"nginx": nginx_format(), "apache": apache_format()}
GOOD = ('10.0.0.1 - - [02/Dec/2026:13:00:00 +0000] "GET /users/7?x=1 HTTP/1.1" 200 12 "-" '
        '"kube-probe/1.29" 0.005 -')
# What breaks a line in the places the variants differ: the characters their classes stop at.
TOKENS = [" ", '"', "[", "]", "-", "\t", "\r", "GET ", "/a/1", "200", "0.5", " HTTP/1.1",
          "?q", "\x16\x03", "é"]


@st.composite
def log_line(draw: st.DrawFn) -> str:
    line = GOOD
    for _ in range(draw(st.integers(0, 3))):
        start = draw(st.integers(0, len(line)))
        end = draw(st.integers(start, min(len(line), start + 12)))
        line = line[:start] + draw(st.sampled_from(["", *TOKENS])) + line[end:]
    return line


# A line's head and another's tail on the next line: what a field running on would join.
cut = st.integers(0, len(GOOD))
lines = st.one_of(log_line(), cut.map(lambda i: GOOD[:i]), cut.map(lambda i: GOOD[i:]),
                  st.text(max_size=20))
blocks = st.lists(lines, min_size=1, max_size=8).map(
    lambda block: "".join(line.replace("\n", "") + "\n" for line in block))


def reference(fmt: RegexFormat, text: str) -> tuple[list[tuple[str, ...]], int]:
    rows = fmt.regex.findall(text)
    return rows, sum(1 for line in text.split("\n")[:-1] if line) - len(rows)


@settings(max_examples=600, deadline=None)
@given(name=st.sampled_from(sorted(FORMATS)), text=blocks)
@example(name="nginx", text=f"{GOOD}\n10.0.0.2 - - [x\n] \"GET /b HTTP/1.1\" 200 1 \"-\" \"-\"\n")
@example(name="nginx", text='1 - - [t] "GET /a HTTP/1.1" 200 1 "-" "a\nb" 1\n')
# Python before 3.11.5 read this line's "0." as a duration (possessive groups), the reference not.
@example(name="nginx",
         text='10.0.0.1 - - [t] "GET /a HTTP/1.1" 200 12 "-" "kube-probe/1.29" 0.\r\n')
def test_property_line_bound_rows_equal_the_reference(name: str, text: str) -> None:
    fmt = FORMATS[name]
    expected = reference(fmt, text)
    assert fmt.line_bound is not None
    lines = text.count("\n")
    for pattern in fmt.line_bound:  # each variant on its own: one row per line is the reference's
        rows = pattern.findall(text)
        if len(rows) == lines:
            blank = fmt.agent_at
            assert expected[1] == 0 and len(expected[0]) == lines
            assert ([row[:blank] + row[blank + 1:] for row in rows]
                    == [row[:blank] + row[blank + 1:] for row in expected[0]])
    # Whatever an earlier example left, the line-bound variant reads first (rows()'s state).
    fmt.unread_lines_lately = False
    assert fmt.rows(text) == expected
    fmt.unread_lines_lately = False
    without_agents, errors = fmt.rows(text, agents=False)
    assert errors == expected[1]
    blank = fmt.agent_at
    assert ([row[:blank] + row[blank + 1:] for row in without_agents]
            == [row[:blank] + row[blank + 1:] for row in expected[0]])


def test_a_well_formed_block_is_read_by_the_line_bound_pattern_alone() -> None:
    # The speed-up is real only if ordinary lines never fall back to the reference.
    fmt = nginx_format()
    assert fmt.line_bound is not None
    text = (GOOD + "\n") * 3
    assert len(fmt.line_bound[1].findall(text)) == 3
    rows, errors = fmt.rows(text, agents=False)
    assert errors == 0 and [row[fmt.agent_at] for row in rows] == ["", "", ""]
    assert [row[fmt.agent_at] for row in fmt.rows(text)[0]] == ["kube-probe/1.29"] * 3


def test_after_a_block_with_a_line_not_read_the_reference_reads_first_until_a_clean_block() -> None:
    # A log with a bad line in every block would otherwise be read twice per block.
    fmt = nginx_format()
    clean, dirty = (GOOD + "\n") * 2, "garbage\n" + (GOOD + "\n") * 2
    for text, lately in ((dirty, True), (dirty, True), (clean, False), (clean, False)):
        assert fmt.rows(text, agents=False)[1] == reference(fmt, text)[1]
        assert fmt.unread_lines_lately is lately
