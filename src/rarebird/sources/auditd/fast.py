"""The auditd fast path: parse only the events whose ``exe`` can match the prefilter.

The discovery commands are about 2 % of all execs. :class:`FastScan`: a regular
expression over whole buffers (C speed) finds the ``exe=`` fields whose basename can be one of
the prefilter's values, in every spelling the parser accepts: quoted (``exe="/usr/bin/ss"``),
upper-case hex (``exe=2F7573722F62696E2F7373``, used when the path has a space or a special
byte) or unquoted. ``comm`` is not looked at: it is not ``process.name``. Only the events of
those hits are grouped (by searching for their stamp within ``GAP`` either way, with the
grouping rule of :mod:`rarebird.sources.auditd.scan`) and fully parsed; the exact prefilter is then applied to the parsed event. So the
fast path keeps exactly the events the full parse keeps: tests compare the two on generated and
fuzzed logs. Lines of events that cannot match are never looked at, so their defects are not
reported (the full parse reports them).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rarebird.errors import ReadStats
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources.auditd.events import BuildContext, RawRecord, build_context, build_event
from rarebird.sources.auditd.records import (
    HEADER_RE,
    MAX_PREFIX,
    MAX_STAMP,
    NOT_A_RECORD,
    Header,
    foreign_lines,
    header_from_match,
    parse_header,
)
from rarebird.sources.auditd.scan import (
    CHUNK,
    EOE,
    GAP,
    HISTORY,
    MARGIN,
    MAX_EVENT,
    MAX_RECORD_LINE,
    NEEDED,
    SYSCALL,
    Window,
    line_text,
)
from rarebird.sources.auditd.screen import all_record_starts, newlines
from rarebird.sources.base import Prefilter, SourceOptions
from rarebird.sources.identity import Accounts, load_accounts


def _lookbehinds(alternatives: list[bytes]) -> bytes:
    return b"(?:" + b"|".join(b"(?<=" + re.escape(a) + b")" for a in alternatives) + b")"


def exe_needle(prefilter: Prefilter) -> re.Pattern[bytes] | None:
    """A regex finding every ``exe=`` field whose basename can satisfy the prefilter.

    Built from the ``process.name`` condition (or from the basenames of a
    ``process.executable`` one). None when there is no such condition, or a value cannot be
    searched for exactly (then every event is parsed).

    >>> from rarebird.sources.base import FieldCondition
    >>> rx = exe_needle(Prefilter((FieldCondition("process.name", frozenset({"ss"})),)))
    >>> [bool(rx.search(s)) for s in (b'exe="/usr/bin/ss" ', b"exe=2F7573722F62696E2F7373 ",
    ...                               b'exe="/usr/sbin/sshd" ', b'comm="ss" exe="/bin/x" ')]
    [True, True, False, False]
    """
    cond = prefilter.condition_for("process.name")
    if cond is not None:
        names = set(cond.values)
    else:
        cond = prefilter.condition_for("process.executable")
        if cond is None:
            return None
        names = {v.rsplit("/", 1)[-1] for v in cond.values}
    quoted: list[bytes] = []
    unquoted: list[bytes] = []
    for name in sorted(names):
        if "/" in name:
            continue  # a basename never holds '/': this value cannot match
        if not name or "\ufffd" in name or " " in name or "\x00" in name:
            return None  # "" (exe ending in '/'), undecodable bytes, NUL/space ambiguity
        raw = name.encode("utf-8")
        hexed = raw.hex().upper().encode("ascii")
        quoted += [b"/" + raw + b'"', b'"' + raw + b'"']
        unquoted += [b"/" + raw, b"=" + raw, b"2F" + hexed, b"=" + hexed]
    if not quoted:
        return re.compile(b"(?!)")  # nothing can match
    pattern = (
        b'exe=(?:"[^"\\n\\x1d]*+"'
        + _lookbehinds(quoted)
        + b'|[^ "\\n\\r\\x1d]*+'
        + _lookbehinds(unquoted)
        + b")"
    )
    return re.compile(pattern)


def fast_scan_for(
    path: str,
    options: SourceOptions,
    stats: ReadStats,
    needle: re.Pattern[bytes],
    *,
    accounts: Accounts | None = None,
    start: int = 0,
    stop: int | None = None,
) -> FastScan:
    """The fast pass over ``path`` (or its byte range ``start``..``stop``) that ``options``
    ask for, counting into ``stats``: the source and its worker processes build it alike."""
    if accounts is None:
        accounts = load_accounts(options.passwd, options.group)
    return FastScan(
        path=path,
        stats=stats,
        ctx=build_context(path, accounts, options.host_name, stats),
        keep=options.prefilter.holds,
        needle=needle,
        max_line=min(options.max_line_bytes, MAX_RECORD_LINE),
        start=start,
        stop=stop,
    )


class NeedMore(Exception):
    """The event reaches past the end of the buffer: read more before deciding."""


@dataclass
class FastScan:
    """State of one fast pass over an input (or over one byte range of it)."""

    path: str
    stats: ReadStats
    ctx: BuildContext
    keep: Callable[[ProcessEvent], bool]
    needle: re.Pattern[bytes]
    max_line: int
    #: absolute byte range whose hits this pass owns (the rest of the file is context)
    start: int = 0
    stop: int | None = None
    #: lines before ``start`` (line numbers of a range pass are relative when 0)
    lines_before_start: int = 0

    def run(self, stream: io.BufferedIOBase, origin: int = 0) -> Iterator[ProcessEvent]:
        """Scan ``stream``, whose next byte is at offset ``origin`` of the input."""
        win = Window(stream, CHUNK + HISTORY + MARGIN)
        win.base = origin
        try:
            yield from self._run(win)
        finally:
            win.close()

    def _run(self, win: Window) -> Iterator[ProcessEvent]:
        lo = self.start  # absolute: the next hit to look at is at or after lo
        # the line number of the line starting at cursor (a running count of newlines)
        cursor_abs, cursor_line = self.start, self.lines_before_start + 1
        done_line = -1  # the end of the last line looked at (absolute)
        parsed = 0
        foreign = 0  # lines that are not audit records (reported, not prefiltered)
        while True:
            win.fill()
            buf, n, base = win.buf, win.n, win.base
            hi = n if win.eof else buf.rfind(b"\n", 0, max(0, n - MARGIN)) + 1
            if self.stop is not None:
                hi = min(hi, self.stop - base)
            begin = lo - base
            span_line = cursor_line + newlines(buf, cursor_abs - base, begin)
            hits: Iterator[re.Match[bytes]] = self.needle.finditer(buf, begin, max(begin, hi))
            if hi <= begin and not win.eof and n == len(buf):
                # no line ends in the whole buffer: the bytes belong to a line far longer than
                # any record; nothing in it can be a hit, step over it
                hi = n - MARGIN
                hits = iter(())
            resume = None
            for m in hits:
                p = m.start()
                if base + p < done_line:
                    continue  # another exe= of a line already looked at
                le = buf.find(b"\n", p, n)
                if le < 0:
                    le = n
                done_line = base + le
                ls = buf.rfind(b"\n", 0, p) + 1
                if (ls == 0 and base > 0) or le - ls > self.max_line:
                    continue  # a line longer than any record
                line = line_text(buf, ls, le)
                header = parse_header(line)
                if header is None or header.type != SYSCALL:
                    continue
                try:
                    records = self._group(win, ls, le, header, line)
                except NeedMore:
                    resume = done_line = base + ls
                    break
                if records is None:
                    continue  # not the event's first SYSCALL record
                cursor_line += newlines(buf, cursor_abs - base, ls)
                cursor_abs = base + ls
                parsed += len(records)
                event = build_event(_number(buf, records, ls, cursor_line), self.ctx)
                if event is not None and self.keep(event):
                    yield event
            done_to = resume if resume is not None else base + max(hi, begin)
            cursor_line += newlines(buf, cursor_abs - base, done_to - base)
            cursor_abs = done_to
            foreign += self._foreign(buf, begin, done_to - base, span_line)
            lo = done_to
            if resume is None and (
                (win.eof and lo >= base + n) or (self.stop is not None and lo >= self.stop)
            ):
                lines = cursor_line - self.lines_before_start - 1
                if win.eof and lo >= base + n and n and buf[n - 1] != 0x0A:
                    lines += 1  # a last line without a newline
                self.stats.lines += lines
                # ReadStats.prefiltered: lines (records) never parsed
                self.stats.prefiltered += max(0, lines - parsed - foreign)
                self.stats.bytes += lo - self.start
                return
            # dropping old bytes cannot make room: the event is longer than the buffer
            full = resume is not None and resume - base <= HISTORY and n == len(buf)
            if full and not win.grow(MAX_EVENT + HISTORY):
                self.stats.skip(
                    SourceLocation(self.path, cursor_line),
                    "auditd: event too long",
                    f"more than {MAX_EVENT // 2**20} MB of records",
                )
                assert resume is not None
                end = buf.find(b"\n", resume - base, n)
                done_line = base + (end if end >= 0 else n)  # go on after that SYSCALL line
            win.drop(max(0, lo - base - HISTORY))

    def _foreign(self, buf: bytearray, begin: int, end: int, first_line: int) -> int:
        """Report the lines of ``buf[begin:end]`` (the first is line ``first_line``)
        that are not audit records, as the full parser does (file:line), so a file of another
        format is not read as an empty log."""
        if not (begin == 0 if first_line == 1 else begin > 0 and buf[begin - 1] == 0x0A):
            # the span goes on with a line longer than the buffer: its head was looked at
            nl = buf.find(b"\n", begin, end)
            if nl < 0:
                return 0
            begin, first_line = nl + 1, first_line + 1
        if all_record_starts(buf, begin, end):
            return 0
        found = 0
        for i, line in foreign_lines(buf, begin, end):
            self.stats.skip(SourceLocation(self.path, first_line + i), NOT_A_RECORD,
                            line[:80].decode("utf-8", "replace"))  # fmt: skip
            found += 1
        return found

    def _group(
        self, win: Window, ls: int, le: int, header: Header, line: bytes
    ) -> list[tuple[int, int, Header, bytes]] | None:
        """The records of the event holding the SYSCALL line at ``ls``, if it is the event's
        first SYSCALL record (else None). Positions are offsets in ``win.buf``."""
        buf = win.buf
        stamp, node = header.stamp, header.node
        before: list[tuple[int, int, Header, bytes]] = []
        cur = ls
        while True:
            lo = cur - GAP
            if lo < 0:
                if win.base > 0:
                    self.stats.skip(
                        SourceLocation(self.path, 0),
                        "auditd: event grouping needs more history than kept",
                        stamp.decode("ascii", "replace"),
                    )
                lo = 0
            prev = _prev_record(buf, stamp, node, lo, cur, self.max_line, win.base == 0)
            if prev is None or prev[2].type == EOE:
                break
            if prev[2].type == SYSCALL:
                return None
            before.append(prev)
            cur = prev[0]
        before.reverse()
        records = [*before, (ls, le, header, line)]
        if header.type != EOE:
            records += _following(win, stamp, node, le + 1, ls, self.max_line)
        return records


def _prev_record(
    buf: bytearray,
    stamp: bytes,
    node: bytes | None,
    lo: int,
    cur: int,
    max_line: int,
    at_start: bool,
) -> tuple[int, int, Header, bytes] | None:
    """The nearest record named ``node``+``stamp`` starting in ``[lo, cur)``."""
    p = buf.rfind(stamp, lo, cur)
    while p >= 0:
        s = buf.rfind(b"\n", 0, p) + 1
        if s < lo or (s == 0 and not at_start):
            return None
        e = buf.find(b"\n", p, cur)
        if e < 0:
            e = cur
        if e - s <= max_line:
            line = line_text(buf, s, e)
            header = parse_header(line)
            if header is not None and header.stamp == stamp and header.node == node:
                return s, e, header, line
        p = buf.rfind(stamp, lo, s)
    return None


def _following(
    win: Window,
    stamp: bytes,
    node: bytes | None,
    frm: int,
    cur: int,
    max_line: int,
) -> list[tuple[int, int, Header, bytes]]:
    """The records named ``node``+``stamp`` after offset ``frm`` (a line start), each starting
    at most GAP bytes after the previous one (``cur`` is the last one so far), up to an EOE.

    Only lines holding the stamp's text are looked at: the search for it is a byte search (C,
    skipping ahead by the stamp's length), so an event without an ``EOE`` costs a few
    microseconds for the GAP bytes after its last record, not a regular expression over every
    line there (issue 10). A line is one of the event's records exactly when its header, read
    at the line's start, names ``node`` and ``stamp``: the lines this looks at and the answer are
    those of a scan of every line start (the rule of :mod:`rarebird.sources.auditd.scan`).
    """
    buf, n, eof = win.buf, win.n, win.eof
    out: list[tuple[int, int, Header, bytes]] = []
    pos = frm
    while True:
        limit = cur + GAP
        endpos = limit + MAX_PREFIX + MAX_STAMP
        if endpos > n:
            if not eof:
                raise NeedMore
            endpos = n
        # the usual case: the next line is the event's next record
        m = HEADER_RE.match(buf, pos, endpos)
        if m is None or m.group(1) != node or buf[m.start(3) - 6 : m.end()] != stamp:
            # records of other events (or other lines) in between: the next line holding the
            # stamp's text whose header is the event's, starting within GAP
            m = None
            p = buf.find(stamp, pos, endpos)
            while p >= 0:
                s = buf.rfind(b"\n", pos, p) + 1 or pos
                if s > limit:
                    return out
                cand = HEADER_RE.match(buf, s, endpos)
                if (
                    cand is not None
                    and cand.group(1) == node
                    and buf[cand.start(3) - 6 : cand.end()] == stamp
                ):
                    m = cand
                    break
                # not this line: go on after it
                e = buf.find(b"\n", p, endpos)
                if e < 0:
                    break
                p = buf.find(stamp, e + 1, endpos)
            if m is None:
                return out
        s = m.start()
        e = buf.find(b"\n", m.end(), n)
        if e < 0:
            if not eof:
                raise NeedMore
            e = n
        pos = e + 1
        if e - s > max_line:
            continue
        header = header_from_match(m, s)
        if header is None:
            continue
        # only these records are read by the mapping: do not copy the others
        line = line_text(buf, s, e) if header.type in NEEDED else b""
        out.append((s, e, header, line))
        if header.type == EOE:
            return out
        cur = s


def _number(
    buf: bytearray, records: list[tuple[int, int, Header, bytes]], hit: int, hit_line: int
) -> list[RawRecord]:
    """Line numbers for the records of an event, counted from the hit's line."""
    out = []
    pos, line_no = hit, hit_line
    for s, _e, header, line in records:
        if s < hit:
            out.append(RawRecord(hit_line - buf.count(b"\n", s, hit), header, line))
            continue
        line_no += buf.count(b"\n", pos, s)
        pos = s
        out.append(RawRecord(line_no, header, line))
    return out
