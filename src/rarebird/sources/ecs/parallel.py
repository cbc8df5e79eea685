"""Reading one large ECS NDJSON file with several processes (``--workers``).

As for raw auditd (:mod:`rarebird.sources.auditd.parallel`): the file is cut at line boundaries
into pieces (:mod:`rarebird.sources.ranges`); this process reads the first while worker
processes (started with ``python -c``) take the others with the same options and prefilter,
and their events are taken in file order, so the events and the counts are the sequential
ones. Used for plain regular files of at least 64 MiB holding NDJSON, when the prefilter can
skip lines (otherwise the reading process is not the bottleneck: every line is parsed, or the
input is compressed).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from rarebird.errors import InputError, ReadStats
from rarebird.events import ProcessEvent
from rarebird.sources.base import SourceOptions
from rarebird.sources.ranges import (
    RangeStream,
    ReadPiece,
    plan_pieces,
    run_in_ranges,
)


class RangeReader(Protocol):
    """What the parallel scan needs of the ECS source (:class:`~.reader.EcsSource`), which
    imports this module: its options and counts, and its NDJSON reader over one stream."""

    options: SourceOptions
    layout: str | None
    chunk_bytes: int
    search_mode: str

    @property
    def filtering(self) -> bool: ...

    @property
    def stats(self) -> ReadStats: ...

    @property
    def lane(self) -> object | None: ...

    def read_ndjson(self, stream: Any, at_start: bool = True) -> Iterator[ProcessEvent]: ...


#: Below this size a file is read by one process whatever ``workers`` says.
PARALLEL_MIN_BYTES = 64 * 1024 * 1024

WORKER_CODE = (
    "import sys; from rarebird.sources.ecs.worker import run_worker; run_worker(sys.argv[1])"
)


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What one worker reads, and the options it reads with (as JSON)."""

    path: str
    start: int
    stop: int
    prefilter: list[tuple[str, list[str]]]
    fields: list[str] | None
    max_line_bytes: int
    chunk_bytes: int
    search: str
    lane: bool

    def to_json(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()


def can_split(source: RangeReader, path: str) -> bool:
    """Whether ``path`` is worth (and fit for) reading in ranges with ``source``'s options."""
    if not source.filtering:
        return False
    try:
        if not os.path.isfile(path) or os.path.getsize(path) < PARALLEL_MIN_BYTES:
            return False
        with open(path, "rb") as f:
            head = f.read(64 * 1024)
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None
    from rarebird.sources.ecs.layout import detect_layout
    from rarebird.sources.sniff import is_gzip

    return not is_gzip(head[:2]) and detect_layout(head) == "ndjson"


def scan_parallel(
    source: RangeReader, path: str, workers: int, read_piece: ReadPiece
) -> Iterator[ProcessEvent]:
    """The events of ``path`` read by ``workers`` processes, in file order; counts go to
    ``source.stats`` as if one process had read it all."""
    ranges = plan_pieces(path, workers)
    with tempfile.TemporaryDirectory(prefix="rarebird-ecs-") as tmp:
        yield from _run(source, path, ranges, Path(tmp), workers - 1, read_piece)


def _run(
    source: RangeReader,
    path: str,
    ranges: list[tuple[int, int]],
    tmp: Path,
    processes: int,
    read_piece: ReadPiece,
) -> Iterator[ProcessEvent]:
    options = source.options

    def spec(start: int, stop: int) -> str:
        return WorkerSpec(
            path=path,
            start=start,
            stop=stop,
            prefilter=[(c.field, sorted(c.values)) for c in options.prefilter.conditions],
            fields=sorted(options.fields) if options.fields is not None else None,
            max_line_bytes=options.max_line_bytes,
            chunk_bytes=source.chunk_bytes,
            search=source.search_mode,
            lane=source.lane is not None,
        ).to_json()

    def first(start: int, stop: int) -> Iterator[ProcessEvent]:
        source.layout = "ndjson"
        yield from source.read_ndjson(RangeStream(path, start, stop))

    yield from run_in_ranges(path, ranges, tmp, worker_code=WORKER_CODE, spec_json=spec,
                             first=first, read_piece=read_piece, stats=source.stats,
                             count_events=True, processes=processes)  # fmt: skip
