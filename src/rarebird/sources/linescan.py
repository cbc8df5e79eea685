"""The line reader's fast path: a chunk of lines searched once for the needles, not line by line.

:class:`~rarebird.sources.lines.LineSource` (Laurel, osquery, OCSF) keeps only lines holding
one of the prefilter's needles (``/ss"``, ``"ss"``, ... and ``\\u``: :func:`~.lines.name_needles`).
Tested line by line, every line is searched once per needle: nine searches of a kilobyte line
for the four names, about 11 us a line, and 14.8 s for Laurel's 1.25 M lines (1.3 GB) where
``grep -c -E`` of the same names took 2.0 s (docs/BENCHMARKS.md). Here a chunk of whole lines
is searched once for all needles (:class:`NeedleSearch`: Hyperscan in one pass where it runs,
else one ``memmem`` pass per needle), the line ends are found with numpy, and Python sees only
the lines it must: those holding a hit, those that may be blank (first byte whitespace: they
are neither parsed nor counted as prefiltered), and those longer than the limit (reported).
Every other line is counted as prefiltered, exactly as the line-by-line test counts it.
Sysmon's reader (:mod:`~rarebird.sources.sysmon`) adds the lines that may open an event spread
over several lines (``extra``), and reads every line while one is open (``starts``/``ends``).

``RAREBIRD_LINES_SEARCH`` (``auto``, ``hyperscan``, ``memmem``) forces the search; ``auto``
is Hyperscan where it can run.
"""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rarebird.sources.libc import finder
from rarebird.sources.multipattern import load_hyperscan

ENV = "RAREBIRD_LINES_SEARCH"
SEARCHES = ("auto", "hyperscan", "memmem")
#: bytes read at a time (a longer line grows the buffer, up to the line limit)
CHUNK = 8 * 1024 * 1024
#: what ``bytes.strip()`` removes: a line starting with one of these may be blank
_WHITESPACE = np.zeros(256, bool)
_WHITESPACE[[0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20]] = True
_NL = 0x0A


def search_mode() -> str:
    mode = os.environ.get(ENV, "") or "auto"
    if mode not in SEARCHES:
        raise ValueError(f"{ENV} must be one of {', '.join(SEARCHES)}, not {mode!r}")
    return mode


