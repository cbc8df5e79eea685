"""The Anomaly Explorer: swimlanes and the anomalies table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from rarebird.store.sqlite import Store
from rarebird.store.views.records import FleetCache, explain_record
from rarebird.timeutil import from_epoch_ms

# --------------------------------------------------------------------------------------------
# the Anomaly Explorer


def job_ids(store: Store) -> list[str]:
    """The jobs with a saved state (else the job of any result)."""
    ids = [str(j) for (j,) in store.execute("SELECT job_id FROM job_state ORDER BY job_id")]
    if not ids:
        row = store.execute("SELECT job_id FROM results LIMIT 1").fetchone()
        ids = [str(row[0])] if row else []
    return ids


def result_bounds(store: Store, job_id: str) -> tuple[int, int] | None:
    """First and last bucket start (epoch ms) of the job's results."""
    # two queries: SQLite answers a lone min() or max() from the index end
    where = "FROM results WHERE job_id = ? AND result_type = 'bucket'"
    first = store.execute(f"SELECT min(timestamp_ms) {where}", (job_id,)).fetchone()[0]
    last = store.execute(f"SELECT max(timestamp_ms) {where}", (job_id,)).fetchone()[0]
    return None if first is None else (int(first), int(last))


def bucket_span_ms(store: Store, job_id: str) -> int:
    """The job's bucket span (of its newest bucket result), in ms; 15 minutes if none."""
    row = store.execute(
        "SELECT json_extract(doc, '$.bucket_span') FROM results WHERE job_id = ? AND "
        "result_type = 'bucket' ORDER BY timestamp_ms DESC LIMIT 1",
        (job_id,),
    ).fetchone()
    return int(row[0]) * 1000 if row and row[0] else 900_000


@dataclass(frozen=True, slots=True)
class Lane:
    """One swimlane row: cells (index from the range start, max score) with a score > 0."""

    label: str
    max_score: float
    cells: tuple[tuple[int, float], ...]


def overall_lane(store: Store, job_id: str, start_ms: int, end_ms: int, cell_ms: int) -> Lane:
    """The bucket ``anomaly_score``, max per cell: Elastic's "Overall" swimlane."""
    rows = store.execute(
        "SELECT (timestamp_ms - ?) / ?, max(score) FROM results WHERE job_id = ? AND "
        "result_type = 'bucket' AND is_interim = 0 AND timestamp_ms >= ? AND timestamp_ms < ? "
        "AND score > 0 GROUP BY 1",
        (start_ms, cell_ms, job_id, start_ms, end_ms),
    ).fetchall()
    cells = tuple((int(i), float(s)) for i, s in rows)
    return Lane("Overall", max((s for _, s in cells), default=0.0), cells)


def lanes_by(
    store: Store, job_id: str, field: str, start_ms: int, end_ms: int, cell_ms: int,
    *, limit: int = 10, offset: int = 0,
) -> tuple[int, list[Lane]]:  # fmt: skip
    """Influencer scores of ``field`` (max per cell), the top lanes first: Elastic's
    "View by" swimlane. Returns how many lanes there are in all, and one page of them."""
    base = (
        "FROM results INDEXED BY results_influencers_by_time WHERE job_id = ? AND "
        "result_type = 'influencer' AND field_name = ? AND is_interim = 0 AND "
        "timestamp_ms >= ? AND timestamp_ms < ? AND score > 0"
    )
    args = (job_id, field, start_ms, end_ms)
    top = store.execute(
        f"SELECT entity, max(score) AS m {base} GROUP BY entity ORDER BY m DESC, entity",
        args,
    ).fetchall()
    page = top[offset : offset + limit]
    if not page:
        return len(top), []
    names = [str(e) for e, _ in page]
    cells: dict[str, list[tuple[int, float]]] = {n: [] for n in names}
    rows = store.execute(
        f"SELECT entity, (timestamp_ms - ?) / ?, max(score) {base} "
        f"AND entity IN ({','.join('?' * len(names))}) GROUP BY 1, 2",
        (start_ms, cell_ms, *args, *names),
    )
    for entity, i, score in rows:
        cells[str(entity)].append((int(i), float(score)))
    return len(top), [Lane(n, float(m), tuple(sorted(cells[n]))) for n, m in page]


@dataclass(frozen=True, slots=True)
class AnomalyRow:
    """An anomaly record as the anomalies table shows it."""

    id: str
    time: datetime
    user: str
    hosts: tuple[str, ...]
    processes: tuple[str, ...]
    score: float
    initial_score: float
    probability: float
    typical: float | None
    actual: float | None
    influencers: tuple[tuple[str, tuple[str, ...]], ...]
    why: str


def anomalies_page(
    store: Store, job_id: str, start_ms: int, end_ms: int,
    *, user: str | None = None, host: str | None = None, min_score: float = 0.0,
    offset: int = 0, limit: int = 25, cache: FleetCache | None = None,
) -> tuple[int, tuple[AnomalyRow, ...]]:  # fmt: skip
    """Records in [start, end) (bucket time), best first, each with its short explanation."""
    where = (
        "r.job_id = ? AND r.result_type = 'record' AND r.is_interim = 0 AND "
        "r.timestamp_ms >= ? AND r.timestamp_ms < ? AND r.score >= ?"
    )
    args: list[Any] = [job_id, start_ms, end_ms, min_score]
    table = "results r INDEXED BY results_records_by_time"
    if user:
        where += " AND r.entity = ?"
        args.append(user)
        table = "results r INDEXED BY results_by_entity"
    if host:
        where += " AND EXISTS (SELECT 1 FROM json_each(r.doc, '$.\"host.name\"') WHERE value = ?)"
        args.append(host)
    total = store.execute(f"SELECT count(*) FROM {table} WHERE {where}", args).fetchone()
    # the page's rows picked from the index alone (rowid breaks ties), then read
    rows = store.execute(
        f"SELECT x.id, x.doc, d.doc FROM (SELECT r.rowid AS rid FROM {table} WHERE {where} "
        "ORDER BY r.score DESC, r.timestamp_ms, r.rowid LIMIT ? OFFSET ?) page "
        "JOIN results x ON x.rowid = page.rid LEFT JOIN record_details d ON d.id = x.id "
        "ORDER BY x.score DESC, x.timestamp_ms, x.rowid",
        [*args, limit, offset],
    ).fetchall()
    cache = cache or FleetCache()
    out = []
    for rid, raw, details in rows:
        doc = orjson.loads(raw)
        why = explain_record(store, doc, orjson.loads(details) if details else None, cache)
        out.append(anomaly_row(str(rid), doc, why.summary))
    return int(total[0]), tuple(out)


def anomaly_row(record_id: str, doc: dict[str, Any], why: str) -> AnomalyRow:
    typical, actual = doc.get("typical") or [], doc.get("actual") or []
    return AnomalyRow(
        record_id,
        from_epoch_ms(int(doc["timestamp"])),
        str(doc.get("by_field_value", "")),
        tuple(str(h) for h in doc.get("host.name") or ()),
        tuple(str(p) for p in doc.get("process.name") or ()),
        float(doc.get("record_score", 0.0)),
        float(doc.get("initial_record_score", 0.0)),
        float(doc.get("probability", 1.0)),
        float(typical[0]) if typical else None,
        float(actual[0]) if actual else None,
        tuple(
            (str(i["influencer_field_name"]), tuple(str(v) for v in i["influencer_field_values"]))
            for i in doc.get("influencers") or ()
        ),
        why,
    )
