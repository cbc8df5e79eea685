"""One anomaly record, its explanation's inputs and the events around it."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from rarebird.clock import SYSTEM_CLOCK
from rarebird.explain import (
    Explanation,
    FleetActivity,
    RecordFacts,
    ScoreRank,
    UserActivity,
    explain,
)
from rarebird.store.sqlite import Store
from rarebird.timeutil import from_epoch_ms, to_epoch_ms

#: how far back "who runs these commands" looks (Elastic's datafeeds back-analyse 14 days)
FLEET_WINDOW = timedelta(days=14)
DAY_MS = 86_400_000


# --------------------------------------------------------------------------------------------
# one record: its documents, its explanation


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """An anomaly record as stored: Elastic's document and rarebird's details."""

    id: str
    doc: dict[str, Any]
    details: dict[str, Any] | None


def stored_record(store: Store, record_id: str) -> StoredRecord | None:
    row = store.execute(
        "SELECT r.doc, d.doc FROM results r LEFT JOIN record_details d ON d.id = r.id "
        "WHERE r.id = ?",
        (record_id,),
    ).fetchone()
    if row is None:
        return None
    return StoredRecord(record_id, orjson.loads(row[0]), orjson.loads(row[1]) if row[1] else None)


@dataclass(frozen=True, slots=True)
class _Window:
    start_ms: int
    end_ms: int
    #: the newest kept event of the job
    last_ms: int


#: how long a job's score histogram and the newest days' per-user counts are reused (s)
CACHE_SECONDS = 60.0
#: ... and the per-user counts of a day before the newest kept event's day, which the job has
#: finalised (its kept events no longer change)
SETTLED_CACHE_SECONDS = 3600.0
_CACHE_ENTRIES = 20_000


class _Shared:
    """Per-day user-bucket counts and score histograms, kept for :data:`CACHE_SECONDS` by the
    process (every request opens the store anew; an explanation a minute old is still true
    enough to read, and a page of 25 anomalies then costs no scan of the kept events)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[object, ...], tuple[float, object]] = {}

    def get(self, key: tuple[object, ...]) -> object | None:
        now = SYSTEM_CLOCK.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit is None or hit[0] < now:
                return None
            return hit[1]

    def put(self, key: tuple[object, ...], value: object, seconds: float = CACHE_SECONDS) -> None:
        with self._lock:
            if len(self._items) >= _CACHE_ENTRIES:
                self._items.clear()
            self._items[key] = (SYSTEM_CLOCK.monotonic() + seconds, value)


_SHARED = _Shared()


class FleetCache:
    """What one page reads for its explanations, read once: event bounds, score histograms and
    the fleet's activity by window (days are shared across requests, see :class:`_Shared`)."""

    def __init__(self) -> None:
        self._fleet: dict[tuple[str, int, int, int], FleetActivity] = {}
        self._bounds: dict[str, tuple[int, int] | None] = {}
        self._histograms: dict[str, tuple[int, ...]] = {}

    def histogram(self, store: Store, job_id: str) -> tuple[int, ...]:
        if job_id not in self._histograms:
            key = ("histogram", store.path, job_id)
            cached = _SHARED.get(key)
            if not isinstance(cached, tuple):
                cached = score_histogram(store, job_id)
                _SHARED.put(key, cached)
            self._histograms[job_id] = cached
        return self._histograms[job_id]

    def bounds(self, store: Store, job_id: str) -> tuple[int, int] | None:
        if job_id not in self._bounds:
            # two queries: SQLite answers a lone min() or max() from the index end
            first = store.execute(
                "SELECT min(timestamp_ms) FROM events WHERE job_id = ?", (job_id,)
            ).fetchone()[0]
            last = store.execute(
                "SELECT max(timestamp_ms) FROM events WHERE job_id = ?", (job_id,)
            ).fetchone()[0]
            self._bounds[job_id] = None if first is None else (int(first), int(last))
        return self._bounds[job_id]

    def fleet(self, store: Store, job_id: str, window: _Window, span_ms: int) -> FleetActivity:
        key = (job_id, window.start_ms, window.end_ms, span_ms)
        if key not in self._fleet:
            self._fleet[key] = fleet_activity(store, job_id, window, span_ms)
        return self._fleet[key]


