"""Anomaly results in the store: write a bucket's results, search them as Elastic's API does."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from rarebird.results import AnomalyRecord, BucketResults
from rarebird.store.sqlite import Store
from rarebird.timeutil import to_epoch_ms


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
    with store.transaction():
        for job_id in sorted(final_jobs):
            store.execute(  # the index holds only interim results: no scan of the job's
                "DELETE FROM results INDEXED BY results_interim "
                "WHERE job_id = ? AND is_interim = 1",
                (job_id,),
            )
        if details:
            store.executemany(
                "INSERT OR REPLACE INTO record_details (id, job_id, doc) VALUES (?,?,?)", details
            )
        store.executemany(
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
    with store.transaction():
        for doc_id, score in updates:
            row = store.execute(
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
            store.execute(
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
    total = store.execute(f"SELECT count(*) FROM results WHERE {clause}", args).fetchone()[0]
    order_by = (
        "score DESC, timestamp_ms ASC, id ASC"
        if order == "score"
        else "timestamp_ms ASC, score DESC, id ASC"
    )
    sql = f"SELECT id, doc FROM results WHERE {clause} ORDER BY {order_by}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    hits = [(rid, orjson.loads(doc)) for rid, doc in store.execute(sql, args)]
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
    row = store.execute("SELECT doc FROM record_details WHERE id = ?", (doc_id,)).fetchone()
    return None if row is None else orjson.loads(row[0])


def get_result(store: Store, doc_id: str) -> dict[str, Any] | None:
    row = store.execute("SELECT doc FROM results WHERE id = ?", (doc_id,)).fetchone()
    return None if row is None else orjson.loads(row[0])


def window_docs(store: Store, job_id: str, start_ms: int) -> dict[str, dict[str, Any]]:
    """Every final record, influencer and bucket result of ``job_id`` from ``start_ms`` on,
    by document id, oldest first (the renormalisation window)."""
    rows = store.all(
        "SELECT id, doc FROM results WHERE job_id = ? AND is_interim = 0 AND timestamp_ms >= ? "
        "AND result_type IN ('record', 'influencer', 'bucket') "
        "ORDER BY CASE result_type WHEN 'record' THEN 0 WHEN 'influencer' THEN 1 ELSE 2 END, "
        "timestamp_ms ASC, score DESC, id ASC",
        (job_id, start_ms),
    )
    return {rid: orjson.loads(doc) for rid, doc in rows}


def apply_score_updates(store: Store, updates: Iterable[tuple[str, float, dict[str, Any]]]) -> None:
    """Renormalised scores: (document id, new current score, new document)."""
    rows = [(score, _dumps(doc), doc_id) for doc_id, score, doc in updates]
    if rows:
        with store.transaction():
            store.executemany("UPDATE results SET score = ?, doc = ? WHERE id = ?", rows)


def job_has_results(store: Store, job_id: str) -> bool:
    """True once the job has written at least one bucket."""
    return (
        store.one(
            "SELECT 1 FROM results WHERE job_id = ? AND result_type = 'bucket' LIMIT 1", (job_id,)
        )
        is not None
    )


def delete_results_since(store: Store, job_id: str, since_ms: int | None) -> int:
    """Delete the job's results from ``since_ms`` on (all when None) and its interim results;
    returns how many went."""
    with store.transaction():
        n = store.execute(
            "DELETE FROM results WHERE job_id = ? AND timestamp_ms >= ?",
            (job_id, -(2**62) if since_ms is None else since_ms),
        ).rowcount
        n += store.execute(
            "DELETE FROM results WHERE job_id = ? AND is_interim = 1", (job_id,)
        ).rowcount
    return int(n)
