"""Following an Elasticsearch index pattern as Elastic's real-time datafeed does
(``[[follow]] path = "es+https://HOST:9200/logs-*"``).

**The searches.** Every ``frequency`` the follower searches ``[last end, now - query_delay)``
with the datafeed's query (:class:`~rarebird.sources.elasticsearch.ElasticSearcher`: data
summary, point in time, ``search_after``), hands the hits' documents to the service as one
chunk of ECS NDJSON (parsed like a followed file, with the datafeed prefilter), and moves its
position to the end searched. While catching up (the first start with backfill, or after
downtime) it searches one hour at a time, skipping empty hours within a poll.

**Exactly once.** The position (the end searched, and the per-bucket counts below) is the
follower's state, which the service commits in the same transaction as the events of the
chunk, the job's results and the alerts (``state.sources``). A crash before the commit leaves
the old end: the same range is searched again and the same documents are given to the job; a
range searched and committed is never searched again. No point in time outlives a poll, so
nothing but the end needs to survive a restart.

**Delayed data.** Elastic's delayed-data check (``delayed_data_check_config``, enabled unless
the datafeed says otherwise; its window defaults to ``max(2h, 8 * bucket_span)``) is run every
15 minutes: a ``date_histogram`` of the documents the query matches per bucket over the window,
against how many the follower delivered for each bucket. More documents now than delivered
means documents arrived after the datafeed searched their time: they are reported (log
``delayed_data`` with Elastic's wording), never modelled, as Elastic's job does not see them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from rarebird.clock import Clock
from rarebird.errors import InputError
from rarebird.serve.follow.base import Chunk
from rarebird.sources.elasticsearch import ElasticSearcher, iso_ms
from rarebird.timeutil import to_epoch_ms

STATE_KIND = "elasticsearch"
STATE_VERSION = 1
#: the span searched at once while catching up
CATCHUP_STEP_MS = 3_600_000
#: empty catch-up steps searched in one poll before giving the turn back
MAX_EMPTY_STEPS = 24
#: how often the delayed-data check runs (wall clock)
CHECK_EVERY_S = 900.0
#: ``DelayedDataCheckConfig``'s default window: max(2h, 8 bucket spans)
MIN_CHECK_WINDOW_MS = 7_200_000


class ElasticFollower:
    """A :class:`~rarebird.serve.follow.base.Follower` over an index pattern."""

    def __init__(
        self,
        label: str,
        searcher: ElasticSearcher,
        *,
        clock: Clock,
        frequency_ms: int,
        query_delay_ms: int,
        bucket_span_ms: int,
        start_ms: int,
        state: dict[str, Any] | None,
        delayed_check: dict[str, Any] | None,
        log: Callable[..., None],
    ) -> None:
        self.label = label
        self.searcher = searcher
        self.clock = clock
        self.frequency_ms = frequency_ms
        self.query_delay_ms = query_delay_ms
        self.span_ms = bucket_span_ms
        self.log = log
        check = delayed_check or {}
        self.check_enabled = check.get("enabled", True) is not False
        window = check.get("check_window_ms")
        self.check_window_ms = (
            int(window) if window else max(MIN_CHECK_WINDOW_MS, 8 * bucket_span_ms)
        )
        self.end_ms = start_ms
        self.line = 0
        #: bucket start -> documents delivered for it (within the check window)
        self.delivered: dict[int, int] = {}
        #: bucket start -> missing documents already reported
        self.reported: dict[int, int] = {}
        self.missed_total = 0
        if state is not None:
            self._restore(state)
        self._next_search_mono = 0.0
        self._next_check_mono = clock.monotonic() + CHECK_EVERY_S
        self._behind = True

    # --- state ------------------------------------------------------------------------------

    def _restore(self, state: dict[str, Any]) -> None:
        if state.get("kind") != STATE_KIND or state.get("version") != STATE_VERSION:
            raise InputError(
                self.label, f"saved position is not an Elasticsearch position: {state!r}"
            )
        self.end_ms = int(state["end_ms"])
        self.line = int(state.get("line", 0))
        self.delivered = {int(k): int(v) for k, v in (state.get("delivered") or {}).items()}
        self.reported = {int(k): int(v) for k, v in (state.get("reported") or {}).items()}
        self.missed_total = int(state.get("missed_total", 0))

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": STATE_KIND, "version": STATE_VERSION, "end_ms": self.end_ms,
            "line": self.line, "missed_total": self.missed_total,
            "delivered": {str(k): v for k, v in sorted(self.delivered.items())},
            "reported": {str(k): v for k, v in sorted(self.reported.items())},
        }  # fmt: skip

    # --- the Follower protocol --------------------------------------------------------------

    def poll(self, budget: int, now: float, stream_id: str | None = None) -> list[Chunk]:
        target = to_epoch_ms(self.clock.now()) - self.query_delay_ms
        if self.check_enabled and now >= self._next_check_mono:
            self._next_check_mono = now + CHECK_EVERY_S
            self.check_delayed()
        if target <= self.end_ms or (not self._behind and now < self._next_search_mono):
            self._behind = False
            return []
        self._next_search_mono = now + self.frequency_ms / 1000
        docs: list[bytes] = []
        steps = 0
        while self.end_ms < target and not docs and steps < MAX_EMPTY_STEPS:
            step_end = min(target, self.end_ms + CATCHUP_STEP_MS)
            for hit in self.searcher.chunks(self.end_ms, step_end):
                source = hit.get("_source")
                if isinstance(source, dict):
                    docs.append(orjson.dumps(source))
                stamp = _hit_ms(hit, self.searcher.plan.time_field)
                if stamp is not None:
                    bucket = stamp - stamp % self.span_ms
                    self.delivered[bucket] = self.delivered.get(bucket, 0) + 1
            self.end_ms = step_end
            steps += 1
        self._behind = self.end_ms < target - self.frequency_ms
        self._prune()
        if not docs:
            return []
        first = self.line + 1
        self.line += len(docs)
        data = b"\n".join(docs) + b"\n"
        return [Chunk(self.label, self.searcher.target.display, self.label, data, first)]

    def behind(self) -> list[str]:
        return [self.label] if self._behind else []

    def remaining_bytes(self) -> int:
        return 0

    def close(self) -> None:
        self.searcher.close()

    # --- delayed data -------------------------------------------------------------------------

    def check_delayed(self) -> dict[int, int]:
        """Elastic's delayed-data check over the window ending at the end searched: the
        buckets (start ms -> documents) that now hold more than were delivered."""
        end = self.end_ms - self.end_ms % self.span_ms  # complete buckets only
        start = max(end - self.check_window_ms, min(self.delivered, default=end))
        if start >= end:
            return {}
        try:
            counts = self.searcher.bucket_counts(start, end, self.span_ms)
        except InputError as exc:
            self.log("warning", "delayed_data_check_failed", source=self.label, error=str(exc))
            return {}
        missing: dict[int, int] = {}
        for bucket, count in counts.items():
            extra = count - self.delivered.get(bucket, 0) - self.reported.get(bucket, 0)
            if extra > 0:
                missing[bucket] = extra
                self.reported[bucket] = self.reported.get(bucket, 0) + extra
        if missing:
            total = sum(missing.values())
            self.missed_total += total
            latest = max(missing)
            self.log("warning", "delayed_data", source=self.label, missed=total,
                     latest_bucket=iso_ms(latest),
                     message=f"Datafeed has missed {total} documents due to ingest latency, "
                             f"latest bucket with missing data is [{iso_ms(latest)}]. Consider "
                             "increasing query_delay")  # fmt: skip
        return missing

    def _prune(self) -> None:
        horizon = self.end_ms - self.check_window_ms - self.span_ms
        for table in (self.delivered, self.reported):
            for bucket in [b for b in table if b < horizon]:
                del table[bucket]


def _hit_ms(hit: dict[str, Any], time_field: str) -> int | None:
    sort = hit.get("sort")
    if isinstance(sort, list) and sort and isinstance(sort[0], int):
        return int(sort[0])
    return None
