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

Which search runs is ``RAREBIRD_AUDITD_SEARCH``: ``auto`` (default), ``hyperscan`` or ``re``.
``auto`` uses Hyperscan where it can run and, timed on the first large buffer a process
searches, it is clearly faster (:mod:`rarebird.sources.multipattern`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from rarebird.sources.base import Prefilter
from rarebird.sources.multipattern import faster, load_hyperscan

ENV = "RAREBIRD_AUDITD_SEARCH"
SEARCHES = ("auto", "hyperscan", "re")
#: buffers under this size are searched with ``re`` and not timed
CALIBRATE_MIN = 1024 * 1024

#: The matches of the needle in ``buf[begin:end]``, in order.
ExeHits = Callable[[bytearray, int, int], Iterator[re.Match[bytes]]]


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


def exe_search(prefilter: Prefilter, needle: re.Pattern[bytes]) -> ExeHits | None:
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
    return _search(needle, tuple(names), mode == "auto").finditer


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
        db: Any = hs.Database(mode=hs.HS_MODE_BLOCK)
        db.compile(expressions=patterns, ids=list(range(len(patterns))), elements=len(patterns),
                   flags=0)  # fmt: skip
        self._db = db
        self._scratch = hs.Scratch(db)
        #: None until ``auto`` has timed both searches on a large buffer
        self.use_hyperscan: bool | None = None if calibrate else True

    def finditer(self, buf: bytearray, begin: int, end: int) -> Iterator[re.Match[bytes]]:
        if self.use_hyperscan is None and end - begin >= CALIBRATE_MIN:
            self.use_hyperscan = faster(
                lambda: list(self._needle.finditer(buf, begin, end)),
                lambda: list(self._candidates(buf, begin, end)),
            )
        if not self.use_hyperscan:
            return self._needle.finditer(buf, begin, end)
        return self._candidates(buf, begin, end)

    def _candidates(self, buf: bytearray, begin: int, end: int) -> Iterator[re.Match[bytes]]:
        ends: list[int] = []

        def on_match(_id: int, _start: int, to: int, _flags: int, _ctx: object) -> None:
            ends.append(to)

        self._db.scan(memoryview(buf)[begin:end], match_event_handler=on_match,
                      scratch=self._scratch)  # fmt: skip
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
