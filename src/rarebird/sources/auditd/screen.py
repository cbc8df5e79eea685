"""Whole-buffer passes of the auditd fast path, vectorised: line counting and the screen for
lines that are not audit records.

The fast path parses 2 % of a log, but it still has to count every line (line numbers of the
hits, the ``read`` figure) and to notice a line that is not a record (a file of another format
must not read as an empty log). Done with ``bytes.count`` these were two passes, one for
``\\n`` (3.2 GB/s here) and one for ``msg=audit(`` (2.6 GB/s): about 1 s of a 1.4 GB log. numpy
compares 16 bytes or more an instruction: :func:`newlines` counts at about 11 GB/s, and
:func:`all_record_starts` checks the first five bytes of every line at about 4 GB/s (measured
on a 16 MiB slice of a realistic ENRICHED log; docs/BENCHMARKS.md).

Where Hyperscan finds the ``exe=`` fields, its pass screens the lines as well
(:meth:`~rarebird.sources.auditd.exe_search.ExeSearch.screen`, at less than half this screen's
cost) and :func:`all_record_starts` runs only where that pass gave no answer.

Short ranges (the gap between two nearby hits) are counted with ``bytes.count``: below a few
kilobytes numpy's call costs more than it saves.
"""

from __future__ import annotations

import numpy as np

#: below this many bytes ``bytes.count`` is cheaper than a numpy call
SMALL = 4096
#: bytes screened at once (bounds the index arrays: at most 8 bytes a byte of input)
SLICE = 1024 * 1024
_TYPE = np.frombuffer(b"type=", np.uint8)
_NODE = np.frombuffer(b"node=", np.uint8)


def newlines(buf: bytes | bytearray, start: int, end: int) -> int:
    """``buf.count(b"\\n", start, end)``, faster on long ranges.

    >>> newlines(b"a\\nb\\n" * 5000, 1, 20000), newlines(b"x\\n" * 2**20, 1, 2**21)  # past SLICE
    (10000, 1048576)
    """
    if end - start < SMALL:
        return buf.count(b"\n", start, end)
    view = np.frombuffer(buf, np.uint8, count=end - start, offset=start)
    if end - start <= SLICE:  # the usual case: the bytes between two hits
        return int(np.count_nonzero(view == 10))
    # a slice at a time, so that the comparison's temporary stays small (see _steady_heap in
    # rarebird.cli._common: buffers of 16 MiB or more are mapped afresh each time)
    return sum(int(np.count_nonzero(view[i : i + SLICE] == 10)) for i in range(0, len(view), SLICE))


def all_record_starts(buf: bytes | bytearray, begin: int, end: int) -> bool:
    r"""True when every line that starts in ``buf[begin:end]`` (``begin`` at a line start) is
    empty or starts with ``type=`` or ``node=``: then none is :data:`~.records.NOT_A_RECORD`.
    False means some line may not be a record; :func:`~.records.foreign_lines` decides. A line
    starting with a record's prefix is never reported as foreign, so True is exact.

    >>> log = b"type=A msg=audit(1.2:3): x\nnode=n type=B msg=audit(1.2:3):\n\ntype=C\n"
    >>> all_record_starts(log, 0, len(log)), all_record_starts(log + b"hello\n", 0, len(log) + 6)
    (True, False)
    >>> all_record_starts(b"typ\n", 0, 4), all_record_starts(b"tyPe=\n", 0, 6)
    (False, False)
    >>> many = b"x\n" + b"type=A\n" * 300000  # past one slice
    >>> all_record_starts(many, 2, len(many)), all_record_starts(many + b"y\n", 2, len(many) + 2)
    (True, False)
    """
    if end <= begin:
        return True
    # a line starting before ``end`` ends at or before it: its first five bytes are in
    # buf[:end] unless it is shorter, and an index clipped to ``end - 1`` repeats the line's
    # last byte, which never completes ``type=`` or ``node=`` (no letter of either repeats)
    whole = np.frombuffer(buf, np.uint8, count=end)
    last = end - 1
    for lo in range(begin, end, SLICE):
        hi = min(end, lo + SLICE)
        starts = np.flatnonzero(whole[lo:hi] == 10) + (lo + 1)
        if lo == begin:
            starts = np.concatenate(([begin], starts))
        starts = starts[starts < end]
        if not len(starts):
            continue
        first = whole[starts]
        is_type, is_node = first == _TYPE[0], first == _NODE[0]
        for k in range(1, 5):  # five 1-D gathers: twice the speed of one 2-D gather and all()
            byte = whole[np.minimum(starts + k, last)]
            is_type &= byte == _TYPE[k]
            is_node &= byte == _NODE[k]
        if not (is_type | is_node | (first == 10)).all():
            return False
    return True
