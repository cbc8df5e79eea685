"""Anomaly results in the store: write a bucket's results, search them as Elastic's API does."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from rarebird.events import ProcessEvent
from rarebird.results import AnomalyRecord, BucketResults
from rarebird.store.sqlite import Store
from rarebird.timeutil import iso, to_epoch_ms


def _dumps(doc: dict[str, Any]) -> str:
    return orjson.dumps(doc).decode()


def write_bucket_results(store: Store, results: BucketResults) -> None:
    """Upsert one bucket's results (see :func:`write_results`)."""
    write_results(store, [results])


def write_results(store: Store, batch: Sequence[BucketResults]) -> None:
    """Upsert buckets, their bucket influencers, records and influencer results in one
    transaction. Ids are Elastic's, so re-writing a bucket replaces it; writing a final bucket
    deletes the job's interim results first."""
    rows: list[tuple[Any, ...]] = []
    details: list[tuple[str, str, str]] = []
    final_jobs: set[str] = set()
    for results in batch:
        b = results.bucket
        ts = to_epoch_ms(b.timestamp)
        if not b.is_interim:
            final_jobs.add(b.job_id)
        rows.append(
            (b.doc_id, b.job_id, "bucket", ts, b.anomaly_score, b.initial_anomaly_score, None,
             int(b.is_interim), None, None, _dumps(b.to_doc()))
        )  # fmt: skip
        for bi in b.bucket_influencers:
            rows.append(
                (bi.doc_id, bi.job_id, "bucket_influencer", ts, bi.anomaly_score,
                 bi.initial_anomaly_score, bi.probability, int(bi.is_interim),
                 bi.influencer_field_name, None, _dumps(bi.to_doc()))
            )  # fmt: skip
        for r in results.records:
            rows.append(
                (r.doc_id, r.job_id, "record", ts, r.record_score, r.initial_record_score,
                 r.probability, int(r.is_interim), r.by_field_name, r.by_field_value,
                 _dumps(r.to_doc()))
            )  # fmt: skip
            if r.details:
                details.append((r.doc_id, r.job_id, _dumps(dict(r.details))))
        for i in results.influencers:
            rows.append(
                (i.doc_id, i.job_id, "influencer", ts, i.influencer_score,
                 i.initial_influencer_score, i.probability, int(i.is_interim),
                 i.influencer_field_name, i.influencer_field_value, _dumps(i.to_doc()))
            )  # fmt: skip
    with store.transaction() as conn:
        for job_id in sorted(final_jobs):
            conn.execute("DELETE FROM results WHERE job_id = ? AND is_interim = 1", (job_id,))
        if details:
            conn.executemany(
                "INSERT OR REPLACE INTO record_details (id, job_id, doc) VALUES (?,?,?)", details
            )
        conn.executemany(
            "INSERT INTO results (id, job_id, result_type, timestamp_ms, score, initial_score, "
            "probability, is_interim, field_name, entity, doc) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET score = excluded.score, "
            "initial_score = excluded.initial_score, probability = excluded.probability, "
            "is_interim = excluded.is_interim, doc = excluded.doc",
            rows,
        )


def update_scores(store: Store, updates: Iterable[tuple[str, float]]) -> int:
    """Renormalisation: set new current scores (record_score / anomaly_score / influencer_score)
    by document id; ``initial_*`` never changes."""
    n = 0
    with store.transaction() as conn:
        for doc_id, score in updates:
            row = conn.execute(
                "SELECT result_type, doc FROM results WHERE id = ?", (doc_id,)
            ).fetchone()
            if row is None:
                continue
            rtype, raw = row
            doc = orjson.loads(raw)
            key = {"record": "record_score", "influencer": "influencer_score"}.get(
                rtype, "anomaly_score"
            )
            doc[key] = score
            conn.execute(
                "UPDATE results SET score = ?, doc = ? WHERE id = ?", (score, _dumps(doc), doc_id)
            )
            n += 1
    return n


@dataclass(frozen=True)
class ResultPage:
    """A search answer: how many matched in all, and the returned (id, document) pairs."""

    total: int
    hits: list[tuple[str, dict[str, Any]]]


