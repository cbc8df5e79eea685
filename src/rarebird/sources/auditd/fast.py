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
from rarebird.sources.auditd.exe_search import ExeSearch, exe_search
from rarebird.sources.auditd.records import (
    HEADER_RE,
    MAX_PREFIX,
    MAX_STAMP,
    NOT_A_RECORD,
    Header,
    foreign_lines,
    header_from_match,
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
from rarebird.sources.base import SourceOptions
from rarebird.sources.identity import Accounts, load_accounts


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
        search=exe_search(options.prefilter, needle),
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
    #: what finds the needle's matches and screens the lines (:func:`exe_search`); the needle's
    #: own ``finditer`` and the numpy screen when None
    search: ExeSearch | None
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
            find = self.search.finditer if self.search is not None else self.needle.finditer
            hits: Iterator[re.Match[bytes]] = find(buf, begin, max(begin, hi))
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
                # the header is read in place: the line is copied only for an event's first
                # SYSCALL record (a trailing '\r' cannot be part of a header, which ends in ':')
                hm = HEADER_RE.match(buf, ls, le)
                if hm is None or hm.group(2) != SYSCALL:
                    continue
                header = header_from_match(hm, ls)
                if header is None:
                    continue
                try:
                    group = self._group(win, ls, le, header)
                except NeedMore:
                    resume = done_line = base + ls
                    break
                if group is None:
                    continue  # not the event's first SYSCALL record
                before, after, count = group
                cursor_line += newlines(buf, cursor_abs - base, ls)
                cursor_abs = base + ls
                parsed += count
                records = [*before, (ls, header, line_text(buf, ls, le)), *after]
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
        screened = None if self.search is None else self.search.screen(buf, begin, end)
        if screened is None:
            screened = all_record_starts(buf, begin, end)
        if screened:
            return 0
        found = 0
        for i, line in foreign_lines(buf, begin, end):
            self.stats.skip(SourceLocation(self.path, first_line + i), NOT_A_RECORD,
                            line[:80].decode("utf-8", "replace"))  # fmt: skip
            found += 1
        return found

    def _group(
        self, win: Window, ls: int, le: int, header: Header
    ) -> tuple[list[Record], list[Record], int] | None:
        """The event of the SYSCALL line ``ls``..``le``, if it is the event's first SYSCALL
        record (else None): the records the mapping reads (:data:`NEEDED`) before and after
        that line, and how many records the event has. Positions are offsets in ``win.buf``."""
        buf = win.buf
        prefix, tail = _name(header)
        before: list[Record] = []
        count = 1
        cur = ls
        while True:
            lo = cur - GAP
            if lo < 0:
                if win.base > 0:
                    self.stats.skip(
                        SourceLocation(self.path, 0),
                        "auditd: event grouping needs more history than kept",
                        header.stamp.decode("ascii", "replace"),
                    )
                lo = 0
            prev = _prev_record(win, prefix, tail, lo, cur, self.max_line, win.base == 0)
            if prev is None:
                break
            s, e, type_end = prev
            rtype = bytes(buf[s + len(prefix) : type_end])
            if rtype == EOE:
                break
            if rtype == SYSCALL:
                return None
            count += 1
            if rtype in NEEDED:
                body = type_end + len(tail) - s
                before.append((s, _sibling(header, rtype, body), line_text(buf, s, e)))
            cur = s
        before.reverse()
        after, more = _following(win, header, prefix, tail, le + 1, ls, self.max_line)
        return before, after, count + more


#: A record of an event that the mapping reads: (offset in the buffer, header, line).
Record = tuple[int, Header, bytes]


def _name(header: Header) -> tuple[bytes, bytes]:
    """What the header of every record of ``header``'s event is made of: ``prefix``
    (``[node=NODE ]type=``), the record type, then ``tail`` (`` msg=`` and the stamp)."""
    node = header.node
    prefix = b"type=" if node is None else b"node=" + node + b" type="
    return prefix, b" msg=" + header.stamp


def _type_end(buf: bytearray, s: int, end: int, prefix: bytes, tail: bytes) -> int:
    """Where the record type ends when the line at ``s`` is a record of the event named by
    ``prefix`` and ``tail`` (its header within ``buf[s:end]``), else -1.

    This is what ``HEADER_RE.match(buf, s, end)`` and a comparison of its node and stamp
    decide, without the regular expression and the copies: a node and a type hold no space,
    so each ends at the first space after it; the type is 1 to 64 bytes and holds no newline;
    the stamp's text is a valid stamp, so the same bytes match the same way.
    """
    if not buf.startswith(prefix, s, end):
        return -1
    q = s + len(prefix)
    sp = buf.find(b" ", q, min(q + 65, end))
    if sp <= q or buf.find(b"\n", q, sp) >= 0 or not buf.startswith(tail, sp, end):
        return -1
    return sp


def _sibling(header: Header, rtype: bytes, body: int) -> Header:
    """The header of another record of ``header``'s event (same node and stamp)."""
    return Header(
        header.node, rtype, header.seconds, header.millis, header.serial, header.stamp, body
    )


def _prev_record(
    win: Window,
    prefix: bytes,
    tail: bytes,
    lo: int,
    cur: int,
    max_line: int,
    at_start: bool,
) -> tuple[int, int, int] | None:
    """``(start, end, end of the type)`` of the nearest record of the event (named by
    ``prefix`` and ``tail``) starting in ``[lo, cur)``.

    Every record of the event holds ``tail`` (`` msg=`` + stamp) at or after its start; the
    longer needle makes the byte search a little faster (about 8 %) than the stamp alone. The
    search runs forward (``memmem``: libc has no backward one), and usually finds nothing: an
    event's records mostly follow its first SYSCALL record.
    """
    buf, find = win.buf, win.find
    found: list[int] = []
    p = find(tail, lo, cur)
    while p >= 0:
        found.append(p)
        p = find(tail, p + 1, cur)
    while found:
        p = found.pop()  # the nearest first
        s = buf.rfind(b"\n", 0, p) + 1
        if s < lo or (s == 0 and not at_start):
            return None
        e = buf.find(b"\n", p, cur)
        if e < 0:
            e = cur
        if e - s <= max_line:
            type_end = _type_end(buf, s, e, prefix, tail)
            if type_end >= 0:
                return s, e, type_end
        # not this line: the nearest occurrence wholly before it
        while found and found[-1] + len(tail) > s:
            found.pop()
    return None


def _following(
    win: Window,
    header: Header,
    prefix: bytes,
    tail: bytes,
    frm: int,
    cur: int,
    max_line: int,
) -> tuple[list[Record], int]:
    """The records of ``header``'s event after offset ``frm`` (a line start), each starting
    at most GAP bytes after the previous one (``cur`` is the last one so far), up to an EOE:
    those the mapping reads (:data:`NEEDED`), and how many there are in all.

    Only lines holding the stamp's text are looked at: the search for it is a byte search (C,
    skipping ahead by the needle's length), so an event without an ``EOE`` costs a few
    microseconds for the GAP bytes after its last record, not a regular expression over every
    line there (issue 10). A line is one of the event's records exactly when its header, read
    at the line's start, names ``node`` and ``stamp`` (:func:`_type_end`): the lines this
    looks at and the answer are those of a scan of every line start (the rule of
    :mod:`rarebird.sources.auditd.scan`). Headers are made, and lines copied, only for the
    records the mapping reads.
    """
    buf, n, eof, find = win.buf, win.n, win.eof, win.find
    out: list[Record] = []
    count = 0
    pos = frm
    while True:
        limit = cur + GAP
        endpos = limit + MAX_PREFIX + MAX_STAMP
        if endpos > n:
            if not eof:
                raise NeedMore
            endpos = n
        # the usual case: the next line is the event's next record
        s = pos
        if s > limit:
            return out, count  # after a record line longer than GAP: a new event begins
        type_end = _type_end(buf, s, endpos, prefix, tail)
        if type_end < 0:
            # records of other events (or other lines) in between: the next line holding the
            # stamp's text whose header is the event's, starting within GAP
            p = find(tail, pos, endpos)
            while p >= 0:
                s = buf.rfind(b"\n", pos, p) + 1 or pos
                if s > limit:
                    return out, count
                type_end = _type_end(buf, s, endpos, prefix, tail)
                if type_end >= 0:
                    break
                # not this line: go on after it
                e = buf.find(b"\n", p, endpos)
                if e < 0:
                    break
                p = find(tail, e + 1, endpos)
            if type_end < 0:
                return out, count
        body = type_end + len(tail)
        e = buf.find(b"\n", body, n)
        if e < 0:
            if not eof:
                raise NeedMore
            e = n
        pos = e + 1
        if e - s > max_line:
            continue
        count += 1
        rtype = bytes(buf[s + len(prefix) : type_end])
        if rtype in NEEDED:
            out.append((s, _sibling(header, rtype, body - s), line_text(buf, s, e)))
        if rtype == EOE:
            return out, count
        cur = s


def _number(buf: bytearray, records: list[Record], hit: int, hit_line: int) -> list[RawRecord]:
    """Line numbers for the records of an event, counted from the hit's line."""
    out = []
    pos, line_no = hit, hit_line
    for s, header, line in records:
        if s < hit:
            out.append(RawRecord(hit_line - buf.count(b"\n", s, hit), header, line))
            continue
        line_no += buf.count(b"\n", pos, s)
        pos = s
        out.append(RawRecord(line_no, header, line))
    return out
