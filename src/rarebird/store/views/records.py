"""One anomaly record, its explanation's inputs and the events around it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

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
    row = store.conn.execute(
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


class FleetCache:
    """Fleet activity by (job, window), so a table of anomalies reads each window once."""

    def __init__(self) -> None:
        self._fleet: dict[tuple[str, int, int, int], FleetActivity] = {}
        self._bounds: dict[str, tuple[int, int] | None] = {}

    def bounds(self, store: Store, job_id: str) -> tuple[int, int] | None:
        if job_id not in self._bounds:
            row = store.conn.execute(
                "SELECT min(timestamp_ms), max(timestamp_ms) FROM events WHERE job_id = ?",
                (job_id,),
            ).fetchone()
            self._bounds[job_id] = None if row[0] is None else (int(row[0]), int(row[1]))
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
    return _Window(start, max(end, start + span_ms))


def fleet_activity(store: Store, job_id: str, window: _Window, span_ms: int) -> FleetActivity:
    """Who ran the job's commands in ``window``: user-buckets by user (from kept events)."""
    rows = store.conn.execute(
        "SELECT user_name, count(DISTINCT timestamp_ms / ?) FROM events "
        "WHERE job_id = ? AND timestamp_ms >= ? AND timestamp_ms < ? AND user_name IS NOT NULL "
        "GROUP BY user_name",
        (span_ms, job_id, window.start_ms, window.end_ms),
    ).fetchall()
    ranked = sorted(((str(u), int(n)) for u, n in rows), key=lambda r: (-r[1], r[0]))
    return FleetActivity(
        from_epoch_ms(window.start_ms),
        from_epoch_ms(window.end_ms),
        len(ranked),
        sum(n for _, n in ranked),
        tuple(ranked[:5]),
    )


def user_activity(
    store: Store, job_id: str, user: str, bucket_ms: int, window: _Window, span_ms: int
) -> UserActivity:
    last = store.conn.execute(
        "SELECT max(timestamp_ms) FROM events WHERE job_id = ? AND user_name = ? "
        "AND timestamp_ms < ?",
        (job_id, user, bucket_ms),
    ).fetchone()[0]
    active = store.conn.execute(
        "SELECT count(DISTINCT timestamp_ms / ?) FROM events WHERE job_id = ? AND "
        "user_name = ? AND timestamp_ms >= ? AND timestamp_ms < ?",
        (span_ms, job_id, user, window.start_ms, window.end_ms),
    ).fetchone()[0]
    return UserActivity(
        None if last is None else from_epoch_ms(int(last)),
        int(active),
        (window.end_ms - window.start_ms) // span_ms,
    )


def score_rank(store: Store, job_id: str, score: float) -> ScoreRank:
    """How many of the job's final records score below ``score``, of how many."""
    lower, total = store.conn.execute(
        "SELECT sum(score < ?), count(*) FROM results "
        "WHERE job_id = ? AND result_type = 'record' AND is_interim = 0",
        (score, job_id),
    ).fetchone()
    return ScoreRank(int(lower or 0), int(total))


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
    rank = score_rank(store, job_id, facts.record_score) if not doc.get("is_interim") else None
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
    rows = store.conn.execute(
        f"SELECT doc FROM events WHERE {' AND '.join(where)} ORDER BY timestamp_ms LIMIT ?",
        [*args, limit],
    )
    return tuple(event_row(orjson.loads(d)) for (d,) in rows)
