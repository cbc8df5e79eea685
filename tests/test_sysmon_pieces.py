"""Sysmon for Linux read in pieces by several processes gives what one process gives.

An event may span lines, so a piece may start only where no event is open: just after a line
whose text ends with ``</Event>`` (:func:`~rarebird.sources.lines_parallel.cuts_after`), where
the reader's state is closed whatever the lines before held. Held here on files made of the
shapes of ``test_sysmon_chunked`` (syslog lines, exported XML over several lines, JSON lines,
broken, cut-short, blank, CRLF and over-long lines): every piece read on its own, its line
numbers shifted, gives the events and counts of one read of the whole file; and a real read
by two processes gives the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rarebird.events import ProcessEvent
from rarebird.sources import SourceOptions, lines_parallel, ranges
from rarebird.sources.lines_parallel import cuts_after
from rarebird.sources.sysmon import SysmonSource
from tests.test_sysmon_chunked import FEED, PIECES, SEARCHES, Read, _event

Summary = tuple[list[tuple[str | None, int | None, int | None]], Read]


def _line_ranges(data: bytes) -> list[tuple[int, int]]:
    """A range per line: the finest cut there is, before cuts_after moves the cuts."""
    starts = [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A and i + 1 < len(data)]
    return list(zip(starts, [*starts[1:], len(data)], strict=True))


def _summary(src: SysmonSource, events: list[ProcessEvent], shift: int = 0) -> Summary:
    s = src.stats
    shown = [(e.process_name, e.process_pid, e.origin.line + shift if e.origin else None)
             for e in events]  # fmt: skip
    issues = [(i.location.line + shift, i.reason) for i in s.issues]
    return shown, Read([], issues, s.lines, s.bytes, s.prefiltered, s.events, dict(s.skipped))


def _whole(path: Path, extra: dict[str, str] | None = None) -> tuple[Summary, SysmonSource]:
    options = SourceOptions(prefilter=FEED, max_line_bytes=2000, extra=extra or {})
    src = SysmonSource(str(path), options)
    return _summary(src, list(src)), src


def _by_pieces(path: Path, pieces: list[tuple[int, int]]) -> Summary:
    """Each piece read by a reader of its own, line numbers shifted as the parallel read does."""
    events: list[tuple[str | None, int | None, int | None]] = []
    issues: list[tuple[int, str]] = []
    lines = nbytes = prefiltered = kept = 0
    skipped: dict[str, int] = {}
    for start, stop in pieces:
        src = SysmonSource(str(path), SourceOptions(prefilter=FEED, max_line_bytes=2000))
        shown, read = _summary(src, list(src.read_range(start, stop)), lines)
        events += shown
        issues += read.issues
        lines, nbytes = lines + read.lines, nbytes + read.bytes
        prefiltered, kept = prefiltered + read.prefiltered, kept + read.kept
        for reason, n in read.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + n
    return events, Read([], issues, lines, nbytes, prefiltered, kept, skipped)


@pytest.mark.parametrize("mode", SEARCHES)
@settings(max_examples=150, deadline=None)
@given(
    picks=st.lists(st.integers(0, len(PIECES) - 1), max_size=30),
    crlf=st.booleans(),
    final_newline=st.booleans(),
)
def test_pieces_cut_after_a_closing_line_read_as_the_whole(
    tmp_path_factory: pytest.TempPathFactory,
    mode: str,
    picks: list[int],
    crlf: bool,
    final_newline: bool,
) -> None:
    end = "\r\n" if crlf else "\n"
    text = end.join(PIECES[i] for i in picks) + (end if final_newline and picks else "")
    path = tmp_path_factory.mktemp("pieces") / "sysmon.log"
    path.write_bytes(text.encode())
    pieces = cuts_after(str(path), _line_ranges(path.read_bytes()), b"</Event>")
    data = path.read_bytes()
    for start, _ in pieces[1:]:  # every cut follows a line whose text ends with </Event>
        assert data[: start - 1].rsplit(b"\n", 1)[-1].rstrip().endswith(b"</Event>")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAREBIRD_LINES_SEARCH", mode)
        assert _by_pieces(path, pieces) == _whole(path)[0]


def test_the_finest_cuts_would_differ_without_the_rule(tmp_path: Path) -> None:
    """The check above can fail: a cut inside an event spread over lines reads otherwise."""
    path = tmp_path / "sysmon.log"
    path.write_bytes(
        (_event("/usr/bin/ss").replace("<EventData>", "\n<EventData>") + "\n").encode()
    )
    whole, _ = _whole(path)
    assert [name for name, _, _ in whole[0]] == ["ss"]
    assert _by_pieces(path, _line_ranges(path.read_bytes())) != whole
    assert cuts_after(str(path), _line_ranges(path.read_bytes()), b"</Event>") == [
        (0, path.stat().st_size)
    ]


def test_a_cut_is_never_made_inside_a_line_longer_than_a_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lines_parallel, "_LINE_READ", 16)
    long_line = b"y" * 8 + b"</Event>" + b"z" * 40 + b"\n"  # '</Event>' ends a 16-byte read
    closing = b"<Event>x</Event>\n"
    path = tmp_path / "sysmon.log"
    path.write_bytes(b"a\n" + long_line + closing + b"b\n")
    cuts = cuts_after(str(path), [(0, 2), (2, 60), (60, path.stat().st_size)], b"</Event>")
    assert cuts == [(0, 2 + len(long_line) + len(closing)), (2 + len(long_line) + len(closing),
                    path.stat().st_size)]  # fmt: skip


@pytest.mark.parametrize("mode", SEARCHES)
def test_a_sysmon_log_read_by_two_processes_gives_what_one_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("RAREBIRD_LINES_SEARCH", mode)
    lines = [PIECES[(i * 7) % len(PIECES)] for i in range(3000)]
    path = tmp_path / "sysmon.log"
    path.write_bytes(("\n".join(lines) + "\n").encode())
    one, src = _whole(path)
    assert str(src.reading()).lower() == f"names found by {mode}"
    assert len(one[0]) > 300
    monkeypatch.setattr(lines_parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(ranges, "MIN_PIECE_BYTES", 16 * 1024)
    two, src = _whole(path, {"workers": "2"})
    assert str(src.reading()).lower() == f"names found by {mode}, 2 processes"
    assert two == one
