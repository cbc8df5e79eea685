"""One process: the parts of ``rarebird job run --workers 1`` over one file, each timed alone.

Run by ``bench/floor.py`` (which runs it several times beside grep and the whole command);
prints one JSON object of seconds. The parts, in the order a ``job run`` meets them:

- ``imports``: the command's modules, the reader's, NumPy and SciPy (``job run`` imports
  SciPy at its first score; it is counted here so that every part below runs warm);
- ``read``: the file's bytes into a buffer of the reader's size (``readinto``), nothing else;
- ``search``: the bytes read and searched by the reader's own search (the literals of ECS, the
  ``exe=`` fields of auditd, as ``auto`` picks it), with no line walk, no parsing, no event;
- ``reader``: the reader as ``job run --workers 1`` opens it, all of it (search, lines,
  parsing, events);
- ``job``: the anomaly job fed those events (buckets scored and learnt);
- ``store``: its results, kept events and state written to a new SQLite store;
- ``together``: the reader and the job again, each event fed as it is read (as ``job run``
  does): what interleaving them costs beyond the two alone (caches, the collector).

    python bench/_floor_parts.py ecs|auditd FILE
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

T0 = time.perf_counter()

# imported after T0 on purpose (hence the E402s): their time is the "imports" part
import scipy.special  # noqa: E402,F401

import rarebird.cli.job  # noqa: E402,F401  (the command's own imports)
from rarebird.definitions import load_datafeed, load_job  # noqa: E402
from rarebird.events import ProcessEvent  # noqa: E402
from rarebird.job import AnomalyJob  # noqa: E402
from rarebird.run.replay import InputOptions, open_inputs  # noqa: E402
from rarebird.sources.auditd.exe_search import exe_needle, exe_search  # noqa: E402
from rarebird.sources.auditd.scan import CHUNK  # noqa: E402
from rarebird.sources.ecs.reader import CHUNK_BYTES, EcsSource  # noqa: E402
from rarebird.store.jobs import save_job  # noqa: E402
from rarebird.store.sqlite import open_store  # noqa: E402

IMPORTED = time.perf_counter()


def read_only(path: str, size: int) -> int:
    buf = bytearray(size)
    view = memoryview(buf)
    total = 0
    with open(path, "rb", buffering=0) as f:
        while got := f.readinto(view):
            total += got
    return total


def ecs_search_only(path: str) -> int:
    """The ECS reader with its chunk step cut to the literal search: its own reading, its
    choice of search on the first chunk, then only ``_search`` per chunk."""
    options = InputOptions().source_options(load_job(), load_datafeed())
    source = EcsSource(path, options)
    found = 0

    def search_only(chunk, n, lineno, primary):  # type: ignore[no-untyped-def]
        nonlocal found
        (hits,), _ = source._search(chunk, n, (primary,))
        found += len(hits)
        return lineno
        yield  # a generator, as the method it stands for

    source._scan_chunk = search_only  # type: ignore[method-assign]
    for _ in source:
        pass
    return found


def auditd_search_only(path: str) -> int:
    """The ``exe=`` search of the auditd fast path (Hyperscan or the regular expression, as
    ``auto`` picks) over every buffer of whole lines, the matches taken; nothing else."""
    prefilter = InputOptions().source_options(load_job(), load_datafeed()).prefilter
    needle = exe_needle(prefilter)
    assert needle is not None
    search = exe_search(prefilter, needle)
    find = search.finditer if search is not None else needle.finditer
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    filled = 0
    found = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            got = f.readinto(view[filled:])
            filled += got
            end = filled if not got else buf.rfind(b"\n", 0, filled) + 1
            found += sum(1 for _ in find(buf, 0, end))
            if not got:
                return found
            buf[: filled - end] = buf[end:filled]
            filled -= end


def main() -> int:
    fmt, path = sys.argv[1], sys.argv[2]
    out: dict[str, float | int] = {"imports": IMPORTED - T0}

    t = time.perf_counter()
    out["bytes"] = read_only(path, CHUNK_BYTES if fmt == "ecs" else CHUNK)
    out["read"] = time.perf_counter() - t

    t = time.perf_counter()
    out["hits"] = ecs_search_only(path) if fmt == "ecs" else auditd_search_only(path)
    out["search"] = time.perf_counter() - t

    t = time.perf_counter()
    sources = open_inputs([path], InputOptions(format=fmt), load_job(), load_datafeed())
    events: list[ProcessEvent] = [event for source in sources for event in source]
    out["reader"] = time.perf_counter() - t
    out["events"] = len(events)

    t = time.perf_counter()
    job = AnomalyJob(load_job())
    for event in events:
        job.feed(event)
    job.finish()
    out["job"] = time.perf_counter() - t
    out["buckets"] = job.stats.bucket_count

    with tempfile.TemporaryDirectory(prefix="rarebird-floor-") as tmp:
        t = time.perf_counter()
        store = open_store(str(Path(tmp) / "floor.db"))
        save_job(store, job)
        store.close()
        out["store"] = time.perf_counter() - t
    del events, job
    t = time.perf_counter()
    sources = open_inputs([path], InputOptions(format=fmt), load_job(), load_datafeed())
    job = AnomalyJob(load_job())
    for source in sources:
        for event in source:
            job.feed(event)
    job.finish()
    out["together"] = time.perf_counter() - t
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
