"""Reading one large file of a line format (Laurel, osquery, OCSF, Sysmon) with several processes.

As for ECS and raw auditd (:mod:`rarebird.sources.ranges`): the file is cut at line boundaries
into pieces; this process reads the first while worker processes (started with ``python -c``)
take the others, each with the format's own reader and the same options, and their events are
taken in file order, so the events and the counts are those of one process reading it all.
Used for plain regular files of at least 64 MiB when the prefilter gives needles to search
for (otherwise every line is parsed, or the input is compressed, and one process reads it).
Sysmon's events may span lines: its cuts are moved to just after a line ending with
``</Event>`` (:func:`cuts_after`), where its reader holds no event open whatever came before.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from rarebird.errors import InputError, ReadStats
from rarebird.events import ProcessEvent
from rarebird.sources.base import SourceOptions
from rarebird.sources.ranges import PieceSpec, plan_pieces, run_in_ranges, run_worker_pieces
from rarebird.sources.sniff import is_gzip

#: Below this size a file is read by one process whatever ``workers`` says.
PARALLEL_MIN_BYTES = 64 * 1024 * 1024
#: :func:`cuts_after` reads lines this long at most at a time
_LINE_READ = 1 << 20

WORKER_CODE = (
    "import sys; from rarebird.sources.lines_parallel import run_worker; run_worker(sys.argv[1])"
)


class RangeReader(Protocol):
    """What the parallel read needs of a line source (:class:`~.lines.LineSource`)."""

    format_name: str

    @property
    def options(self) -> SourceOptions: ...

    @property
    def stats(self) -> ReadStats: ...

    def read_range(self, start: int, stop: int) -> Iterator[ProcessEvent]: ...


def can_split(path: str) -> bool:
    """Whether ``path`` is a plain file large enough to be read in pieces."""
    try:
        if not os.path.isfile(path) or os.path.getsize(path) < PARALLEL_MIN_BYTES:
            return False
        with open(path, "rb") as f:
            return not is_gzip(f.read(2))
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None


def cuts_after(path: str, ranges: list[tuple[int, int]], ending: bytes) -> list[tuple[int, int]]:
    """``ranges`` (whole lines) with each cut moved on to just after the first whole line from
    it whose text, trailing white space aside, ends with ``ending``: for a format whose records
    may span lines, a place where none is open (Sysmon: after ``</Event>``). A range with no
    such line is joined to the one before."""
    size = os.path.getsize(path)
    cuts = [0]
    with open(path, "rb") as f:
        for start, _stop in ranges[1:]:
            if start < cuts[-1]:
                continue  # the last cut moved past this one
            f.seek(start)
            pos = start
            while True:
                # a line longer than a read comes in parts: only its last, ending with the
                # newline, can end a line (a short last part hides the ending: no cut there)
                line = f.readline(_LINE_READ)
                if not line:
                    break
                pos += len(line)
                if line.endswith(b"\n") and line.rstrip().endswith(ending):
                    break
            if cuts[-1] < pos < size:
                cuts.append(pos)
    cuts.append(size)
    return list(zip(cuts, cuts[1:], strict=False))


def scan_parallel(
    source: RangeReader, path: str, workers: int, ranges: list[tuple[int, int]] | None = None
) -> Iterator[ProcessEvent]:
    """The events of ``path`` read by ``workers`` processes, in file order; counts go to
    ``source.stats`` as if one process had read it all. ``ranges``: the pieces, when not
    :func:`~rarebird.sources.ranges.plan_pieces`'."""
    options = source.options
    if ranges is None:
        ranges = plan_pieces(path, workers)

    def spec(start: int, stop: int) -> str:
        return PieceSpec.of(path, start, stop, options, source.format_name).to_json()

    with tempfile.TemporaryDirectory(prefix="rarebird-lines-") as tmp:
        yield from run_in_ranges(path, ranges, Path(tmp), worker_code=WORKER_CODE,
                                 spec_json=spec, first=source.read_range,
                                 read_piece=PieceReader(), stats=source.stats,
                                 count_events=True, processes=workers - 1)  # fmt: skip


class PieceReader:
    """Reads pieces described by JSON specs, each with a reader of the spec's format."""

    def __call__(self, spec_json: str) -> tuple[Iterator[ProcessEvent], ReadStats]:
        from rarebird.sources.registry import input_format

        spec = PieceSpec.from_json(spec_json)
        source = input_format(spec.format).factory(spec.path, spec.options())
        read_range = getattr(source, "read_range", None)
        if read_range is None:
            raise ValueError(f"{spec.format} cannot be read in pieces")
        return read_range(spec.start, spec.stop), source.stats


def run_worker(specs_path: str) -> None:
    """A worker process: the pieces listed at ``specs_path`` that nobody else has taken."""
    run_worker_pieces(specs_path, PieceReader())