class NeedleSearch:
    """Where some byte strings occur in a buffer: a position inside each occurrence.

    With Hyperscan (one pass for all needles) a hit is the needle's last byte; with
    ``memmem`` (one pass per needle) its first. Either lies in the line holding the needle,
    as no needle holds a line end.
    """

    def __init__(self, needles: Sequence[bytes], mode: str = "auto") -> None:
        if any(b"\n" in n or not n for n in needles):
            raise ValueError("a needle must be non-empty and hold no line end")
        self.needles = tuple(needles)
        hs = load_hyperscan() if mode in ("auto", "hyperscan") else None
        if mode == "hyperscan" and hs is None:
            raise ValueError("Hyperscan was asked for but cannot run here")
        self.name = "Hyperscan" if hs is not None else "memmem"
        self._db: Any = None
        if hs is not None:
            db: Any = hs.Database(mode=hs.HS_MODE_BLOCK)
            expressions = [b"".join(b"\\x%02x" % c for c in n) for n in self.needles]
            db.compile(expressions=expressions, ids=list(range(len(expressions))),
                       elements=len(expressions), flags=0)  # fmt: skip
            self._db = db
            self._scratch = hs.Scratch(db)

    def hits(self, buf: bytearray, n: int, find: Callable[[bytes, int, int], int]) -> list[int]:
        """Positions in ``buf[:n]`` inside an occurrence of a needle (unordered; ``find`` is
        ``buf``'s :func:`~rarebird.sources.libc.finder`)."""
        out: list[int] = []
        if self._db is not None:
            add = out.append

            def on_match(_id: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
                add(end - 1)

            self._db.scan(memoryview(buf)[:n], match_event_handler=on_match,
                          scratch=self._scratch)  # fmt: skip
            return out
        for needle in self.needles:
            step = len(needle)
            p = find(needle, 0, n)
            while p >= 0:
                out.append(p)
                p = find(needle, p + step, n)
        return out


@dataclass(frozen=True, slots=True)
class Visit:
    """A line Python must look at: its number, its bytes' range, why."""

    line_no: int
    start: int
    end: int
    hit: bool
    too_long: bool


@dataclass(slots=True)
class Block:
    """Whole lines of the input, as read: the lines to look at, in order, and the others'
    count (every line not visited holds no needle, does not start with whitespace and is not
    one ``extra`` asked for).
    ``starts`` / ``ends`` bound every line of the block (line ``first_line + i`` is
    ``buf[starts[i]:ends[i]]``) for a reader that must see more than the visits."""

    buf: bytearray
    lines: int
    nbytes: int
    visits: list[Visit]
    unvisited: int
    first_line: int = 1
    starts: Any = None
    ends: Any = None
    #: why the input ended early (a compressed input cut short or corrupt): the last block,
    #: to be reported at ``first_line``
    error: str | None = None


#: More lines to visit: a bool mask from the buffer, its bytes as a numpy array, and the
#: block's line starts and ends
Extra = Callable[[bytearray, Any, Any, Any], Any]


def blocks(
    stream: io.RawIOBase | io.BufferedIOBase,
    search: NeedleSearch,
    limit: int,
    chunk: int = CHUNK,
    extra: Extra | None = None,
) -> Iterator[Block]:
    """The input in blocks of whole lines (the last line may lack its ``\\n``). A line of more
    than ``limit`` bytes is a visit with ``too_long`` and no bytes to look at; ``extra`` adds
    lines to visit. A read that fails (a gzip cut short) ends the input: the bytes read before
    it are blocks as usual, then a last block says why (:attr:`Block.error`)."""
    size = max(16, min(chunk, limit + 2))
    buf = bytearray(size)
    find = finder(buf)
    n = 0
    line_no = 0
    eof = False
    skipping = False  # inside a too-long line whose end has not been read yet
    error: str | None = None
    while not eof or n:
        view = memoryview(buf)
        while n < len(buf) and not eof:
            try:
                got = stream.readinto(view[n:])
            except (EOFError, OSError, zlib.error) as exc:  # compressed input cut short, corrupt
                error = str(exc) or type(exc).__name__
                got = 0
            if not got:
                eof = True
            else:
                n += got
        view.release()
        if skipping:
            nl = buf.find(b"\n", 0, n)
            used = n if nl < 0 else nl + 1
            yield Block(buf, 0, used, [], 0, line_no + 1)
            skipping = nl < 0 and not eof
            buf[: n - used] = buf[used:n]
            n -= used
            continue
        last = buf.rfind(b"\n", 0, n)
        complete = n if eof else last + 1
        if complete == 0:
            if n > limit:  # a line longer than the limit: reported, then read past
                line_no += 1
                one = np.zeros(1, np.int64)
                yield Block(buf, 1, n, [Visit(line_no, 0, 0, False, True)], 0, line_no, one, one)
                n = 0
                skipping = True
                continue
            # a long line that fits the limit: a bigger buffer, then read on
            bigger = bytearray(min(2 * len(buf), limit + 2))
            bigger[:n] = buf[:n]
            buf = bigger
            find = finder(buf)
            continue
        block = _block(buf, complete, line_no, search, limit, find, extra)
        line_no += block.lines
        yield block
        buf[: n - complete] = buf[complete:n]
        n -= complete

    if error is not None:
        yield Block(buf, 0, 0, [], 0, line_no + 1, error=error)


def _block(
    buf: bytearray,
    n: int,
    line_no: int,
    search: NeedleSearch,
    limit: int,
    find: Callable[[bytes, int, int], int],
    extra: Extra | None,
) -> Block:
    view = np.frombuffer(buf, np.uint8, count=n)
    ends = np.flatnonzero(view == _NL)
    if not len(ends) or ends[-1] != n - 1:
        ends = np.append(ends, n)  # the input's last line, without its line end
    total = len(ends)
    starts = np.empty(total, np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts
    first = view[np.minimum(starts, n - 1)]
    # an empty line's first byte is its own line end: whitespace
    maybe_blank = _WHITESPACE[first] | (lengths == 0)
    too_long = lengths > limit
    hit = np.zeros(total, bool)
    positions = search.hits(buf, n, find)
    if positions:
        # the line holding offset p is the first whose end is at or after p
        where = np.searchsorted(ends, np.asarray(positions, np.int64), side="left")
        hit[where] = True
    hit &= ~too_long
    wanted = hit | maybe_blank | too_long
    if extra is not None:
        wanted |= extra(buf, view, starts, ends)
    visit = np.flatnonzero(wanted)
    rows = zip(visit.tolist(), starts[visit].tolist(), ends[visit].tolist(),
               hit[visit].tolist(), too_long[visit].tolist(), strict=True)  # fmt: skip
    visits = [Visit(line_no + i + 1, s, e, h, t) for i, s, e, h, t in rows]
    return Block(buf, total, n, visits, total - len(visits), line_no + 1, starts, ends)
