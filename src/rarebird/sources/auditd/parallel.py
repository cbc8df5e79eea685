"""Reading one large audit log with several processes (``--workers``).

The file is cut at line boundaries into pieces (:mod:`rarebird.sources.ranges`). This process
scans the first while worker processes (:func:`run_worker`, started with ``python -c``) take
the others; each piece owns the events whose first SYSCALL record starts in it and may read
outside it for the rest of an event, so the result is exactly the sequential one, in the same
order. Workers send their events and counts back as JSON lines in a temporary file (no pickle);
line numbers are relative to the piece and fixed up here once the lines of the earlier pieces
are known.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from rarebird.errors import ReadStats
from rarebird.events import ProcessEvent
from rarebird.sources.auditd.exe_search import exe_needle
from rarebird.sources.auditd.fast import FastScan, fast_scan_for
from rarebird.sources.auditd.scan import HISTORY
from rarebird.sources.base import SourceOptions
from rarebird.sources.identity import Accounts, load_accounts
from rarebird.sources.ranges import (
    MIN_PIECE_BYTES,
    PieceSpec,
    plan_pieces,
    run_in_ranges,
    run_worker_pieces,
)

#: What a worker process runs: :func:`run_worker` on the JSON spec in ``argv[1]``.
WORKER_CODE = (
    "import sys; from rarebird.sources.auditd.parallel import run_worker; run_worker(sys.argv[1])"
)

#: The smallest piece: a piece re-reads HISTORY bytes before it, so a few times that.
MIN_PIECE = max(MIN_PIECE_BYTES, 4 * HISTORY)


def scan_parallel(
    path: str,
    options: SourceOptions,
    stats: ReadStats,
    workers: int,
    scan_range: Callable[[int, int], FastScan],
) -> Iterator[ProcessEvent]:
    """The events of ``path``, scanned by ``workers`` processes, in file order.

    This process scans the first range with ``scan_range(start, stop)`` (counting into
    ``stats``); the counts of the others are added to ``stats`` as their events are taken.
    """
    ranges = plan_pieces(path, workers, min_piece=MIN_PIECE)
    # workers write into files, not pipes: a pipe would fill up and stop a worker while this
    # process is still busy with the first range
    with tempfile.TemporaryDirectory(prefix="rarebird-auditd-") as tmp:
        yield from _run(path, options, stats, ranges, scan_range, Path(tmp), workers - 1)


def _run(
    path: str,
    options: SourceOptions,
    stats: ReadStats,
    ranges: list[tuple[int, int]],
    scan_range: Callable[[int, int], FastScan],
    tmp: Path,
    processes: int,
) -> Iterator[ProcessEvent]:
    def spec(start: int, stop: int) -> str:
        return PieceSpec.of(path, start, stop, options).to_json()

    def first(start: int, stop: int) -> Iterator[ProcessEvent]:
        with open(path, "rb") as f:
            yield from scan_range(start, stop).run(f)

    yield from run_in_ranges(path, ranges, tmp, worker_code=WORKER_CODE, spec_json=spec,
                             first=first, read_piece=PieceReader(), stats=stats,
                             count_events=False, processes=processes)  # fmt: skip


class PieceReader:
    """Scans pieces of one log described by JSON specs; the accounts (passwd, group) are
    loaded once per process, not once per piece."""

    def __init__(self) -> None:
        self._accounts: Accounts | None = None

    def __call__(self, spec_json: str) -> tuple[Iterator[ProcessEvent], ReadStats]:
        spec = PieceSpec.from_json(spec_json)
        options = spec.options()
        needle = exe_needle(options.prefilter)
        if needle is None:
            raise ValueError("a worker needs a prefilter the fast path can use")
        if self._accounts is None:
            self._accounts = load_accounts(options.passwd, options.group)
        stats = ReadStats()
        scan = fast_scan_for(spec.path, options, stats, needle, accounts=self._accounts,
                             start=spec.start, stop=spec.stop)  # fmt: skip
        return _scan_piece(scan, spec), stats


def _scan_piece(scan: FastScan, spec: PieceSpec) -> Iterator[ProcessEvent]:
    with open(spec.path, "rb") as f:
        origin = max(0, spec.start - HISTORY)
        f.seek(origin)
        yield from scan.run(f, origin=origin)


def run_worker(specs_path: str) -> None:
    """A worker process: the pieces listed at ``specs_path`` that nobody else has taken."""
    run_worker_pieces(specs_path, PieceReader())
