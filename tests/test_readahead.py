"""Events read ahead of the job (:mod:`rarebird.run.readahead`): the same events in the same
order, those read before a failing input handed over before its error, and no reading ahead of
an input that is written while it is read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rarebird.run.readahead import READ_AHEAD, read_ahead
from rarebird.run.replay import _ahead
from rarebird.sources import SourceOptions, open_source


class Broken(Exception):
    pass


def _fails_after(n: int) -> Iterator[int]:
    yield from range(n)
    raise Broken


@pytest.mark.parametrize("size", [1, 3, 4, 100])
def test_the_same_items_in_the_same_order(size: int) -> None:
    batches = list(read_ahead(range(10), size))
    assert [x for batch in batches for x in batch] == list(range(10))
    assert all(len(batch) == size for batch in batches[:-1])
    assert 1 <= len(batches[-1]) <= size


def _take(n: int, size: int) -> list[int]:
    """Every item handed over by ``read_ahead`` of an input failing after ``n`` items."""
    seen: list[int] = []

    def consume() -> None:
        for batch in read_ahead(_fails_after(n), size):
            seen.extend(batch)

    with pytest.raises(Broken):
        consume()
    return seen


def test_items_read_before_a_failure_are_handed_over_then_the_error_raised() -> None:
    assert _take(10, 4) == list(range(10))  # 0-3, 4-7, then 8 and 9 before the error


def test_a_failure_on_a_batch_boundary_loses_nothing() -> None:
    assert _take(8, 4) == list(range(8))


def test_files_are_read_ahead_and_fifos_are_not(tmp_path: Path) -> None:
    log = tmp_path / "events.ndjson"
    log.write_text("")
    fifo = tmp_path / "live.fifo"
    os.mkfifo(fifo)
    file_source = open_source(str(log), "ecs", SourceOptions())
    assert _ahead([file_source]) == READ_AHEAD
    fifo_source = open_source(str(fifo), "ecs", SourceOptions())
    assert _ahead([file_source, fifo_source]) == 1
