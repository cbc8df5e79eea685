"""Datafeed definitions, read from Elastic's datafeed JSON as published."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from rarebird.datafeed.query import CompiledQuery, compile_query
from rarebird.definitions._common import packaged_path, read_json_file
from rarebird.definitions.reader import Reader
from rarebird.errors import QueryError

DEFAULT_DATAFEED_FILE = "datafeed_v3_linux_network_connection_discovery.json"
EA_DATAFEED_FILE = "datafeed_v3_linux_network_connection_discovery_ea.json"

_KEYS = frozenset(
    {
        "datafeed_id", "job_id", "indices", "indexes", "query", "frequency", "query_delay",
        "scroll_size", "chunking_config", "delayed_data_check_config", "max_empty_searches",
        "indices_options", "runtime_mappings", "script_fields", "aggregations", "aggs",
    }
)  # fmt: skip
_UNSUPPORTED = {
    "aggregations": "datafeeds with aggregations are not supported",
    "aggs": "datafeeds with aggregations are not supported",
    "script_fields": "script_fields are not supported",
    "runtime_mappings": "runtime_mappings are not supported",
}


def default_frequency(bucket_span: timedelta) -> timedelta:
    """Elastic's default datafeed frequency for a bucket span (``DefaultFrequency``).

    <= 2 min: the bucket span; <= 20 min: 1 min; <= 12 h: 10 min; else 1 h.

    >>> default_frequency(timedelta(minutes=15))
    datetime.timedelta(seconds=60)
    """
    s = bucket_span.total_seconds()
    if s <= 120:
        return bucket_span
    if s <= 1200:
        return timedelta(minutes=1)
    if s <= 12 * 3600:
        return timedelta(minutes=10)
    return timedelta(hours=1)


def default_query_delay(job_id: str) -> timedelta:
    """A stable per-job query delay between 60 s and 120 s, as Elastic picks one per datafeed.

    Elastic draws it at random once, when the datafeed is created; rarebird derives it from the
    job id so that a replay is repeatable.
    """
    digest = hashlib.sha256(job_id.encode()).digest()
    return timedelta(milliseconds=60_000 + int.from_bytes(digest[:4], "big") % 60_000)


@dataclass(frozen=True)
class DatafeedConfig:
    """A datafeed: which documents feed the job, and how often it searches."""

    query: CompiledQuery
    frequency: timedelta | None = None
    query_delay: timedelta | None = None
    max_empty_searches: int | None = None
    indices: tuple[str, ...] = ()
    job_id: str | None = None
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def frequency_for(self, bucket_span: timedelta) -> timedelta:
        return self.frequency or default_frequency(bucket_span)

    def query_delay_for(self, job_id: str) -> timedelta:
        return self.query_delay if self.query_delay is not None else default_query_delay(job_id)


def load_datafeed(path: str | None = None) -> DatafeedConfig:
    """Load a datafeed JSON file; ``None`` loads the packaged default."""
    path = path or packaged_path(DEFAULT_DATAFEED_FILE)
    return datafeed_from_dict(read_json_file(path), path)


def datafeed_from_dict(doc: dict[str, Any], path: str = "<datafeed>") -> DatafeedConfig:
    top = Reader(path, doc)
    top.check_keys(_KEYS, _UNSUPPORTED)
    query_doc = top.raw("query")
    if query_doc is not None and not isinstance(query_doc, dict):
        raise top.fail("query", "expected a query object")
    try:
        compiled = compile_query(query_doc or {"match_all": {}})
    except QueryError as exc:
        raise top.fail("query", str(exc)) from None
    query_delay = top.duration("query_delay", allow_zero=True)
    frequency = top.duration("frequency")
    if frequency is not None and frequency < timedelta(seconds=1):
        raise top.fail(
            "frequency", "must be at least 1s (the datafeed searches at most once a second)"
        )
    mes = top.integer("max_empty_searches")
    return DatafeedConfig(
        query=compiled,
        frequency=frequency,
        query_delay=query_delay,
        max_empty_searches=mes,
        indices=top.str_list("indices") or top.str_list("indexes"),
        job_id=top.string("job_id"),
        source=path,
        raw=doc,
    )
