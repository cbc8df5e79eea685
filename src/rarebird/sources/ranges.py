"""Reading one large file with several processes: the parts every format shares
(:mod:`rarebird.sources.auditd.parallel`, :mod:`rarebird.sources.ecs.parallel`).

The file is cut at line boundaries into pieces, many more than processes. This process reads
the first piece; worker processes take the others in file order, one at a time, and send their
events and counts back as JSON lines in a temporary file each (no pickle). This process uses
the pieces in file order (the job's work on the events is done here); when it has caught up
with the workers it takes the next piece nobody has taken and reads it itself, so the work is
shared out whatever the job's share of it. Line numbers are relative to a piece and fixed up
here once the lines of the earlier pieces are known.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import orjson

from rarebird.errors import InputError, InputIssue, ReadStats
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources.base import FieldCondition, Prefilter, SourceOptions

#: ``--workers auto`` never starts more worker processes than this for one file
MAX_AUTO_WORKERS = 8


def usable_cpus(cgroup_root: str = "/sys/fs/cgroup") -> int:
    """CPUs this process may use: its affinity mask (which ``taskset`` and cpusets narrow;
    ``os.cpu_count()`` where there is none), and no more than its cgroup's CPU quota (a
    container started with ``--cpus 1.5`` sees every CPU of the host but may use 1.5 of them:
    2 here, rounded up)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = cpu_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def cpu_quota(cgroup_root: str = "/sys/fs/cgroup") -> float | None:
    """The CPUs' worth of time this process's cgroup may use, or None without a limit: cgroup
    v2's ``cpu.max`` (``"150000 100000"``: 1.5; ``"max 100000"``: none) of the process's own
    group, else v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1: none)."""
    root = Path(cgroup_root)
    group = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                group = line[3:].strip("/")
    candidates = [
        (root / group / "cpu.max", None),
        (root / "cpu.max", None),
        (root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"),
        (root / "cpu,cpuacct" / "cpu.cfs_quota_us", root / "cpu,cpuacct" / "cpu.cfs_period_us"),
    ]
    for limit, period in candidates:
        try:
            fields = limit.read_text().split()
            if period is not None:
                fields.append(period.read_text().strip())
            if fields[:1] in (["max"], ["-1"]):
                return None  # the file is there and says: no limit
            quota_us, period_us = int(fields[0]), int(fields[1])
        except (OSError, ValueError):
            continue
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    return None


def auto_workers(inputs: int, cpus: int | None = None) -> int:
    """Worker processes for each of ``inputs`` files read at once (``--workers auto``): the
    usable CPUs shared among the inputs, at most :data:`MAX_AUTO_WORKERS` each. Files below a
    format's size threshold are read by one process whatever this says.

    >>> auto_workers(1, cpus=2), auto_workers(3, cpus=2), auto_workers(1, cpus=64), auto_workers(4, cpus=8)
    (2, 1, 8, 2)
    """
    cpus = usable_cpus() if cpus is None else cpus
    return max(1, min(MAX_AUTO_WORKERS, cpus // max(1, inputs)))


def split_ranges(path: str, parts: int) -> list[tuple[int, int]]:
    """``parts`` byte ranges of the file, each starting at the beginning of a line."""
    size = os.path.getsize(path)
    cuts = [0]
    with open(path, "rb") as f:
        for i in range(1, parts):
            f.seek(size * i // parts)
            f.readline()
            pos = f.tell()
            if pos > cuts[-1] and pos < size:
                cuts.append(pos)
    cuts.append(size)
    return list(zip(cuts, cuts[1:], strict=False))


class RangeStream(io.RawIOBase):
    """Bytes ``start`` to ``stop`` of a file, as a stream."""

    def __init__(self, path: str, start: int, stop: int) -> None:
        self._f = open(path, "rb")  # noqa: SIM115 (closed by close())
        self._f.seek(start)
        self._left = stop - start

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        n = self._f.readinto(view[: min(len(view), self._left)]) or 0
        self._left -= n
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


@dataclass(frozen=True, slots=True)
class PieceSpec:
    """What a worker reads of a file, and the source options it reads with, as JSON (the
    auditd and line-format workers; ECS has its own, with its search and lane)."""

    path: str
    start: int
    stop: int
    #: the prefilter's conditions as ``[field, [values...]]``
    prefilter: list[tuple[str, list[str]]]
    host_name: str | None
    passwd: str | None
    group: str | None
    max_line_bytes: int
    #: the format's name, for a worker that reads several
    format: str = ""

    @classmethod
    def of(
        cls, path: str, start: int, stop: int, options: SourceOptions, fmt: str = ""
    ) -> PieceSpec:
        return cls(
            path=path,
            start=start,
            stop=stop,
            prefilter=[(c.field, sorted(c.values)) for c in options.prefilter.conditions],
            host_name=options.host_name,
            passwd=options.passwd,
            group=options.group,
            max_line_bytes=options.max_line_bytes,
            format=fmt,
        )

    def to_json(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> PieceSpec:
        doc = orjson.loads(text)
        doc["prefilter"] = [(f, list(v)) for f, v in doc["prefilter"]]
        return cls(**doc)

    def options(self) -> SourceOptions:
        conditions = tuple(FieldCondition(f, frozenset(v)) for f, v in self.prefilter)
        return SourceOptions(
            prefilter=Prefilter(conditions),
            host_name=self.host_name,
            passwd=self.passwd,
            group=self.group,
            max_line_bytes=self.max_line_bytes,
        )


class StatsDoc(TypedDict):
    """A worker's :class:`~rarebird.errors.ReadStats` as JSON (issues as line, reason, detail)."""

    lines: int
    bytes: int
    prefiltered: int
    skipped: dict[str, int]
    issues: list[tuple[int, str, str]]


class _EventCodec:
    """msgspec's JSON codec of ProcessEvent (its dataclass as the schema, time as RFC 3339):
    about a third of the cost of building the document and the keyword call by hand, on the
    path every event of a worker takes (issue 10). Made on first use: msgspec is imported only
    by a parallel read."""

    def __init__(self) -> None:
        import msgspec

        self.encode = msgspec.json.Encoder().encode
        self.decode = msgspec.json.Decoder(ProcessEvent).decode


_CODEC: _EventCodec | None = None


def _codec() -> _EventCodec:
    global _CODEC
    if _CODEC is None:
        _CODEC = _EventCodec()
    return _CODEC


def encode_event(event: ProcessEvent) -> bytes:
    """One event as a JSON object."""
    return _codec().encode(event)


def decode_event(line: bytes, line_offset: int = 0) -> ProcessEvent:
    """The inverse of :func:`encode_event`, adding ``line_offset`` to the origin's line."""
    return _shifted(_codec().decode(line), line_offset)


def stats_doc(stats: ReadStats) -> StatsDoc:
    """A piece's counts as :func:`merge_stats` takes them (issues by line within the piece)."""
    return {
        "lines": stats.lines,
        "bytes": stats.bytes,
        "prefiltered": stats.prefiltered,
        "skipped": dict(stats.skipped),
        "issues": [(i.location.line, i.reason, i.detail) for i in stats.issues],
    }


def encode_stats(stats: ReadStats) -> bytes:
    return orjson.dumps(stats_doc(stats))


def merge_stats(stats: ReadStats, doc: StatsDoc, path: str, line_offset: int) -> None:
    stats.lines += doc["lines"]
    stats.bytes += doc["bytes"]
    stats.prefiltered += doc["prefiltered"]
    stats.skipped.update(doc["skipped"])
    for line, reason, detail in doc["issues"]:
        if len(stats.issues) < stats.max_issues:
            stats.issues.append(
                InputIssue(SourceLocation(path, line + line_offset), reason, detail)
            )


#: Pieces a file is cut into for each reading process: a piece goes to whoever is free first,
#: so that a slow reader or the job's own work does not leave the other processes idle.
PIECES_PER_WORKER = 16
#: No piece is smaller than this: each costs a reader's set-up (and, for auditd, the history
#: read before it).
MIN_PIECE_BYTES = 16 * 1024 * 1024
#: No piece is larger than this: the events of the pieces this process reads ahead are held
#: in memory (at most :data:`MAX_AHEAD` pieces: some 20,000 events at 10 % matching ECS lines),
#: so memory does not grow with the file.
MAX_PIECE_BYTES = 64 * 1024 * 1024
#: How long this process sleeps between two looks for a piece a worker is still reading.
_POLL_S = 0.002
#: Pieces this process reads ahead (and keeps) while a worker has the one it needs next.
MAX_AHEAD = 4

#: Reads one piece from its spec: its events (origins relative to the piece) and the counts,
#: complete once the events are exhausted.
ReadPiece = Callable[[str], tuple[Iterator[ProcessEvent], ReadStats]]


def plan_pieces(path: str, workers: int, min_piece: int | None = None) -> list[tuple[int, int]]:
    """The pieces ``workers`` processes read ``path`` in: :data:`PIECES_PER_WORKER` each, none
    under ``min_piece`` bytes (:data:`MIN_PIECE_BYTES`) unless that leaves fewer than
    ``workers``, and more where a piece would exceed :data:`MAX_PIECE_BYTES`."""
    size = os.path.getsize(path)
    smallest = MIN_PIECE_BYTES if min_piece is None else min_piece
    pieces = min(workers * PIECES_PER_WORKER, size // max(1, smallest))
    return split_ranges(path, max(workers, pieces, -(-size // MAX_PIECE_BYTES)))


def claim(tmp: Path, index: int) -> bool:
    """Take piece ``index`` for this process; False when another process took it first."""
    try:
        os.close(os.open(tmp / f"claim-{index}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def piece_path(tmp: Path, index: int) -> Path:
    """Where a worker leaves the events and counts of piece ``index`` (renamed there whole)."""
    return tmp / f"piece-{index}.ndjson"


def run_worker_pieces(specs_path: str, read_piece: ReadPiece) -> None:
    """A worker process: the pieces of the spec list at ``specs_path``, each one nobody has
    taken yet, in file order; each piece's events and then its counts as JSON lines, in a
    file that appears (by rename) only once it is complete."""
    tmp = Path(specs_path).parent
    specs: list[str] = orjson.loads(Path(specs_path).read_bytes())
    for index, spec in enumerate(specs):
        if index == 0 or not claim(tmp, index):
            continue
        events, stats = read_piece(spec)
        part = tmp / f"piece-{index}.part"
        with open(part, "wb") as out:
            for event in events:
                out.write(encode_event(event) + b"\n")
            out.write(encode_stats(stats) + b"\n")
        os.replace(part, piece_path(tmp, index))


def run_in_ranges(
    path: str,
    ranges: list[tuple[int, int]],
    tmp: Path,
    *,
    worker_code: str,
    spec_json: Callable[[int, int], str],
    first: Callable[[int, int], Iterator[ProcessEvent]],
    read_piece: ReadPiece,
    stats: ReadStats,
    count_events: bool,
    processes: int,
) -> Iterator[ProcessEvent]:
    """The events of ``path`` in file order: ``ranges[0]`` read here by ``first(start, stop)``
    while ``processes`` worker processes run ``worker_code`` (with the path of the list of
    ``spec_json(start, stop)`` as argument) and take the further pieces in order, one at a
    time; when this process has used every piece read so far, it takes the next one nobody
    has taken and reads it itself with ``read_piece``. Events and counts are merged in file
    order (``count_events``: add the pieces' events to ``stats.events``, for a source whose
    counts do not). A worker that fails stops the read with its last line of stderr."""
    specs_path = tmp / "pieces.json"
    specs = [spec_json(start, stop) for start, stop in ranges]
    specs_path.write_bytes(orjson.dumps(specs))
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for i in range(min(processes, len(ranges) - 1)):
            err = tmp / f"worker-{i}.stderr"
            cmd = [sys.executable, "-c", worker_code, str(specs_path)]
            with open(err, "wb") as err_file:
                procs.append((subprocess.Popen(cmd, stderr=err_file), err))
        yield from first(*ranges[0])
        #: pieces this process read ahead while a worker still had an earlier one
        ahead: dict[int, tuple[list[ProcessEvent], ReadStats]] = {}
        pace = _Pace()
        for index in range(1, len(ranges)):
            lines_before = stats.lines
            if index in ahead or claim(tmp, index):
                if index in ahead:
                    events, piece_stats = ahead.pop(index)
                    piece: Iterator[ProcessEvent] = iter(events)
                else:
                    piece, piece_stats = read_piece(specs[index])
                for event in piece:
                    if count_events:
                        stats.events += 1
                    yield _shifted(event, lines_before)
                merge_stats(stats, stats_doc(piece_stats), path, lines_before)
                continue
            # A worker has the piece: until it is done, read a later piece nobody has taken
            # (kept here, a few at most) when that shortens the whole read.
            done = piece_path(tmp, index)
            while not done.exists():
                _check_workers(procs, path, done)
                free = _first_unclaimed(tmp, index + 1, len(ranges))
                if (
                    free < len(ranges)
                    and len(ahead) < MAX_AHEAD
                    and pace.worth_reading(len(ranges) - free, len(ranges) - index, len(procs))
                    and claim(tmp, free)
                ):
                    started = time.perf_counter()
                    events_ahead, stats_ahead = read_piece(specs[free])
                    ahead[free] = (list(events_ahead), stats_ahead)
                    pace.read(time.perf_counter() - started)
                else:
                    time.sleep(_POLL_S)
            started = time.perf_counter()
            with open(done, "rb") as rows:
                last = b""
                for row in rows:
                    if last:
                        if count_events:
                            stats.events += 1
                        yield decode_event(last, lines_before)
                    last = row
            merge_stats(stats, orjson.loads(last), path, lines_before)
            done.unlink()  # the disk space of a piece used
            pace.used(time.perf_counter() - started)
    finally:
        for proc, _err in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@dataclass
class _Pace:
    """How long this process takes to read a piece, and to use one read by a worker (the
    events decoded and the job's work on them, done as they are taken)."""

    read_s: float = 0.0
    read_n: int = 0
    use_s: float = 0.0
    use_n: int = 0

    def read(self, seconds: float) -> None:
        self.read_s += seconds
        self.read_n += 1

    def used(self, seconds: float) -> None:
        self.use_s += seconds
        self.use_n += 1

    def worth_reading(self, unclaimed: int, unused: int, processes: int) -> bool:
        """Whether reading one more piece here ends the read sooner: the workers' reading
        left (``unclaimed`` pieces) must outlast this process's own work left (using
        ``unused`` pieces) with that piece added. Yes until both paces are known."""
        if not self.read_n or not self.use_n:
            return True
        read = self.read_s / self.read_n
        use = self.use_s / self.use_n
        return unclaimed * read / max(1, processes) > unused * use + read


def _first_unclaimed(tmp: Path, start: int, end: int) -> int:
    """The first piece from ``start`` that no process has taken (``end`` when none)."""
    while start < end and (tmp / f"claim-{start}").exists():
        start += 1
    return start


def _check_workers(
    procs: list[tuple[subprocess.Popen[bytes], Path]], path: str, done: Path
) -> None:
    """Raise InputError with a failed worker's last line of stderr, or when every worker has
    ended and ``done`` was not written."""
    for proc, err in procs:
        if proc.poll() not in (None, 0):
            tail = err.read_text(errors="replace").strip().splitlines()[-1:] or ["?"]
            raise InputError(path, f"worker process failed: {tail[0]}")
    if all(proc.poll() is not None for proc, _err in procs) and not done.exists():
        raise InputError(path, f"worker processes ended without {done.name}")


def _shifted(event: ProcessEvent, lines_before: int) -> ProcessEvent:
    """``event`` with its origin's line counted from the file's start, not its piece's.

    The event was just made by a piece's reader or decoder and nothing else holds it yet: its
    origin is set in place, as a frozen dataclass's own ``__init__`` does, instead of copying
    forty fields with ``dataclasses.replace`` for every event."""
    origin = event.origin
    if origin is not None and lines_before:
        object.__setattr__(event, "origin", SourceLocation(origin.path, origin.line + lines_before))
    return event
