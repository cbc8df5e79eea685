"""Hyperscan's candidate lines, then the regular expression on them, find exactly the ``exe=``
hits the regular expression finds over the whole buffer (``sources.auditd.exe_search``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rarebird.definitions.datafeed import load_datafeed
from rarebird.sources.auditd.exe_search import ENV, ExeSearch, exe_names, exe_needle, exe_search
from rarebird.sources.auditd.screen import all_record_starts
from rarebird.sources.multipattern import load_hyperscan

FEED = load_datafeed().query.prefilter
NEEDLE = exe_needle(FEED)
NAMES = exe_names(FEED)
HS = load_hyperscan()
needs_hyperscan = pytest.mark.skipif(HS is None, reason="hyperscan cannot run here")

# pieces of record lines: every spelling of an exe value, near misses, separators
PIECES = [b"exe=", b'exe="', b'"', b"/usr/bin/", b"/", b"=", b"ss", b"sshd", b"netstat", b"route",
          b"showmount", b"2F", b"7373", b"2F7373", b"726F757465", b"2F7573722F62696E2F7373",
          b" ", b"\n", b"\r", b"\x1d", b"comm=", b"name=", b"a0=", b"x", b"type=SYSCALL msg=audit(1.2:3): ",
          b'exe="/usr/bin/ss"', b"exe=2F7573722F62696E2F7373", b"exe=/sbin/route", b'exe="ss"']  # fmt: skip


@needs_hyperscan
@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60), st.integers(0, 40), st.integers(0, 40))
def test_the_candidates_give_the_regular_expressions_own_hits(
    pieces: list[bytes], cut_start: int, cut_end: int
) -> None:
    assert NEEDLE is not None
    assert NAMES
    buf = bytearray(b"".join(pieces))
    begin = min(cut_start, len(buf))
    end = max(begin, len(buf) - cut_end)
    search = ExeSearch(HS, NEEDLE, tuple(NAMES), calibrate=False)
    got = [m.span() for m in search.finditer(buf, begin, end)]
    assert got == [m.span() for m in NEEDLE.finditer(buf, begin, end)]


def test_the_search_is_chosen_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert NEEDLE is not None
    monkeypatch.setenv(ENV, "re")
    assert exe_search(FEED, NEEDLE) is None  # the needle's own finditer
    monkeypatch.setenv(ENV, "grep")
    with pytest.raises(ValueError, match="RAREBIRD_AUDITD_SEARCH must be one of"):
        exe_search(FEED, NEEDLE)
    monkeypatch.setenv(ENV, "hyperscan")
    if HS is None:
        with pytest.raises(ValueError, match="missing or cannot run"):
            exe_search(FEED, NEEDLE)
    else:
        assert exe_search(FEED, NEEDLE) is not None


# pieces of lines for the screen: record starts, their near misses, blank lines
LINE_PIECES = [b"type=", b"node=", b"node=h type=", b"typ", b"type", b"nod", b"t", b"n", b"Type=",
               b"x", b" ", b"\r", b"\n", b"\n\n", b"SYSCALL msg=audit(1.2:3): ", b'exe="/usr/bin/ss"',
               b"=", b"ss"]  # fmt: skip


@needs_hyperscan
@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(LINE_PIECES), max_size=40), st.data())
def test_the_pass_screens_lines_as_the_numpy_screen_does(
    pieces: list[bytes], data: st.DataObject
) -> None:
    """After its pass over ``buf[lo:hi]``, the search answers for a run of whole lines in it
    what :func:`all_record_starts` answers (a line holding an exe hit or not, a last line
    without its newline, blank lines); always for the runs the fast path asks about (from
    ``lo``, or from the end of a line ``lo`` cuts), and nothing for bytes it did not pass over.
    """
    assert NEEDLE is not None
    assert NAMES
    buf = bytearray(b"".join(pieces))
    starts = [0] + [i + 1 for i, c in enumerate(buf) if c == 0x0A]
    lo = data.draw(st.integers(0, len(buf)))
    hi = data.draw(st.sampled_from(sorted({s for s in starts if s >= lo} | {len(buf)})))
    search = ExeSearch(HS, NEEDLE, tuple(NAMES), calibrate=False)
    list(search.finditer(buf, lo, hi))
    first = min([s for s in starts if s >= lo] + [hi])  # where the fast path screens from
    begin = data.draw(st.sampled_from(sorted({s for s in starts if first <= s <= hi} | {first})))
    end = data.draw(st.sampled_from(sorted({s for s in starts if begin <= s <= hi} | {hi})))
    screened = search.screen(buf, begin, end)
    assert screened in (None, all_record_starts(buf, begin, end))
    if begin == first:
        assert screened is not None
    if lo > 0:
        assert search.screen(buf, lo - 1, end) is None  # before the pass
    if hi < len(buf):
        assert search.screen(buf, begin, hi + 1) is None  # after it


@needs_hyperscan
@pytest.mark.parametrize(
    ("text", "lo", "begin", "expected"),
    [
        (b"type=A\ntyp", 0, 0, False),  # a last line without its newline, shorter than a prefix
        (b"type=A\ntype=", 0, 0, True),  # ... as long as one
        (b"hello\ntype=A\n", 0, 0, False),  # the first line (no newline before it in the pass)
        (b"\n\ntype=A\n", 0, 0, True),  # blank lines
        (b"node=h type=A\nnode\n", 0, 0, False),
        (b"hello\ntype=A\n", 3, 6, True),  # a line cut by the pass's start is not screened
        # a foreign line before ``begin`` hides any later one: no answer, numpy decides
        (b"type=A\nhello\ntype=B\n", 0, 13, None),
    ],
)
def test_the_screen_at_the_edges_of_a_pass(
    text: bytes, lo: int, begin: int, expected: bool | None
) -> None:
    assert NEEDLE is not None
    assert NAMES
    buf = bytearray(text)
    search = ExeSearch(HS, NEEDLE, tuple(NAMES), calibrate=False)
    list(search.finditer(buf, lo, len(buf)))
    if expected is not None:
        assert all_record_starts(buf, begin, len(buf)) is expected
    assert search.screen(buf, begin, len(buf)) is expected


@needs_hyperscan
def test_the_regular_expression_leaves_the_screen_to_numpy() -> None:
    assert NEEDLE is not None
    assert NAMES
    search = ExeSearch(HS, NEEDLE, tuple(NAMES), calibrate=False)
    buf = bytearray(b"type=A msg=audit(1.2:3): x\nhello\n")
    list(search.finditer(buf, 0, len(buf)))
    assert search.screen(buf, 0, len(buf)) is False
    search.use_hyperscan = False
    list(search.finditer(buf, 0, len(buf)))
    assert search.screen(buf, 0, len(buf)) is None


@needs_hyperscan
def test_auto_counts_the_screen_on_the_regular_expressions_side() -> None:
    """Hyperscan's pass screens the lines; the regular expression leaves that to numpy. On a
    buffer of short records without any exe= field the regular expression alone is the
    fastest search (about 1 ms against 2 ms here), but with the screen it needs (about 6 ms)
    it is not: ``auto`` must pick Hyperscan."""
    assert NEEDLE is not None
    assert NAMES
    buf = bytearray(b"type=\n" * 400_000)  # 2.4 MB: over CALIBRATE_MIN
    search = ExeSearch(HS, NEEDLE, tuple(NAMES), calibrate=True)
    assert list(search.finditer(buf, 0, len(buf))) == []
    assert search.use_hyperscan is True