def fleet_window(anomaly_ms: int, span_ms: int, bounds: tuple[int, int]) -> _Window:
    """The :data:`FLEET_WINDOW` of whole UTC days ending with the anomaly's day, within the
    kept events (bucket-aligned)."""
    end = (anomaly_ms // DAY_MS + 1) * DAY_MS
    start = end - int(FLEET_WINDOW.total_seconds() * 1000)
    first, last = bounds
    start = max(start, first // span_ms * span_ms)
    end = min(end, (last // span_ms + 1) * span_ms)
    return _Window(start, max(end, start + span_ms), last)


def fleet_activity(store: Store, job_id: str, window: _Window, span_ms: int) -> FleetActivity:
    """Who ran the job's commands in ``window``: user-buckets by user (from kept events),
    summed over the UTC days the window covers (buckets never straddle a day; the window is
    clipped to the kept events only, so whole days count the same). The users named are the
    five most active among those in some day's top ten: whoever dominates a window dominates
    its days."""
    days = []
    for day in range(window.start_ms // DAY_MS * DAY_MS, window.end_ms, DAY_MS):
        settled = day + DAY_MS <= window.last_ms // DAY_MS * DAY_MS
        days.append(_day_counts(store, job_id, day, span_ms, settled))
    users: set[str] = set().union(*(d.counts.keys() for d in days))
    candidates = {u for d in days for u in d.top}
    sums = [(u, sum(d.counts.get(u, 0) for d in days)) for u in candidates]
    return FleetActivity(
        from_epoch_ms(window.start_ms),
        from_epoch_ms(window.end_ms),
        len(users),
        sum(d.total for d in days),
        tuple(sorted(sums, key=lambda r: (-r[1], r[0]))[:5]),
    )


@dataclass(frozen=True, slots=True)
class _Day:
    """One UTC day of kept events: user-buckets by user, their sum, the ten most active."""

    counts: dict[str, int]
    total: int
    top: tuple[str, ...]


def _day_counts(store: Store, job_id: str, day_ms: int, span_ms: int, settled: bool) -> _Day:
    key = ("day", store.path, job_id, day_ms, span_ms)
    cached = _SHARED.get(key)
    if isinstance(cached, _Day):
        return cached
    rows = store.execute(
        "SELECT user_name, count(DISTINCT timestamp_ms / ?) FROM events "
        "WHERE job_id = ? AND timestamp_ms >= ? AND timestamp_ms < ? AND user_name IS NOT NULL "
        "GROUP BY user_name",
        (span_ms, job_id, day_ms, day_ms + DAY_MS),
    ).fetchall()
    counts = {str(u): int(n) for u, n in rows}
    top = tuple(u for u, _ in heapq.nlargest(10, counts.items(), key=lambda r: (r[1], r[0])))
    day = _Day(counts, sum(counts.values()), top)
    _SHARED.put(key, day, SETTLED_CACHE_SECONDS if settled else CACHE_SECONDS)
    return day


def user_activity(
    store: Store, job_id: str, user: str, bucket_ms: int, window: _Window, span_ms: int
) -> UserActivity:
    last = store.execute(
        "SELECT max(timestamp_ms) FROM events WHERE job_id = ? AND user_name = ? "
        "AND timestamp_ms < ?",
        (job_id, user, bucket_ms),
    ).fetchone()[0]
    active = store.execute(
        "SELECT count(DISTINCT timestamp_ms / ?) FROM events WHERE job_id = ? AND "
        "user_name = ? AND timestamp_ms >= ? AND timestamp_ms < ?",
        (span_ms, job_id, user, window.start_ms, window.end_ms),
    ).fetchone()[0]
    return UserActivity(
        None if last is None else from_epoch_ms(int(last)),
        int(active),
        (window.end_ms - window.start_ms) // span_ms,
    )


def score_rank(store: Store, job_id: str, score: float, histogram: Sequence[int] | None = None) -> ScoreRank:  # fmt: skip
    """How many of the job's final records score below ``score``, of how many: whole points
    from the job's score histogram, the last fraction of a point counted in the partial score
    index (a small range of it)."""
    hist = score_histogram(store, job_id) if histogram is None else histogram
    whole = max(0, min(int(score), len(hist)))
    within = store.execute(
        "SELECT count(*) FROM results INDEXED BY results_records_by_score "
        "WHERE job_id = ? AND result_type = 'record' AND is_interim = 0 AND score >= ? "
        "AND score < ?",
        (job_id, float(whole), score),
    ).fetchone()[0]
    return ScoreRank(sum(hist[:whole]) + int(within), sum(hist))


def score_histogram(store: Store, job_id: str) -> tuple[int, ...]:
    """How many of the job's final records score in [n, n + 1), n = 0 .. 100 (one pass over
    the partial score index)."""
    counts = [0] * 101
    for n, count in store.execute(
        "SELECT min(CAST(score AS INTEGER), 100), count(*) FROM results "
        "INDEXED BY results_records_by_score "
        "WHERE job_id = ? AND result_type = 'record' AND is_interim = 0 GROUP BY 1",
        (job_id,),
    ):
        counts[max(0, int(n))] += int(count)
    return tuple(counts)


def explain_record(
    store: Store, doc: dict[str, Any], details: dict[str, Any] | None, cache: FleetCache
) -> Explanation:
    """:func:`rarebird.explain.explain` with what the store keeps about the record."""
    facts = RecordFacts.from_docs(doc, details)
    job_id = str(doc.get("job_id", ""))
    span_ms = int(facts.bucket_span.total_seconds() * 1000)
    bucket_ms = int(doc["timestamp"])
    bounds = cache.bounds(store, job_id)
    activity = fleet = None
    if bounds is not None:
        window = fleet_window(bucket_ms, span_ms, bounds)
        fleet = cache.fleet(store, job_id, window, span_ms)
        activity = user_activity(store, job_id, facts.user, bucket_ms, window, span_ms)
    rank = None
    if not doc.get("is_interim"):
        rank = score_rank(store, job_id, facts.record_score, cache.histogram(store, job_id))
    return explain(facts, activity=activity, fleet=fleet, rank=rank)


# --------------------------------------------------------------------------------------------
# kept events


@dataclass(frozen=True, slots=True)
class EventRow:
    """A kept discovery command, as the pages show it."""

    time: str
    user: str
    host: str
    command: str
    parent: str
    cwd: str


def event_row(doc: dict[str, Any]) -> EventRow:
    proc = doc.get("process") or {}
    parent = proc.get("parent") or {}
    args = proc.get("args") or []
    return EventRow(
        str(doc.get("@timestamp", "")),
        str((doc.get("user") or {}).get("name", "")),
        str((doc.get("host") or {}).get("name", "")),
        " ".join(str(a) for a in args) or str(proc.get("name", "")),
        str(parent.get("executable") or parent.get("name") or ""),
        str(proc.get("working_directory", "")),
    )


def events_between(
    store: Store,
    job_id: str,
    start: datetime,
    end: datetime,
    *,
    user: str | None = None,
    hosts: Sequence[str] = (),
    limit: int = 200,
) -> tuple[EventRow, ...]:
    """Kept events in [start, end), of ``user`` or on one of ``hosts`` (or all), time order."""
    where = ["job_id = ?", "timestamp_ms >= ?", "timestamp_ms < ?"]
    args: list[Any] = [job_id, to_epoch_ms(start), to_epoch_ms(end)]
    who: list[str] = []
    if user is not None:
        who.append("user_name = ?")
        args.append(user)
    if hosts:
        who.append(f"host_name IN ({','.join('?' * len(hosts))})")
        args.extend(hosts)
    if who:
        where.append("(" + " OR ".join(who) + ")")
    rows = store.execute(
        f"SELECT doc FROM events WHERE {' AND '.join(where)} ORDER BY timestamp_ms LIMIT ?",
        [*args, limit],
    )
    return tuple(event_row(orjson.loads(d)) for (d,) in rows)
