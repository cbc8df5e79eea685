"""The Elasticsearch source: ``es+https://HOST:9200/INDEX-PATTERN`` read as Elastic's datafeed
reads it (connection, credentials and TLS in :mod:`rarebird.sources.es_client`).

**The searches** follow the datafeed's (``x-pack/plugin/ml/.../datafeed/extractor/chunked/
ChunkedDataExtractor.java``), with a point in time instead of a scroll:

1. *Data summary*: ``size: 0`` with ``min`` / ``max`` aggregations on the time field over the
   datafeed's query restricted to ``[start, end)`` (``bool.filter: [query, range]``, the range
   in ``epoch_millis``), and the total hits.
2. *Chunks*: from the earliest document to ``end`` in spans of ``chunking_config.time_span``
   (``manual``), or, in Elastic's ``auto`` mode, ``10 * scroll_size * (latest - earliest) /
   total hits`` and at least one minute; ``off``: one chunk. A chunk that finds nothing triggers
   a new summary from there, to jump over gaps.
3. *Pages*: per chunk a point in time (``POST /INDEX/_pit?keep_alive=1m``), then searches of
   ``scroll_size`` hits sorted on the time field with the ``_shard_doc`` tiebreaker, each next
   page ``search_after`` the last hit's ``sort``, ``_source`` projected to the fields the job
   needs (the datafeed query's, the detector's, the influencers', the time field), and the point
   in time closed at the end (``DELETE /_pit``).

``end`` defaults to ``now - query_delay`` (the datafeed never searches the last ``query_delay``:
documents are still arriving); ``start`` and ``end`` may be given in the spec (``?start=7d``).
A search with failed shards or that timed out is an error (:class:`~rarebird.errors.InputError`
naming the shards' reasons), as Elastic's datafeed treats it, never partial data taken silently.
Each hit becomes a :class:`~rarebird.events.ProcessEvent` through the ECS document walker; a hit
that cannot (no ``@timestamp``) is counted with its ``index/_id``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any

import orjson

from rarebird.clock import SYSTEM_CLOCK, Clock
from rarebird.errors import InputError, ReadStats
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources.base import SourceOptions
from rarebird.sources.ecs import DocumentError, event_from_document
from rarebird.sources.ecs.documents import Wanted
from rarebird.sources.es_client import ElasticError, ElasticTarget, describe_error, make_client
from rarebird.timeutil import iso, parse_time, to_epoch_ms

#: Elastic's datafeed default ``scroll_size``
DEFAULT_SCROLL_SIZE = 1000
#: ``ChunkedDataExtractor.MIN_CHUNK_SPAN``: one minute
MIN_CHUNK_SPAN_MS = 60_000
PIT_KEEP_ALIVE = "1m"


@dataclass(frozen=True)
class SearchPlan:
    """How the datafeed searches: its query and paging, and the fields the job needs."""

    query: Mapping[str, Any]
    time_field: str = "@timestamp"
    scroll_size: int = DEFAULT_SCROLL_SIZE
    #: ``auto``, ``manual`` (``time_span_ms``) or ``off``
    chunking: str = "auto"
    time_span_ms: int | None = None
    query_delay: timedelta = timedelta(0)
    #: ``_source`` includes (None: the whole document)
    fields: tuple[str, ...] | None = None

    @classmethod
    def from_datafeed(
        cls,
        datafeed: Mapping[str, Any],
        *,
        time_field: str,
        query_delay: timedelta,
        fields: frozenset[str] | None,
    ) -> SearchPlan:
        """The plan of a datafeed JSON (``query``, ``scroll_size``, ``chunking_config``)."""
        scroll = datafeed.get("scroll_size", DEFAULT_SCROLL_SIZE)
        if isinstance(scroll, bool) or not isinstance(scroll, int) or not 1 <= scroll <= 10_000:
            raise ElasticError(f"datafeed scroll_size: expected 1 to 10000, got {scroll!r}")
        chunking = datafeed.get("chunking_config") or {"mode": "auto"}
        mode = chunking.get("mode", "auto")
        if mode not in ("auto", "manual", "off"):
            raise ElasticError(f"datafeed chunking_config.mode: unknown mode {mode!r}")
        span_ms = None
        if mode == "manual":
            from rarebird.timeutil import parse_duration

            try:
                span_ms = int(parse_duration(str(chunking.get("time_span"))).total_seconds() * 1000)
            except ValueError as exc:
                raise ElasticError(f"datafeed chunking_config.time_span: {exc}") from None
        wanted = None if fields is None else tuple(sorted(set(fields) | {time_field}))
        return cls(
            query=datafeed.get("query") or {"match_all": {}},
            time_field=time_field,
            scroll_size=scroll,
            chunking=mode,
            time_span_ms=span_ms,
            query_delay=query_delay,
            fields=wanted,
        )

    def ranged(self, start_ms: int, end_ms: int) -> dict[str, Any]:
        """The datafeed's query restricted to ``[start, end)``, as the datafeed wraps it."""
        return {
            "bool": {
                "filter": [
                    dict(self.query),
                    {
                        "range": {
                            self.time_field: {
                                "gte": start_ms,
                                "lt": end_ms,
                                "format": "epoch_millis",
                            }
                        }
                    },
                ]  # fmt: skip
            }
        }

    def page_body(self, pit: str, start_ms: int, end_ms: int, after: list[Any] | None) -> dict[str, Any]:  # fmt: skip
        body: dict[str, Any] = {
            "size": self.scroll_size,
            "query": self.ranged(start_ms, end_ms),
            "sort": [{self.time_field: {"order": "asc"}}, {"_shard_doc": "asc"}],
            "pit": {"id": pit, "keep_alive": PIT_KEEP_ALIVE},
            "track_total_hits": False,
        }
        if self.fields is not None:
            body["_source"] = list(self.fields)
        if after is not None:
            body["search_after"] = after
        return body

    def summary_body(self, start_ms: int, end_ms: int) -> dict[str, Any]:
        return {
            "size": 0,
            "query": self.ranged(start_ms, end_ms),
            "track_total_hits": True,
            "aggs": {"earliest_time": {"min": {"field": self.time_field}},
                     "latest_time": {"max": {"field": self.time_field}}},
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class DataSummary:
    total: int
    earliest_ms: int
    latest_ms: int

    def estimate_chunk_ms(self, scroll_size: int, remaining_ms: int) -> int:
        """Elastic's auto chunk: ~10 pages of documents per chunk, at least a minute."""
        spread = self.latest_ms - self.earliest_ms
        if self.total <= 0 or spread <= 0:
            return remaining_ms
        return max(10 * scroll_size * spread // self.total, MIN_CHUNK_SPAN_MS)


class ElasticSearcher:
    """The searches of :mod:`this module <rarebird.sources.elasticsearch>` on one index pattern,
    used by the replay source and by ``serve``'s follower."""

    def __init__(self, target: ElasticTarget, plan: SearchPlan, *, client: Any = None) -> None:
        self.target = target
        self.plan = plan
        self._client = client
        self.searches = 0

    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.target)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        try:
            resp = fn(**kwargs)
        except ElasticError:
            raise
        except Exception as exc:  # the client's API and transport errors
            raise InputError(self.target.display, f"{what}: {describe_error(exc)}") from None
        body = getattr(resp, "body", resp)
        return body if isinstance(body, dict) else {}

    def _checked(self, what: str, body: dict[str, Any]) -> dict[str, Any]:
        shards = body.get("_shards") or {}
        if shards.get("failed"):
            reasons = sorted({
                f"{f.get('index', '?')}[{f.get('shard', '?')}]: "
                f"{(f.get('reason') or {}).get('type', '')}: {(f.get('reason') or {}).get('reason', '')}"
                for f in shards.get("failures") or []
            })  # fmt: skip
            raise InputError(self.target.display, f"{what}: {shards['failed']} of "
                             f"{shards.get('total', '?')} shards failed ({'; '.join(reasons)})")  # fmt: skip
        if body.get("timed_out"):
            raise InputError(self.target.display, f"{what}: the search timed out")
        return body

    def summary(self, start_ms: int, end_ms: int) -> DataSummary:
        what = f"data summary [{iso_ms(start_ms)}, {iso_ms(end_ms)})"
        body = self._checked(what, self._call(
            what, self.client().search, index=self.target.index,
            **_body_kwargs(self.plan.summary_body(start_ms, end_ms)),
        ))  # fmt: skip
        self.searches += 1
        total = int(((body.get("hits") or {}).get("total") or {}).get("value", 0))
        aggs = body.get("aggregations") or {}
        earliest = (aggs.get("earliest_time") or {}).get("value")
        latest = (aggs.get("latest_time") or {}).get("value")
        if not total or earliest is None or latest is None:
            return DataSummary(0, end_ms, end_ms)
        return DataSummary(total, int(earliest), int(latest))

    def hits(self, start_ms: int, end_ms: int) -> Iterator[dict[str, Any]]:
        """Every hit in ``[start, end)``, in time order, page by page under one point in time."""
        client = self.client()
        opened = self._call("open point in time", client.open_point_in_time,
                            index=self.target.index, keep_alive=PIT_KEEP_ALIVE)  # fmt: skip
        pit = str(opened.get("id"))
        try:
            after: list[Any] | None = None
            while True:
                what = f"search [{iso_ms(start_ms)}, {iso_ms(end_ms)})"
                body = self._checked(what, self._call(
                    what, client.search, **_body_kwargs(self.plan.page_body(pit, start_ms, end_ms, after)),
                ))  # fmt: skip
                self.searches += 1
                pit = str(body.get("pit_id") or pit)
                page = (body.get("hits") or {}).get("hits") or []
                yield from page
                if len(page) < self.plan.scroll_size:
                    return
                after = page[-1].get("sort")
        finally:
            with contextlib.suppress(Exception):  # an expired point in time needs no closing
                client.close_point_in_time(id=pit)

    def chunks(self, start_ms: int | None, end_ms: int) -> Iterator[dict[str, Any]]:
        """Every hit from ``start`` (None: the earliest document) to ``end``, chunk by chunk."""
        current = 0 if start_ms is None else start_ms
        plan = self.plan
        while current < end_ms:
            summary = self.summary(current, end_ms)
            if summary.total == 0:
                return
            current = max(current, summary.earliest_ms)
            if plan.chunking == "off":
                span = end_ms - current
            elif plan.chunking == "manual" and plan.time_span_ms:
                span = plan.time_span_ms
            else:
                span = summary.estimate_chunk_ms(plan.scroll_size, end_ms - current)
            while current < end_ms:
                chunk_end = min(current + span, end_ms)
                found = 0
                for hit in self.hits(current, chunk_end):
                    found += 1
                    yield hit
                current = chunk_end
                if not found:
                    break  # a gap: summarise again from here to jump over it

    def bucket_counts(self, start_ms: int, end_ms: int, span_ms: int) -> dict[int, int]:
        """Documents the datafeed query matches per bucket of ``span_ms`` in ``[start, end)``:
        the search of Elastic's delayed-data check (a ``date_histogram`` over the window)."""
        body = {
            "size": 0,
            "query": self.plan.ranged(start_ms, end_ms),
            "aggs": {"buckets": {"date_histogram": {"field": self.plan.time_field,
                                                    "fixed_interval": f"{span_ms // 1000}s"}}},
        }  # fmt: skip
        what = f"delayed data check [{iso_ms(start_ms)}, {iso_ms(end_ms)})"
        got = self._checked(what, self._call(what, self.client().search,
                                             index=self.target.index, **_body_kwargs(body)))  # fmt: skip
        self.searches += 1
        buckets = ((got.get("aggregations") or {}).get("buckets") or {}).get("buckets") or []
        return {int(b["key"]): int(b["doc_count"]) for b in buckets}


def _body_kwargs(body: dict[str, Any]) -> dict[str, Any]:
    """A request body as the client's keyword arguments (``_source`` is ``source``)."""
    out = dict(body)
    if "_source" in out:
        out["source"] = out.pop("_source")
    return out


def iso_ms(ms: int) -> str:
    from rarebird.timeutil import from_epoch_ms

    return iso(from_epoch_ms(ms))


class ElasticsearchSource:
    """A :class:`~rarebird.sources.base.Source` over an index pattern (see the module doc)."""

    def __init__(
        self,
        target: ElasticTarget,
        plan: SearchPlan,
        options: SourceOptions | None = None,
        *,
        client: Any = None,
        clock: Clock = SYSTEM_CLOCK,
        dry_run_out: IO[str] | None = None,
    ) -> None:
        if not target.index:
            raise InputError(target.display, "name the index pattern: es+https://HOST:9200/logs-*")
        self.target = target
        self.plan = plan
        self.searcher = ElasticSearcher(target, plan, client=client)
        self.clock = clock
        self._stats = ReadStats()
        self._wanted = Wanted.for_fields((options or SourceOptions()).fields)
        self._dry_out = dry_run_out
        self.range_ms = self._range()

    @property
    def name(self) -> str:
        return self.target.display

    @property
    def stats(self) -> ReadStats:
        return self._stats

    def _range(self) -> tuple[int | None, int]:
        now = self.clock.now()
        try:
            end = (
                parse_time(self.target.end, now) if self.target.end else now - self.plan.query_delay
            )
            start = parse_time(self.target.start, now) if self.target.start else None
        except ValueError as exc:
            raise InputError(self.target.display, f"start/end: {exc}") from None
        end_ms = to_epoch_ms(end)
        start_ms = None if start is None else to_epoch_ms(start)
        if start_ms is not None and start_ms >= end_ms:
            raise InputError(
                self.target.display, f"start {iso_ms(start_ms)} is not before end {iso(end)}"
            )
        return start_ms, end_ms

    def __iter__(self) -> Iterator[ProcessEvent]:
        start_ms, end_ms = self.range_ms
        if self.target.dry_run:
            self._print_dry_run(start_ms, end_ms)
            return
        try:
            for hit in self.searcher.chunks(start_ms, end_ms):
                event = self.event(hit)
                if event is not None:
                    yield event
        finally:
            self.searcher.close()

    def event(self, hit: Mapping[str, Any]) -> ProcessEvent | None:
        """The event of one hit, or None (counted) when it has none."""
        st = self._stats
        st.lines += 1
        where = SourceLocation(
            f"{self.target.display}/{hit.get('_index')}/{hit.get('_id')}", st.lines
        )
        source = hit.get("_source")
        if not isinstance(source, dict):
            st.skip(where, "hit without _source")
            return None
        try:
            event = event_from_document(source, where, self._wanted)
        except DocumentError as exc:
            st.skip(where, exc.reason, exc.detail)
            return None
        st.events += 1
        return event

    def _print_dry_run(self, start_ms: int | None, end_ms: int) -> None:
        out = self._dry_out or sys.stderr
        idx, plan = self.target.index, self.plan
        lo = 0 if start_ms is None else start_ms
        lines = [
            f"rarebird: dry run: {self.target.url}/{idx} [{iso_ms(lo)}, {iso_ms(end_ms)}) (not sent)",
            f"POST /{idx}/_search " + orjson.dumps(plan.summary_body(lo, end_ms)).decode(),
            f"POST /{idx}/_pit?keep_alive={PIT_KEEP_ALIVE}",
            "POST /_search " + orjson.dumps(plan.page_body("<pit id>", lo, end_ms, None)).decode(),
            "DELETE /_pit {\"id\": \"<pit id>\"}",
        ]  # fmt: skip
        out.write("\n".join(lines) + "\n")
        out.flush()
