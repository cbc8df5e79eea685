"""Events read from the inputs a stretch at a time before the job sees them.

A replay used to alternate event by event: the reader ran until it had one event, the
datafeed and the job took it, the reader went on. Measured on the realistic 1,000,000-exec
auditd log, the reader and the job alternating took 3.97-4.19 s in process where the reader
then the job, apart, took 3.63-3.90 s; reading 1,024 events before offering them took
3.58-3.71 s (docs/BENCHMARKS.md, "the floor"): each runs for a stretch with its own data in the
CPU's caches. The events reach the job in the same order, so nothing it computes changes.

Inputs read as they are written (stdin, FIFOs) are not read ahead (``size`` 1): an event
waiting for 1,023 more would wait for the host to produce them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

#: events read before any is offered, when every input is a file
READ_AHEAD = 1024

T = TypeVar("T")


def read_ahead(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last may be shorter), in order. When reading fails,
    the items read before the failure are handed over first, then the error is raised: what
    the caller sees before the error is what it saw item by item."""
    batch: list[T] = []
    try:
        for item in items:
            batch.append(item)
            if len(batch) >= size:
                yield batch
                batch = []
    except Exception:
        if batch:
            yield batch
        raise
    if batch:
        yield batch
