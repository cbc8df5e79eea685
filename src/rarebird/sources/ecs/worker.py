"""The worker process of a parallel ECS read (:mod:`.parallel`): one byte range of the file,
its events and then its counts written as JSON lines. Its own module so that the parallel scan
and the reader do not import each other."""

from __future__ import annotations

import orjson

from rarebird.sources.base import FieldCondition, Prefilter, SourceOptions
from rarebird.sources.ecs.parallel import RangeStream
from rarebird.sources.ecs.reader import EcsSource
from rarebird.sources.ranges import encode_event, encode_stats


def run_worker(spec_json: str) -> None:
    """A worker process: read one range, write its events and then its counts as JSON lines."""
    doc = orjson.loads(spec_json)
    conditions = tuple(FieldCondition(f, frozenset(v)) for f, v in doc["prefilter"])
    options = SourceOptions(
        prefilter=Prefilter(conditions),
        fields=frozenset(doc["fields"]) if doc["fields"] is not None else None,
        max_line_bytes=doc["max_line_bytes"],
    )
    source = EcsSource(
        doc["path"],
        options,
        chunk_bytes=doc["chunk_bytes"],
        search=doc["search"],
        lane=doc["lane"],
    )
    with open(doc["out"], "wb") as out:
        stream = RangeStream(doc["path"], doc["start"], doc["stop"])
        for event in source.read_ndjson(stream, at_start=False):
            out.write(encode_event(event) + b"\n")
        out.write(encode_stats(source.stats) + b"\n")
