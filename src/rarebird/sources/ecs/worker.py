"""The worker process of a parallel ECS read (:mod:`.parallel`): pieces of the file, each
piece's events and then its counts written as JSON lines. Its own module so that the parallel
scan and the reader do not import each other."""

from __future__ import annotations

from rarebird.sources.ecs.reader import PieceReader
from rarebird.sources.ranges import run_worker_pieces


def run_worker(specs_path: str) -> None:
    """A worker process: the pieces listed at ``specs_path`` that nobody else has taken."""
    run_worker_pieces(specs_path, PieceReader())
