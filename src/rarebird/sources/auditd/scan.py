"""Grouping audit records into events, and the full parse that reads every line.

**Grouping rule.** A record belongs to an event named by its ``node`` and its
``audit(SECONDS.MILLIS:SERIAL):`` stamp. Records with the same name are one event while each
starts at most :data:`GAP` bytes (64 KiB) after the previous one and the event's ``EOE`` has not
been seen; otherwise the record starts a new event. This handles interleaved events (records of
concurrent syscalls mixed together), events without an ``EOE`` (old kernels, single-record user
messages), out-of-order and lost records, and serial rollover, without a clock: the rule looks
only at the records of one name, so it gives the same answer however the file is read. The
kernel writes the records of one event together, a few records apart at most when CPUs
interleave; 64 KiB is hundreds of records. An event is produced at the position of its first
``SYSCALL`` record, so events come out in file order.

So an event is complete at its ``EOE``, or once GAP bytes of input have passed its last
record; the events open at any point are those with a record in the last GAP bytes (a bounded
set: the full parse sweeps out the others every 1,024 lines, the fast path searches at most GAP
bytes past an event's last record for its stamp). Real logs (auditd with ``ENRICHED``,
``node=``) usually have no ``EOE`` and a few percent of events with a record written after the
next event's records: both cost the same as a log with ``EOE`` (issue 10).

**Full parse** (:func:`scan_full`) reads every line, reports every line that is not a record
(with its file:line) and counts serials that never appear (lost events).

The prefiltered fast path that applies the same rule is :mod:`rarebird.sources.auditd.fast`.
"""

from __future__ import annotations

import heapq
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rarebird.errors import ReadStats
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources.auditd.events import BuildContext, RawRecord, build_event
from rarebird.sources.auditd.records import parse_header
from rarebird.sources.libc import Find, finder

#: Records of one event are at most this many bytes apart (start to start).
GAP = 64 * 1024
#: Longest record line accepted (the kernel's are under 9 KB); longer lines are reported.
MAX_RECORD_LINE = 4 * 1024 * 1024
#: Bytes read per step, and bytes kept before the current position for backward searches.
CHUNK = 16 * 1024 * 1024
HISTORY = 2 * MAX_RECORD_LINE
#: An event is never longer than this (the kernel caps argv at 6 MB, 12 MB as hex): the fast
#: path grows its buffer up to here to hold one, and gives up on longer ones.
MAX_EVENT = 256 * 1024 * 1024
#: Room after the last hit of a step so that its event's later records are in the buffer.
MARGIN = 1024 * 1024

SYSCALL = b"SYSCALL"
EOE = b"EOE"
#: the record types the mapping reads
NEEDED = frozenset({b"SYSCALL", b"EXECVE", b"CWD", b"PROCTITLE"})

Emit = Callable[[ProcessEvent], bool]


# --- the input window ---------------------------------------------------------------------------


class Window:
    """A sliding buffer over a stream: ``buf[:n]`` holds input bytes ``base .. base + n``.

    One preallocated bytearray is reused (reading into fresh buffers costs page faults); every
    search is bounded by ``n`` because bytes after it are stale.
    """

    def __init__(self, stream: io.BufferedIOBase, capacity: int) -> None:
        self.stream = stream
        self.buf = bytearray(capacity)
        self.view = memoryview(self.buf)
        #: ``buf.find``, by libc's ``memmem`` on long ranges (:mod:`rarebird.sources.libc`)
        self.find: Find = finder(self.buf)
        self.n = 0
        self.base = 0
        self.eof = False

    def drop(self, upto: int) -> None:
        """Forget ``buf[:upto]``."""
        if upto <= 0:
            return
        rest = self.n - upto
        self.view[:rest] = self.view[upto : self.n]
        self.n = rest
        self.base += upto

    def fill(self) -> None:
        """Read until the buffer is full or the input ends."""
        cap = len(self.buf)
        while self.n < cap and not self.eof:
            got = self.stream.readinto(self.view[self.n :])
            if not got:
                self.eof = True
            else:
                self.n += got

    def grow(self, limit: int) -> bool:
        """Double the buffer (up to ``limit`` bytes); False when it is already that large."""
        if len(self.buf) >= limit:
            return False
        bigger = bytearray(min(limit, 2 * len(self.buf)))
        bigger[: self.n] = self.view[: self.n]
        self.view.release()
        self.buf, self.view = bigger, memoryview(bigger)
        self.find = finder(bigger)
        return True

    def close(self) -> None:
        self.view.release()


