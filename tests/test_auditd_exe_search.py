"""Hyperscan's candidate lines, then the regular expression on them, find exactly the ``exe=``
hits the regular expression finds over the whole buffer (``sources.auditd.exe_search``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rarebird.definitions.datafeed import load_datafeed
from rarebird.sources.auditd.exe_search import ENV, ExeSearch, exe_names, exe_needle, exe_search
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
