"""One pass over a chunk for all of a prefilter condition's literals: Hyperscan, when usable.

The ECS fast path finds the lines that can hold a wanted value by searching a chunk for each
value as a JSON string literal (:mod:`.prefilter`). With libc ``strstr`` that is one pass over
the chunk per literal (four for netstat, ss, route, showmount). :class:`MultiLiteral` compiles
the literals of the conditions, the two-character escapes of their characters and ``\\u``
into one Hyperscan database and finds them all in a single pass. The hits it returns mark the
same lines as the libc search: a hit is reported at the literal's last byte (a literal never
holds a line end, so it is in the same line as its first byte), overlapping occurrences are
all reported (they lie in the line of the first), and a ``\\u`` escape counts only when it
spells a code unit of a value, as in :func:`.prefilter.escape_hits`.

Which search runs is the ``search`` of :class:`~rarebird.sources.ecs.reader.EcsSource`, or
the ``RAREBIRD_ECS_SEARCH`` environment variable: ``auto`` (default), ``hyperscan``, ``libc``
or ``python``. ``auto`` uses Hyperscan only where it can run and only when, timed on the
input's first chunk, it is clearly faster than libc (:mod:`rarebird.sources.multipattern`).
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from rarebird.sources.ecs.prefilter import ByteCondition

ENV = "RAREBIRD_ECS_SEARCH"
SEARCHES = ("auto", "hyperscan", "libc", "python")
#: below this many bytes a chunk is not worth timing (and libc is used)
CALIBRATE_MIN = 1024 * 1024

_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def search_mode(search: str | None) -> str:
    """The search asked for: ``search``, else ``RAREBIRD_ECS_SEARCH``, else ``auto``."""
    mode = search if search is not None else os.environ.get(ENV, "") or "auto"
    if mode not in SEARCHES:
        source = "search" if search is not None else ENV
        raise ValueError(f"{source} must be one of {', '.join(SEARCHES)}, not {mode!r}")
    return mode


def _escaped(literal: bytes) -> bytes:
    return b"".join(b"\\x%02x" % c for c in literal)


class MultiLiteral:
    """The byte patterns of some conditions, searched for in one pass (Hyperscan block mode).

    One instance per reader: its scratch space is not shared between threads.
    """

    def __init__(self, hs: ModuleType, conds: tuple[ByteCondition, ...]) -> None:
        self.conds = conds
        expressions: list[bytes] = []
        ids: list[int] = []
        for i, cond in enumerate(conds):
            for literal in (*cond.needles, *cond.short_escapes):
                expressions.append(_escaped(literal))
                ids.append(i)
        #: the id of the ``\\u`` pattern (-1: no condition has a character it could spell)
        self.u_id = len(conds) if any(c.units for c in conds) else -1
        if self.u_id >= 0:
            expressions.append(_escaped(b"\\u"))
            ids.append(self.u_id)
        db: Any = hs.Database(mode=hs.HS_MODE_BLOCK)
        db.compile(expressions=expressions, ids=ids, elements=len(expressions), flags=0)
        self._db = db
        self._scratch = hs.Scratch(db)

    def search(self, buf: bytearray, n: int) -> list[list[int]]:
        """For each condition, positions in ``buf[:n]`` of lines that may satisfy it (the last
        byte of each literal found). ``buf[n]`` must not be part of any literal (the reader
        puts a NUL there); bytes after it are stale and their hits dropped."""
        found: list[list[int]] = [[] for _ in self.conds]
        escapes: list[int] = []
        u_id = self.u_id

        def on_match(ident: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            last = end - 1
            if last < n:
                (escapes if ident == u_id else found[ident]).append(last)

        self._db.scan(buf, match_event_handler=on_match, scratch=self._scratch)
        if escapes:
            for pos in escapes:  # pos is the 'u'; the four digits follow it
                digits = buf[pos + 1 : pos + 5]
                if len(digits) != 4 or not all(c in _HEX_DIGITS for c in digits):
                    continue
                unit = int(digits, 16)
                for i, cond in enumerate(self.conds):
                    if unit in cond.units:
                        found[i].append(pos)
        return found
