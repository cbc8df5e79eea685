"""Finding the ``exe=`` fields the prefilter wants, in whole buffers.

:func:`exe_needle` is the regular expression that decides: an ``exe=`` field whose basename is
one of the datafeed's process names, in every spelling the parser accepts (quoted, upper-case
hex, unquoted). Python's ``re`` runs it at about 1.5 GB/s. :class:`ExeSearch` can first have
Hyperscan find, in one pass at about 2.8 GB/s (a 64 MiB slice of the realistic ENRICHED log,
docs/BENCHMARKS.md), the lines that may hold such a field: patterns that match whenever the
regular expression does (``exe=``, then a value holding ``/`` or ``=`` or ``2F`` and the name,
its hex, or the quoted name: no look-behinds, which Hyperscan lacks, so more lines than the
hits). The regular expression then runs on those lines only, so the hits are exactly its own,
in the same order: a hit never spans lines (no pattern matches a line end).

The same pass screens the buffer for lines that are not audit records (:meth:`ExeSearch.screen`):
a pattern for a line starting with neither ``type=`` nor ``node=`` adds about 0.17 ns a byte to
the pass, where the screen of :mod:`~rarebird.sources.auditd.screen` (numpy) costs 0.4 ns a byte
on its own (256 MiB of the realistic log: 42 ms against 104 ms).

Which search runs is ``RAREBIRD_AUDITD_SEARCH``: ``auto`` (default), ``hyperscan`` or ``re``.
``auto`` uses Hyperscan where it can run and, timed on the first large buffer a process
searches, it is clearly faster (:mod:`rarebird.sources.multipattern`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from rarebird.sources.auditd import screen
from rarebird.sources.base import Prefilter
from rarebird.sources.multipattern import faster, load_hyperscan

ENV = "RAREBIRD_AUDITD_SEARCH"
SEARCHES = ("auto", "hyperscan", "re")
#: buffers under this size are searched with ``re`` and not timed
CALIBRATE_MIN = 1024 * 1024

#: Hyperscan's pattern for a line that does not start like a record: after a newline, a first
#: byte other than ``t``, ``n`` or a newline (a blank line is no record, and no defect), or a
#: prefix of ``type=`` or ``node=`` that stops short (a line ending early does too: a newline is
#: none of their letters). Like :func:`~rarebird.sources.auditd.screen.all_record_starts` it
#: only says where to look: :func:`~rarebird.sources.auditd.records.foreign_lines` decides.
SCREEN_PATTERN = b"\n(?:[^tn\n]|t[^y]|ty[^p]|typ[^e]|type[^=]|n[^o]|no[^d]|nod[^e]|node[^=])"
_SCREEN_ID = 1 << 16


def exe_names(prefilter: Prefilter) -> list[bytes] | None:
    """The basenames an ``exe`` must have to satisfy the prefilter (from the ``process.name``
    condition, or the basenames of a ``process.executable`` one), sorted; None when there is
    no such condition or a value cannot be searched for exactly (then every event is parsed).
    """
    names = prefilter.process_names()
    if names is None:
        return None
    out: list[bytes] = []
    for name in sorted(names):
        if "/" in name:
            continue  # a basename never holds '/': this value cannot match
        if not name or "\ufffd" in name or " " in name or "\x00" in name:
            return None  # "" (exe ending in '/'), undecodable bytes, NUL/space ambiguity
        out.append(name.encode("utf-8"))
    return out


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
    names = exe_names(prefilter)
    if names is None:
        return None
    quoted: list[bytes] = []
    unquoted: list[bytes] = []
    for raw in names:
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


def search_mode() -> str:
    """``RAREBIRD_AUDITD_SEARCH``, or ``auto``."""
    mode = os.environ.get(ENV, "") or "auto"
    if mode not in SEARCHES:
        raise ValueError(f"{ENV} must be one of {', '.join(SEARCHES)}, not {mode!r}")
    return mode


def exe_search(prefilter: Prefilter, needle: re.Pattern[bytes]) -> ExeSearch | None:
    """How to find the needle's matches: None for its own ``finditer``, else an
    :class:`ExeSearch` (one a process, so that ``auto`` times the two searches once)."""
    names = exe_names(prefilter)
    mode = search_mode()
    if not names or mode == "re":
        return None
    hs = load_hyperscan()
    if hs is None:
        if mode == "hyperscan":
            raise ValueError(f"{ENV}=hyperscan: the hyperscan module is missing or cannot run")
        return None
    return _search(needle, tuple(names), mode == "auto")


@cache
def _search(needle: re.Pattern[bytes], names: tuple[bytes, ...], calibrate: bool) -> ExeSearch:
    hs = load_hyperscan()
    assert hs is not None
    return ExeSearch(hs, needle, names, calibrate=calibrate)


def candidate_patterns(names: tuple[bytes, ...]) -> list[bytes]:
    """Hyperscan patterns matching wherever ``exe_needle`` of these names matches (and more):
    a quoted value ending in ``/NAME"`` or being ``"NAME"``; an unquoted one holding NAME, or
    its hex, at its start or after ``/``, ``=`` (or ``2F``, the hex of ``/``)."""
    esc = b"|".join(_escaped(n) for n in names)
    hexes = b"|".join(n.hex().upper().encode("ascii") for n in names)
    return [
        b'exe="[^"\\n\\x1d]*/(?:' + esc + b')"',
        b'exe="(?:' + esc + b')"',
        b'exe=(?:[^ "\\n\\r\\x1d]*(?:/|=))?(?:' + esc + b")",
        b'exe=(?:[^ "\\n\\r\\x1d]*(?:2F|=))?(?:' + hexes + b")",
    ]


def _escaped(literal: bytes) -> bytes:
    return b"".join(b"\\x%02x" % c for c in literal)


class ExeSearch:
    """Hyperscan's pass for the candidate lines, then the needle on each of them.

    One instance per process: its scratch space is not shared between threads.
    """

    def __init__(
        self, hs: Any, needle: re.Pattern[bytes], names: tuple[bytes, ...], *, calibrate: bool
    ) -> None:
        self._needle = needle
        patterns = candidate_patterns(names)
        ids = list(range(len(patterns)))
        flags = [0] * len(patterns)
        # the screen: the first foreign line of a pass is enough (see ``screen``)
        patterns.append(SCREEN_PATTERN)
        ids.append(_SCREEN_ID)
        flags.append(hs.HS_FLAG_SINGLEMATCH)
        db: Any = hs.Database(mode=hs.HS_MODE_BLOCK)
        db.compile(expressions=patterns, ids=ids, elements=len(patterns), flags=flags)
        self._db = db
        self._scratch = hs.Scratch(db)
        #: None until ``auto`` has timed both searches on a large buffer
        self.use_hyperscan: bool | None = None if calibrate else True
        #: the last pass's range of the buffer, and the last byte of the first line in it that
        #: may not be a record (None: every line after the first starts like one)
        self._screened: tuple[int, int, int | None] | None = None

    def finditer(self, buf: bytearray, begin: int, end: int) -> Iterator[re.Match[bytes]]:
        """The needle's matches in ``buf[begin:end]``, in order."""
        self._screened = None
        if self.use_hyperscan is None and end - begin >= CALIBRATE_MIN:
            # each side with the screen for lines that are not records: Hyperscan's pass does
            # it, the regular expression leaves it to numpy (without it, the choice went to
            # the regular expression on the realistic log: about 1 s slower on its 1.4 GB)
            self.use_hyperscan = faster(
                lambda: (
                    list(self._needle.finditer(buf, begin, end)),
                    screen.all_record_starts(buf, begin, end),
                ),
                lambda: list(self._candidates(buf, begin, end)),
            )
        if not self.use_hyperscan:
            return self._needle.finditer(buf, begin, end)
        return self._candidates(buf, begin, end)

    def screen(self, buf: bytearray, begin: int, end: int) -> bool | None:
        """What :func:`~rarebird.sources.auditd.screen.all_record_starts` answers for
        ``buf[begin:end]`` (``begin`` at a line start, every line in it whole), from the last
        pass of :meth:`finditer` over ``buf`` once it has run (its results all taken); None
        when that pass did not look at these bytes (``re`` ran, or another range)."""
        if self._screened is None:
            return None
        lo, hi, first = self._screened
        if begin < lo or end > hi:
            return None
        if end <= begin:
            return True
        # the line at ``begin`` follows a newline the pass did not see: looked at here
        if buf[begin] != 0x0A and not buf.startswith((b"type=", b"node="), begin, end):
            return False
        # a last line without its newline (the end of the input) and shorter than a prefix
        # never completes the pattern, and is not a record either
        if buf[end - 1] != 0x0A and end - (buf.rfind(b"\n", begin, end) + 1) < 5:
            return False
        # the pattern starts at a newline, so its first hit in ``lo..hi`` ends in the first
        # foreign line starting after ``lo``; one starting before ``end`` ends before it (lines
        # are whole). Only the first hit is known: one before ``begin`` hides any later one
        # (the fast path asks from ``lo``, or from the end of a line cut by ``lo``)
        if first is not None and first < begin:
            return None
        return first is None or first >= end

    def _candidates(self, buf: bytearray, begin: int, end: int) -> Iterator[re.Match[bytes]]:
        ends: list[int] = []
        foreign: list[int] = []

        def on_match(id_: int, _start: int, to: int, _flags: int, _ctx: object) -> None:
            (foreign if id_ == _SCREEN_ID else ends).append(to)

        self._db.scan(memoryview(buf)[begin:end], match_event_handler=on_match,
                      scratch=self._scratch)  # fmt: skip
        self._screened = (begin, end, begin + foreign[0] - 1 if foreign else None)
        ends.sort()
        needle = self._needle
        line_end = -1
        for to in ends:
            last = begin + to - 1  # the candidate's last byte: its line holds it
            if last < line_end:
                continue  # a line already searched
            nl = buf.rfind(b"\n", begin, last)
            line_end = buf.find(b"\n", last, end)
            if line_end < 0:
                line_end = end
            yield from needle.finditer(buf, nl + 1 if nl >= 0 else begin, line_end)