def line_text(buf: bytearray, start: int, end: int) -> bytes:
    line = bytes(buf[start:end])
    return line[:-1] if line.endswith(b"\r") else line


# --- lost events --------------------------------------------------------------------------------


@dataclass
class _SerialTracker:
    """Serials that never appear, per node (out-of-order arrivals and rollover tolerated).

    A serial ahead of the next expected one waits (with the line it was seen on) until the
    missing ones turn up late; after ``window`` waiting serials, or at the end, the ones still
    missing are counted as lost, at the line of the first serial after the gap.
    """

    window: int = 256
    #: seconds the clock may step back before the log counts as restarted (another boot, or
    #: logs of several machines or times joined): serials before and after are unrelated
    step_back: int = 5
    expected: dict[bytes | None, int] = field(default_factory=dict)
    pending: dict[bytes | None, dict[int, int]] = field(default_factory=dict)
    latest: dict[bytes | None, int] = field(default_factory=dict)

    def see(
        self, node: bytes | None, serial: int, line: int, seconds: int = 0
    ) -> tuple[int, int, int] | None:
        """Record a new event's serial; returns ``(first missing, count, line)`` for a gap.

        The kernel numbers events in time order, so when the clock steps back by more than
        ``step_back`` the serials start over as unrelated (no gap is counted across it): a
        collection of samples from many machines (go-libaudit's 49-line RHEL 7 log) is not
        1.2 million lost events.
        """
        exp = self.expected.get(node)
        latest = self.latest.get(node)
        if latest is not None and seconds < latest - self.step_back:
            exp = None
        self.latest[node] = seconds if exp is None or latest is None else max(latest, seconds)
        if exp is None:
            self.expected[node] = (serial + 1) & 0xFFFFFFFF
            self.pending[node] = {}
            return None
        ahead = (serial - exp) & 0xFFFFFFFF
        if ahead == 0:
            self._advance(node, (serial + 1) & 0xFFFFFFFF)
            return None
        if ahead >= 0x80000000:  # behind: a late arrival, or a reboot when far behind
            if (exp - serial) & 0xFFFFFFFF > 16 * self.window:
                self.expected[node] = (serial + 1) & 0xFFFFFFFF
                self.pending[node] = {}
            return None
        pending = self.pending[node]
        pending.setdefault(serial, line)
        if len(pending) <= self.window:
            return None
        nearest = min(pending, key=lambda s: (s - exp) & 0xFFFFFFFF)
        at = pending.pop(nearest)
        self._advance(node, (nearest + 1) & 0xFFFFFFFF)
        return exp, (nearest - exp) & 0xFFFFFFFF, at

    def _advance(self, node: bytes | None, nxt: int) -> None:
        pending = self.pending[node]
        while nxt in pending:
            del pending[nxt]
            nxt = (nxt + 1) & 0xFFFFFFFF
        self.expected[node] = nxt

    def finish(self) -> list[tuple[bytes | None, int, int, int]]:
        """Gaps still open at the end: ``(node, first missing, count, line)``."""
        out = []
        for node, pending in self.pending.items():
            exp = self.expected[node]
            for serial in sorted(pending, key=lambda s: (s - exp) & 0xFFFFFFFF):
                lost = (serial - exp) & 0xFFFFFFFF
                if lost:
                    out.append((node, exp, lost, pending[serial]))
                exp = (serial + 1) & 0xFFFFFFFF
        return out


def from_daemon(rtype: bytes) -> bool:
    """Whether a record of type ``rtype`` is auditd's own (DAEMON_START, DAEMON_END, ...).

    auditd numbers its own records from a counter of its own, started at ``rand() % 10000``
    (``send_audit_event`` in audit-userspace's auditd.c), not from the kernel's serials: a
    DAEMON_START numbered 106 before kernel events numbered from 946 is not 839 lost events.
    Types 1200-1299 are the daemon's (``AUDIT_FIRST_DAEMON`` .. ``AUDIT_LAST_DAEMON`` in
    linux/audit.h); a writer that does not know a type's name writes ``UNKNOWN[1234]``.

    >>> from_daemon(b"DAEMON_START"), from_daemon(b"UNKNOWN[1205]"), from_daemon(b"SYSCALL")
    (True, True, False)
    """
    if rtype.startswith(b"DAEMON_"):
        return True
    number = rtype[8:-1] if rtype.startswith(b"UNKNOWN[") and rtype.endswith(b"]") else b""
    return number.isdigit() and 1200 <= int(number) <= 1299


