"""Sysmon for Linux read a chunk at a time gives what reading it line by line gives.

The chunked reader looks in Python only at the lines holding a needle, opening an event
without closing it, that may be blank or are too long, and at every line while an event spread
over lines is open. Held here to the line-by-line reader (the same rule, applied to every line)
on files made of the shapes Sysmon for Linux writes (a syslog line per event, exported XML over
several lines, JSON lines), other programs' syslog lines, broken and cut-short events, blank
and CRLF lines, over-long lines and escapes, with both searches and chunks that cut lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rarebird.definitions.datafeed import load_datafeed
from rarebird.events import ProcessEvent
from rarebird.sources import SourceOptions, linescan, sysmon
from rarebird.sources.multipattern import load_hyperscan
from rarebird.sources.sysmon import SysmonSource

FEED = load_datafeed().query.prefilter
HS = pytest.mark.skipif(load_hyperscan() is None, reason="hyperscan cannot run here")
SEARCHES = ["memmem", pytest.param("hyperscan", marks=HS)]


def _event(image: str, user: str = "root", i: int = 1) -> str:
    """One process creation as Sysmon for Linux writes it (the XML of its schema)."""
    return (
        '<Event><System><Provider Name="Linux-Sysmon" Guid="{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"/>'
        "<EventID>1</EventID><Version>5</Version><Level>4</Level><Task>1</Task><Opcode>0</Opcode>"
        f'<TimeCreated SystemTime="2026-03-02T10:00:{i % 60:02d}.000000000Z"/>'
        "<EventRecordID>1</EventRecordID><Correlation/>"
        '<Execution ProcessID="1020" ThreadID="1020"/><Channel>Linux-Sysmon/Operational</Channel>'
        '<Computer>web-1</Computer><Security UserId="0"/></System><EventData>'
        f'<Data Name="UtcTime">2026-03-02 10:00:{i % 60:02d}.000</Data>'
        f'<Data Name="ProcessId">{2000 + i}</Data><Data Name="Image">{image}</Data>'
        f'<Data Name="CommandLine">{image.rsplit("/", 1)[-1]} -a</Data>'
        f'<Data Name="CurrentDirectory">/root</Data><Data Name="User">{user}</Data>'
        '<Data Name="LogonId">1001</Data><Data Name="ParentProcessId">2001</Data>'
        '<Data Name="ParentImage">/usr/bin/bash</Data></EventData></Event>'
    )


PIECES = [
    "Mar  2 10:00:01 web-1 sysmon: " + _event("/usr/bin/ss"),
    "Mar  2 10:00:01 web-1 sysmon: " + _event("/usr/bin/ls"),
    "Mar  2 10:00:01 web-1 sysmon: " + _event("/usr/sbin/sshd", "alice"),
    "Mar  2 10:00:01 web-1 sysmon: " + _event("/sbin/route").replace("ss", "&#115;s"),
    "Mar  2 10:00:01 web-1 systemd[1]: Started Session 3 of User alice.",
    "Mar  2 10:00:02 web-1 sshd[99]: Accepted key for ss from 10.0.0.1",
    # exported XML over several lines (an event open across them)
    "<Events>",
    _event("/usr/bin/netstat").replace("<EventData>", "\n  <EventData>\n  "),
    _event("/usr/bin/ls").replace("</System>", "</System>\n"),
    "</Events>",
    "  <EventData>",  # an opening tag alone
    "</Event> <Event><System>",  # closes one, opens another
    "<Event><EventID>1</EventID>",  # cut short
    '{"Image": "/usr/bin/ss", "User": "bob", "UtcTime": "2026-03-02 10:00:00.000", "EventID": 1}',
    '{"Image": "/usr/bin/ss", "broken": ',
    "",
    "   ",
    "\r",
    "x" * 300 + "/ss<",  # too long (limit 200 below)
    "<Event>" + "y" * 250,  # an event opening on a line too long
    # lines opening an event, or not, near the edges of the opening pattern
    "<Event>      ",
    "<Event",
    "  <Event>x</Event>  ",
    "<Event><System>tail</Event> trailing",
    "<Event> </Event",
    "a<Event>bcdefg",
    "a<Event>bcdefgh</Event>",
    "<EventData>",
    "</Event><Event>" + "z" * 20,
    "Mar  2 10:00:03 web-1 sysmon: " + _event("/usr/bin/ss", "jürgen"),  # not ASCII
]


class Read(NamedTuple):
    """What a read gave: its events and every count."""

    events: list[ProcessEvent]
    issues: list[tuple[int, str]]
    lines: int
    bytes: int
    prefiltered: int
    kept: int
    skipped: dict[str, int]


def read(data: bytes, tmp: Path, mode: str | None, chunk: int | None = None) -> Read:
    path = tmp / "sysmon.log"
    path.write_bytes(data)
    src = SysmonSource(str(path), SourceOptions(prefilter=FEED, max_line_bytes=2000))
    if mode is None:
        events = list(src._line_by_line())
    else:
        with open(path, "rb") as stream:
            events = list(src._chunked(stream, src.search(mode), chunk or linescan.CHUNK))
    s = src.stats
    issues = [(i.location.line, i.reason) for i in s.issues]
    return Read(events, issues, s.lines, s.bytes, s.prefiltered, s.events, dict(s.skipped))


@pytest.mark.parametrize("mode", SEARCHES)
@settings(max_examples=150, deadline=None)
@given(
    picks=st.lists(st.integers(0, len(PIECES) - 1), max_size=25),
    crlf=st.booleans(),
    final_newline=st.booleans(),
    chunk=st.sampled_from([64, 700, 1 << 20]),
)
def test_chunked_reading_gives_what_line_by_line_reading_gives(
    tmp_path_factory: pytest.TempPathFactory,
    mode: str,
    picks: list[int],
    crlf: bool,
    final_newline: bool,
    chunk: int,
) -> None:
    end = "\r\n" if crlf else "\n"
    text = end.join(PIECES[i] for i in picks) + (end if final_newline and picks else "")
    data = text.encode()
    tmp = tmp_path_factory.mktemp("sysmon")
    assert read(data, tmp, mode, chunk) == read(data, tmp, None)


@pytest.mark.parametrize("mode", SEARCHES)
def test_a_syslog_file_with_an_event_over_lines(tmp_path: Path, mode: str) -> None:
    lines = [PIECES[0], PIECES[4], "<Events>", PIECES[7], "</Events>", PIECES[1], PIECES[12]]
    data = "\n".join(lines).encode()
    events, issues, nlines, _, prefiltered, kept, _ = read(data, tmp_path, mode)
    assert [e.process_name for e in events] == ["ss", "netstat"]
    # the event spread over lines is where it opens: "<Events>" holds "<Event", as before
    assert [e.origin and e.origin.line for e in events] == [1, 3]
    assert issues == [(9, "sysmon: event cut short")]
    assert nlines == 9  # the netstat event spans three lines
    assert prefiltered == 3  # systemd's line, </Events>, the ls event
    assert kept == 2
    assert read(data, tmp_path, mode) == read(data, tmp_path, None)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from([b"<Event", b"<Event>", b"<Event ", b"<Event\t", b"<EventData>",
                         b"</Event>", b"</Event", b"x", b" ", b">", b"\n", b"<", b"\xc3\xbc"]),
        max_size=30,
    )
)  # fmt: skip
def test_event_segments_are_the_patterns_matches(parts: list[bytes]) -> None:
    line = b"".join(parts)
    assert sysmon._segments(line) == sysmon._EVENT_RE.findall(line)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(['<Data Name="User">', "alice", "</Data>", '<Data Name="x"/>', " ",
                         "\x1c", "\t", "&amp;", "&#115;", '"', "<", ">", "\n"]),
        max_size=30,
    )
)  # fmt: skip
def test_ascii_fields_read_as_the_bytes_pattern_reads_them(parts: list[str]) -> None:
    text = "".join(parts)
    by_bytes = [(k.decode(), v.decode()) for k, v in sysmon._DATA_RE.findall(text.encode())]
    assert sysmon._DATA_TEXT_RE.findall(text) == by_bytes
