"""The lines of an NDJSON chunk that need Python, found with numpy (one pass over the bytes).

The ECS reader parses only the lines the datafeed's literals hit (about 6 % of a fleet's lines
with decoys), but it must also count every line (line numbers for what it reports) and check
that each is framed as a JSON object (``{`` first, ``}`` last), so that a file of another
shape is reported, not read as empty. A Python loop over every line did both at about 1 µs a
line -- for 1 M lines, about as long as the literal search itself. Here the line ends, the
framing and the hits' lines are whole-array operations, and Python sees only the lines it has
to: the hits' and the badly framed ones (measured in docs/BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_NL, _OPEN, _CLOSE = 0x0A, 0x7B, 0x7D


def lines_to_visit(
    buf: bytes | bytearray, n: int, hits: Sequence[int]
) -> tuple[int, list[tuple[int, int, int, bool, bool]]]:
    r"""The whole lines of ``buf[:n]`` (each ends with ``\n``; bytes after the last ``\n`` are
    not a line yet) and, in line order, those Python must look at: ``(index, start, end,
    hit, framed)`` for every line holding one of ``hits`` (byte offsets) and every line not
    framed as ``{...}`` by its first and last bytes (blank lines included).

    >>> buf = b'{"a": 1}\n\n{"ss": 2}\nnot json\n{"x"'
    >>> lines_to_visit(buf, len(buf), [11])
    (4, [(1, 9, 9, False, False), (2, 10, 19, True, True), (3, 20, 28, False, False)])
    """
    view = np.frombuffer(buf, np.uint8, count=n)
    ends = np.flatnonzero(view == _NL)
    total = len(ends)
    if not total:
        return 0, []
    starts = np.empty(total, np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    # a blank line's first byte is its own newline: never "{", so it is not framed
    framed = (view[starts] == _OPEN) & (view[ends - 1] == _CLOSE)
    hit = np.zeros(total, bool)
    if len(hits):
        # the line holding offset c is the first whose end is past c
        where = np.searchsorted(ends, np.asarray(hits, np.int64), side="right")
        hit[where[where < total]] = True
    visit = np.flatnonzero(hit | ~framed)
    rows = zip(
        visit.tolist(), starts[visit].tolist(), ends[visit].tolist(),
        hit[visit].tolist(), framed[visit].tolist(), strict=True,
    )  # fmt: skip
    return total, list(rows)