def search_results(
    store: Store,
    result_type: str = "record",
    *,
    job_ids: Sequence[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    min_score: float | None = None,
    entity: str | None = None,
    field_name: str | None = None,
    include_interim: bool = False,
    order: str = "score",
    limit: int | None = None,
) -> ResultPage:
    """Results of one type. ``start``/``end`` bound the bucket ``timestamp`` inclusively (as the
    rule's ``range timestamp gte/lte`` does); ``order`` is ``score`` (desc) or ``time`` (asc)."""
    where = ["result_type = ?"]
    args: list[Any] = [result_type]
    if job_ids and list(job_ids) != ["*"]:
        where.append(f"job_id IN ({','.join('?' * len(job_ids))})")
        args.extend(job_ids)
    if start is not None:
        where.append("timestamp_ms >= ?")
        args.append(to_epoch_ms(start))
    if end is not None:
        where.append("timestamp_ms <= ?")
        args.append(to_epoch_ms(end))
    if min_score is not None:
        where.append("score >= ?")
        args.append(min_score)
    if entity is not None:
        where.append("entity = ?")
        args.append(entity)
    if field_name is not None:
        where.append("field_name = ?")
        args.append(field_name)
    if not include_interim:
        where.append("is_interim = 0")
    clause = " AND ".join(where)
    total = store.conn.execute(f"SELECT count(*) FROM results WHERE {clause}", args).fetchone()[0]
    order_by = (
        "score DESC, timestamp_ms ASC, id ASC"
        if order == "score"
        else "timestamp_ms ASC, score DESC, id ASC"
    )
    sql = f"SELECT id, doc FROM results WHERE {clause} ORDER BY {order_by}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    hits = [(rid, orjson.loads(doc)) for rid, doc in store.conn.execute(sql, args)]
    return ResultPage(total, hits)


def search_records(
    store: Store,
    job_ids: Sequence[str],
    start: datetime,
    end: datetime,
    min_score: float,
    limit: int,
) -> tuple[int, list[tuple[str, AnomalyRecord]]]:
    """The ML rule's anomaly query: final records of ``job_ids`` with bucket timestamp in
    [start, end] and record_score >= min_score, best first, at most ``limit``; plus the total."""
    page = search_results(
        store, "record", job_ids=job_ids, start=start, end=end, min_score=min_score,
        order="score", limit=limit,
    )  # fmt: skip
    return page.total, [(rid, AnomalyRecord.from_doc(doc)) for rid, doc in page.hits]


def get_record_details(store: Store, doc_id: str) -> dict[str, Any] | None:
    """rarebird's explanation of a record (model view and normaliser ceilings), if kept."""
    row = store.conn.execute("SELECT doc FROM record_details WHERE id = ?", (doc_id,)).fetchone()
    return None if row is None else orjson.loads(row[0])


def get_result(store: Store, doc_id: str) -> dict[str, Any] | None:
    row = store.conn.execute("SELECT doc FROM results WHERE id = ?", (doc_id,)).fetchone()
    return None if row is None else orjson.loads(row[0])


def write_events(store: Store, job_id: str, events: Iterable[ProcessEvent]) -> None:
    """Keep the events the datafeed passed to the job, for triage ("what else did they run")."""
    rows = []
    for ev in events:
        doc = _dumps(_triage_doc(ev))
        key = hashlib.blake2b(doc.encode(), digest_size=12).hexdigest()
        rows.append((job_id, to_epoch_ms(ev.timestamp), ev.user_name, ev.host_name,
                     ev.process_name, doc, key))  # fmt: skip
    if rows:
        # keyed by content, so writing the same events again (a resumed replay) adds nothing
        with store.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO events (job_id, timestamp_ms, user_name, host_name, "
                "process_name, doc, key) VALUES (?,?,?,?,?,?,?)",
                rows,
            )


def _triage_doc(ev: ProcessEvent) -> dict[str, Any]:
    """The fields of a kept event that triage shows, as a small nested ECS document."""
    process: dict[str, Any] = {"name": ev.process_name}
    if ev.process_args:
        process["args"] = list(ev.process_args)
    if ev.process_executable:
        process["executable"] = ev.process_executable
    if ev.process_pid is not None:
        process["pid"] = ev.process_pid
    if ev.process_working_directory:
        process["working_directory"] = ev.process_working_directory
    if ev.process_parent_name or ev.process_parent_pid is not None:
        parent: dict[str, Any] = {}
        if ev.process_parent_name:
            parent["name"] = ev.process_parent_name
        if ev.process_parent_pid is not None:
            parent["pid"] = ev.process_parent_pid
        process["parent"] = parent
    user: dict[str, Any] = {}
    if ev.user_name is not None:
        user["name"] = ev.user_name
    if ev.user_id is not None:
        user["id"] = ev.user_id
    if ev.user_audit_name is not None:
        user["audit"] = {"name": ev.user_audit_name}
    doc: dict[str, Any] = {"@timestamp": iso(ev.timestamp), "process": process, "user": user}
    if ev.host_name is not None:
        doc["host"] = {"name": ev.host_name}
    if ev.event_action is not None:
        doc["event"] = {"action": ev.event_action}
    return doc


def search_events(
    store: Store,
    job_id: str,
    *,
    user: str | None = None,
    host: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    where = ["job_id = ?"]
    args: list[Any] = [job_id]
    if user is not None:
        where.append("user_name = ?")
        args.append(user)
    if host is not None:
        where.append("host_name = ?")
        args.append(host)
    if start is not None:
        where.append("timestamp_ms >= ?")
        args.append(to_epoch_ms(start))
    if end is not None:
        where.append("timestamp_ms < ?")
        args.append(to_epoch_ms(end))
    sql = (
        f"SELECT doc FROM events WHERE {' AND '.join(where)} ORDER BY timestamp_ms ASC "
        f"LIMIT {int(limit)}"
    )
    return [orjson.loads(d) for (d,) in store.conn.execute(sql, args)]
