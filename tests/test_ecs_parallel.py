"""``--workers`` on one large ECS NDJSON file: the events and counts of one process.

Worker processes read byte ranges of the file (cut at line ends) with the same prefilter and
fields; their events are taken in file order with line numbers fixed up. Bad lines, blank and
CRLF lines, a NUL byte and escaped values sit across the range boundaries.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from rarebird.definitions.datafeed import load_datafeed
from rarebird.errors import InputError
from rarebird.sources import SourceOptions, ranges
from rarebird.sources.ecs import EcsSource
from rarebird.sources.ecs import parallel as ecs_parallel
from rarebird.sources.ranges import plan_pieces

FEED = load_datafeed().query.prefilter
FIELDS = frozenset({"user.name", "process.name", "event.type", "host.os.type", "host.name"})


def line(rng: random.Random, i: int) -> bytes:
    name = rng.choice(["ss", "netstat", "sshd", "route", "bash", "showmount", "ip"])
    doc = {
        "@timestamp": f"2026-01-05T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
        "event": {"type": [rng.choice(["start", "end"])], "category": ["process"]},
        "host": {"name": f"h{i % 4}", "os": {"type": "linux"}},
        "process": {"name": name, "args": [name, "-a"], "parent": {"name": "ss"}},
        "user": {"name": f"u{i % 9}"},
    }
    text = json.dumps(doc).encode()
    r = rng.random()
    if r < 0.03:
        return b'{"broken": '
    if r < 0.05:
        return b""
    if r < 0.07:
        return text + b"\r"
    if r < 0.08:
        return text.replace(b'"name": "ss"', b'"name": "\\u0073s"')
    if r < 0.085:
        return text.replace(b"category", b"cat\x00egory")
    return text


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(4)
    path = tmp_path_factory.mktemp("ecs") / "fleet.ndjson"
    path.write_bytes(b"\n".join(line(rng, i) for i in range(4000)) + b"\n")
    return path


def read(path: Path, workers: int, fields: frozenset[str] | None) -> tuple[object, ...]:
    extra = {"workers": str(workers)} if workers > 1 else {}
    src = EcsSource(
        str(path), SourceOptions(prefilter=FEED, fields=fields, extra=extra), chunk_bytes=4096
    )
    events = list(src)
    s = src.stats
    issues = [(str(i.location), i.reason) for i in s.issues]
    return events, issues, s.lines, s.bytes, s.prefiltered, s.events, dict(s.skipped)


@pytest.mark.parametrize("fields", [FIELDS, None], ids=["lane", "whole-documents"])
def test_workers_give_the_events_and_counts_of_one_process(
    big: Path, monkeypatch: pytest.MonkeyPatch, fields: frozenset[str] | None
) -> None:
    one = read(big, 1, fields)
    monkeypatch.setattr(ecs_parallel, "PARALLEL_MIN_BYTES", 0)
    pieces: list[int] = []

    def spy(path: str, workers: int, min_piece: int | None = None) -> list[tuple[int, int]]:
        out = plan_pieces(path, workers, min_piece)
        pieces.append(len(out))
        return out

    monkeypatch.setattr(ecs_parallel, "plan_pieces", spy)
    three = read(big, 3, fields)
    assert pieces == [3]  # a small file: one piece for each process
    assert three == one
    assert len(one[0]) > 500  # type: ignore[arg-type]
    assert len(one[1]) > 50  # type: ignore[arg-type]

    # Many pieces: each goes to whoever is free first, bad lines sit across many boundaries.
    monkeypatch.setattr(ranges, "MIN_PIECE_BYTES", 16 * 1024)
    assert read(big, 2, fields) == one
    assert pieces[-1] == 32  # 16 a process
    # The workers take nothing (they start and end): this process reads every piece itself.
    monkeypatch.setattr(ecs_parallel, "WORKER_CODE", "pass")
    assert read(big, 2, fields) == one


def test_pieces_read_ahead_while_a_worker_has_the_next_one_keep_the_file_order(
    big: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = read(big, 1, FIELDS)
    monkeypatch.setattr(ecs_parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(ranges, "MIN_PIECE_BYTES", 16 * 1024)
    # this process may not take the second piece: it waits for the worker's, reading later
    # pieces meanwhile, and must still give every event in file order
    taken = ranges.claim
    waited: list[int] = []

    def claim(tmp: Path, index: int) -> bool:
        if index == 1:
            waited.append(index)
            return False
        return taken(tmp, index)

    monkeypatch.setattr(ranges, "claim", claim)
    assert read(big, 2, FIELDS) == one
    assert waited == [1]


def test_a_worker_that_fails_stops_the_read_with_its_message(
    big: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ecs_parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(ranges, "MIN_PIECE_BYTES", 16 * 1024)
    # the worker has taken the second piece (this process may not) and fails on it
    taken = ranges.claim
    monkeypatch.setattr(ranges, "claim", lambda tmp, index: index != 1 and taken(tmp, index))
    monkeypatch.setattr(ecs_parallel, "WORKER_CODE", "import sys; sys.exit('disk on fire')")
    with pytest.raises(InputError, match="worker process failed: disk on fire"):
        read(big, 2, FIELDS)


def test_small_or_compressed_files_are_read_by_one_process(
    big: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = EcsSource(str(big), SourceOptions(prefilter=FEED, extra={"workers": "2"}))
    assert not ecs_parallel.can_split(src, str(big))  # under 64 MiB
    monkeypatch.setattr(ecs_parallel, "PARALLEL_MIN_BYTES", 0)
    assert ecs_parallel.can_split(src, str(big))
    import gzip

    gz = tmp_path / "fleet.ndjson.gz"
    gz.write_bytes(gzip.compress(big.read_bytes()))
    assert not ecs_parallel.can_split(src, str(gz))
    keep_all = EcsSource(str(big), SourceOptions(extra={"workers": "2"}))
    assert not ecs_parallel.can_split(keep_all, str(big))  # no prefilter: every line parsed
