"""The worker process of a parallel ECS read (:mod:`.parallel`): pieces of the file, each
piece's events and then its counts written as JSON lines. Its own module so that the parallel
scan and the reader do not import each other."""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from rarebird.errors import ReadStats
from rarebird.events import ProcessEvent
from rarebird.sources.base import FieldCondition, Prefilter, SourceOptions
from rarebird.sources.ecs.parallel import RangeStream
from rarebird.sources.ecs.reader import EcsSource
from rarebird.sources.ranges import run_worker_pieces


class PieceReader:
    """Reads pieces of one file described by JSON specs with one reader, so that its set-up
    (the quick lane, the choice of search) is made once per process, not once per piece."""

    def __init__(self) -> None:
        self._source: EcsSource | None = None

    def __call__(self, spec_json: str) -> tuple[Iterator[ProcessEvent], ReadStats]:
        doc = orjson.loads(spec_json)
        source = self._source
        if source is None:
            conditions = tuple(FieldCondition(f, frozenset(v)) for f, v in doc["prefilter"])
            options = SourceOptions(
                prefilter=Prefilter(conditions),
                fields=frozenset(doc["fields"]) if doc["fields"] is not None else None,
                max_line_bytes=doc["max_line_bytes"],
            )
            source = self._source = EcsSource(
                doc["path"],
                options,
                chunk_bytes=doc["chunk_bytes"],
                search=doc["search"],
                lane=doc["lane"],
            )
        stats = source.count_anew()
        stream = RangeStream(doc["path"], doc["start"], doc["stop"])
        return source.read_ndjson(stream, at_start=False), stats


def run_worker(specs_path: str) -> None:
    """A worker process: the pieces listed at ``specs_path`` that nobody else has taken."""
    run_worker_pieces(specs_path, PieceReader())