def _report_lost(
    stats: ReadStats, path: str, line: int, node: bytes | None, first: int, n: int
) -> None:
    reason = "auditd: events missing from the log (serial gap)"
    stats.skipped[reason] += n - 1  # skip() below adds the last one
    where = f" on {node.decode('utf-8', 'replace')}" if node else ""
    stats.skip(SourceLocation(path, line), reason, f"{n} serial(s) from {first}{where}")


# --- full parse -----------------------------------------------------------------------------------


@dataclass
class _Group:
    first: int
    last: int
    records: list[RawRecord]
    syscall: int = -1


def scan_full(
    stream: io.BufferedIOBase,
    path: str,
    stats: ReadStats,
    ctx: BuildContext,
    keep: Callable[[ProcessEvent], bool],
    max_line: int,
) -> Iterator[ProcessEvent]:
    """Every exec event of the input, reading and checking every line (the reference path)."""
    win = Window(stream, max(CHUNK, max_line + 1) + max_line + 2)
    groups: dict[tuple[bytes | None, bytes], _Group] = {}
    ready: list[tuple[int, int, ProcessEvent]] = []
    serials = _SerialTracker()
    seq = 0
    line_no = 0
    skipping_long = False

    def finish(group: _Group) -> None:
        nonlocal seq
        if group.syscall < 0:
            return
        event = build_event(group.records, ctx)
        if event is not None and keep(event):
            seq += 1
            heapq.heappush(ready, (group.syscall, seq, event))

    def sweep(now: int) -> Iterator[ProcessEvent]:
        limit = now - GAP
        stale = [key for key, g in groups.items() if g.last < limit]
        for key in stale:
            finish(groups.pop(key))
        floor = min((g.first for g in groups.values()), default=now)
        while ready and ready[0][0] < floor:
            yield heapq.heappop(ready)[2]

    try:
        pos = 0
        while True:
            win.fill()
            buf, n = win.buf, win.n
            while True:
                nl = buf.find(b"\n", pos, n)
                if nl < 0:
                    if not win.eof:
                        break
                    if pos >= n:
                        break
                    nl = n
                start_abs = win.base + pos
                line_no += 1
                length = nl - pos
                if skipping_long:
                    skipping_long = False
                    pos = nl + 1
                    continue
                if length > max_line:
                    stats.skip(SourceLocation(path, line_no), "line too long", f"{length} bytes")
                    pos = nl + 1
                    continue
                line = line_text(buf, pos, nl)
                pos = nl + 1
                header = parse_header(line)
                if header is None:
                    if line.strip():
                        stats.skip(
                            SourceLocation(path, line_no),
                            "auditd: not an audit record",
                            line[:80].decode("utf-8", "replace"),
                        )
                    continue
                key = (header.node, header.stamp)
                group = groups.get(key)
                if group is None or start_abs - group.last > GAP:
                    if group is not None:
                        finish(group)
                    group = _Group(start_abs, start_abs, [])
                    groups[key] = group
                    if not from_daemon(header.type):
                        gap = serials.see(header.node, header.serial, line_no, header.seconds)
                        if gap is not None:
                            first, count, at = gap
                            _report_lost(stats, path, at, header.node, first, count)
                group.records.append(RawRecord(line_no, header, line))
                group.last = start_abs
                if header.type == SYSCALL and group.syscall < 0:
                    group.syscall = start_abs
                if header.type == EOE:
                    finish(groups.pop(key))
                if line_no & 1023 == 0:
                    yield from sweep(start_abs)
            if win.eof and pos >= win.n:
                break
            if pos == 0 and win.n == len(win.buf):
                # a line longer than the buffer: report it once and skip to its end
                if not skipping_long:
                    stats.skip(
                        SourceLocation(path, line_no + 1), "line too long", f"> {max_line} bytes"
                    )
                skipping_long = True
                win.drop(win.n)
                pos = 0
                continue
            win.drop(pos)
            pos = 0
        for group in groups.values():
            finish(group)
        groups.clear()
        while ready:
            yield heapq.heappop(ready)[2]
        for node, first, count, at in serials.finish():
            _report_lost(stats, path, at, node, first, count)
        stats.lines += line_no
        stats.bytes += win.base + win.n
    finally:
        win.close()
