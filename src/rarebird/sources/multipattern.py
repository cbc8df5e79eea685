"""Hyperscan, where it can run, and the rule for choosing it over a format's own search.

Hyperscan (Intel's multi-pattern matcher, the ``hyperscan`` PyPI wheel) finds many literals or
simple regular expressions in one pass over a buffer. The ECS reader uses it for the datafeed's
literals (:mod:`rarebird.sources.ecs.multiscan`), the auditd fast path for the ``exe=`` fields
(:mod:`rarebird.sources.auditd.exe_search`). Neither depends on it: where the wheel is missing
or the CPU cannot run it (no SSSE3), each keeps its own search, and ``auto`` picks Hyperscan
only when, timed on the input's first buffer, it is clearly faster (which one is depends on the
CPU, the C library and the data: see docs/BENCHMARKS.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from types import ModuleType
from typing import Any

#: Hyperscan is chosen when it takes less than this share of the other search's time on the
#: first buffer: a single buffer timed on a busy machine misleads (measured: ``auto`` picked
#: Hyperscan on a file where it was 1.9 times slower overall), and a small gain is not worth
#: the risk
MARGIN = 0.8


@cache
def load_hyperscan() -> ModuleType | None:
    """The ``hyperscan`` module when installed and runnable on this CPU, else None."""
    try:
        import hyperscan
    except (ImportError, OSError):  # not installed, or its bundled library cannot load
        return None
    try:
        db: Any = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        db.compile(expressions=[b"ss"], ids=[0], elements=1, flags=0)
        db.scan(b"xss", match_event_handler=lambda *_: None)
    except Exception:  # hyperscan.error: no SSSE3, or a library the wheel cannot load
        return None
    return hyperscan


def faster(first: Callable[[], object], second: Callable[[], object]) -> bool:
    """True when ``second`` runs clearly faster than ``first`` (in under ``MARGIN`` of its time,
    best of two runs each, alternated).

    The time is the thread's CPU time, not the wall clock: in a ``--workers`` run the reading
    processes and the job share the cores, and a search descheduled half-way measured twice
    its cost on the wall clock (the auditd fast path's main process picked the regular
    expression over Hyperscan in one of three runs with two processes on a 1.4 GB log).
    """
    best = [float("inf"), float("inf")]
    for _ in range(2):
        for i, run in enumerate((first, second)):
            t0 = time.thread_time()
            run()
            best[i] = min(best[i], time.thread_time() - t0)
    return best[1] < MARGIN * best[0]
