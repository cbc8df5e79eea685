"""Reading one large file with several processes, one byte range each: the parts every format
shares (:mod:`rarebird.sources.auditd.parallel`, :mod:`rarebird.sources.ecs.parallel`).

The file is cut at line boundaries; worker processes send their events and counts back as JSON
lines in a temporary file (no pickle); line numbers are relative to the range and fixed up by
the reading process once the lines of the earlier ranges are known.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

import orjson

from rarebird.errors import InputError, InputIssue, ReadStats
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources.base import JsonObject

#: ``--workers auto`` never starts more worker processes than this for one file
MAX_AUTO_WORKERS = 8

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SKIP = frozenset({"timestamp", "origin", "extra"})


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


class StatsDoc(TypedDict):
    """A worker's :class:`~rarebird.errors.ReadStats` as JSON (issues as line, reason, detail)."""

    lines: int
    bytes: int
    prefiltered: int
    skipped: dict[str, int]
    issues: list[tuple[int, str, str]]


def encode_event(event: ProcessEvent) -> bytes:
    """One event as a JSON object (typed attributes that are set, time in microseconds)."""
    doc: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        if f.name in _SKIP:
            continue
        value = getattr(event, f.name)
        if value is None or value == ():
            continue
        doc[f.name] = list(value) if isinstance(value, tuple) else value
    delta = event.timestamp - _EPOCH
    doc["timestamp"] = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    doc["extra"] = {k: list(v) for k, v in event.extra.items()}
    if event.origin is not None:
        doc["origin"] = [event.origin.path, event.origin.line]
    return orjson.dumps(doc)


def decode_event(doc: JsonObject, line_offset: int = 0) -> ProcessEvent:
    """The inverse of :func:`encode_event`, adding ``line_offset`` to the origin's line."""
    kwargs: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "timestamp":
            kwargs[key] = _EPOCH + timedelta(microseconds=value)
        elif key == "extra":
            kwargs[key] = {k: tuple(v) for k, v in value.items()}
        elif key == "origin":
            kwargs[key] = SourceLocation(value[0], value[1] + line_offset)
        else:
            kwargs[key] = tuple(value) if isinstance(value, list) else value
    return ProcessEvent(**kwargs)


def encode_stats(stats: ReadStats) -> bytes:
    doc: StatsDoc = {
        "lines": stats.lines,
        "bytes": stats.bytes,
        "prefiltered": stats.prefiltered,
        "skipped": dict(stats.skipped),
        "issues": [(i.location.line, i.reason, i.detail) for i in stats.issues],
    }
    return orjson.dumps(doc)


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


def run_in_ranges(
    path: str,
    ranges: list[tuple[int, int]],
    tmp: Path,
    *,
    worker_code: str,
    spec_json: Callable[[int, int, str], str],
    first: Callable[[int, int], Iterator[ProcessEvent]],
    stats: ReadStats,
    count_events: bool,
) -> Iterator[ProcessEvent]:
    """The events of ``path`` in file order: ``ranges[0]`` read here by ``first(start, stop)``
    while one process a further range runs ``worker_code`` with ``spec_json(start, stop,
    out_path)`` as its argument; their events and counts are merged in range order
    (``count_events``: add the workers' events to ``stats.events``, for a source whose counts
    do not). A worker that fails stops the read with its last line of stderr."""
    procs: list[tuple[subprocess.Popen[bytes], Path, Path]] = []
    try:
        for i, (start, stop) in enumerate(ranges[1:], 1):
            out, err = tmp / f"range-{i}.ndjson", tmp / f"range-{i}.stderr"
            cmd = [sys.executable, "-c", worker_code, spec_json(start, stop, str(out))]
            with open(err, "wb") as err_file:
                procs.append((subprocess.Popen(cmd, stderr=err_file), out, err))
        yield from first(*ranges[0])
        for proc, out, err in procs:
            lines_before = stats.lines
            if proc.wait() != 0:
                tail = err.read_text(errors="replace").strip().splitlines()[-1:] or ["?"]
                raise InputError(path, f"worker process failed: {tail[0]}")
            with open(out, "rb") as rows:
                last = b""
                for row in rows:
                    if last:
                        if count_events:
                            stats.events += 1
                        yield decode_event(orjson.loads(last), lines_before)
                    last = row
            merge_stats(stats, orjson.loads(last), path, lines_before)
    finally:
        for proc, _out, _err in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
