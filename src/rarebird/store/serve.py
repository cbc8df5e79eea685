"""What ``rarebird serve`` keeps in the store besides the job's own state, results and alerts.

Tables (component ``serve``):

``serve_state``    one row per job: the service's position as versioned JSON text (the
                   engine's :class:`~rarebird.run.state.EngineState`)
``serve_pending``  events read (and matched by the datafeed query) but not yet given to the
                   job because ``query_delay`` has not passed their time
``serve_late``     events that came after the datafeed had searched past their time, per
                   source and bucket (Elastic's "missed N documents due to ingest latency")
``serve_gaps``     sources that went quiet, and when they came back
``serve_interim``  alerts made early from interim results, until the final record confirms
                   (or does not confirm) them
``serve_outbox``   alerts committed but not yet handed to the extra outputs (sinks)
``serve_batches``  HTTP ingest batch ids already accepted (exactly-once with a batch id)

Everything the service changes is written in one transaction with the job's state, its
results and the alerts of the rule runs, so a crash leaves the store at a commit boundary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import orjson

from rarebird.alerts.model import Alert
from rarebird.store.sqlite import Store

#: A pending event as stored: (sequence number, time in epoch ms, source, ECS document JSON)
PendingRow = tuple[int, int, str, str]


# --- the service's position -----------------------------------------------------------------


def load_service_state(store: Store, job_id: str) -> str | None:
    value = store.scalar("SELECT state FROM serve_state WHERE job_id = ?", (job_id,))
    return None if value is None else str(value)


def save_service_state(store: Store, job_id: str, text: str, updated: str) -> None:
    with store.transaction():
        store.execute(
            "INSERT INTO serve_state (job_id, state, updated) VALUES (?, ?, ?) "
            "ON CONFLICT(job_id) DO UPDATE SET state = excluded.state, updated = excluded.updated",
            (job_id, text, updated),
        )


# --- pending events -----------------------------------------------------------------------


def pending_rows(store: Store, job_id: str) -> list[PendingRow]:
    """The pending events, in sequence order."""
    rows = store.all(
        "SELECT seq, ts_ms, source, doc FROM serve_pending WHERE job_id = ? ORDER BY seq",
        (job_id,),
    )
    return [(int(s), int(t), str(src), str(d)) for s, t, src, d in rows]


def count_pending(store: Store, job_id: str) -> int:
    return int(store.scalar("SELECT count(*) FROM serve_pending WHERE job_id = ?", (job_id,)))


def add_pending(store: Store, job_id: str, rows: Iterable[PendingRow]) -> None:
    with store.transaction():
        store.executemany(
            "INSERT INTO serve_pending (seq, job_id, ts_ms, source, doc) VALUES (?,?,?,?,?)",
            [(seq, job_id, ts, src, doc) for seq, ts, src, doc in rows],
        )


def remove_pending(store: Store, seqs: Iterable[int]) -> None:
    with store.transaction():
        store.executemany("DELETE FROM serve_pending WHERE seq = ?", [(s,) for s in seqs])


def replace_pending(store: Store, job_id: str, rows: Sequence[PendingRow]) -> None:
    with store.transaction():
        store.execute("DELETE FROM serve_pending WHERE job_id = ?", (job_id,))
        add_pending(store, job_id, rows)


# --- late events and gaps -----------------------------------------------------------------


@dataclass(frozen=True)
class LateReport:
    """Late events of one source in one bucket."""

    source: str
    bucket_ms: int
    count: int
    first_seen_ms: int
    last_seen_ms: int


def add_late(store: Store, job_id: str, counts: Mapping[tuple[str, int], int], now_ms: int) -> None:
    """Count late events, per (source, bucket start in epoch ms)."""
    with store.transaction():
        store.executemany(
            "INSERT INTO serve_late (job_id, source, bucket_ms, count, first_seen_ms, "
            "last_seen_ms) VALUES (?,?,?,?,?,?) ON CONFLICT(job_id, source, bucket_ms) "
            "DO UPDATE SET count = count + excluded.count, last_seen_ms = excluded.last_seen_ms",
            [(job_id, src, b, n, now_ms, now_ms) for (src, b), n in counts.items()],
        )


def late_reports(store: Store, job_id: str, limit: int = 100) -> list[LateReport]:
    rows = store.all(
        "SELECT source, bucket_ms, count, first_seen_ms, last_seen_ms FROM serve_late "
        "WHERE job_id = ? ORDER BY bucket_ms DESC, source LIMIT ?",
        (job_id, limit),
    )
    return [LateReport(*row) for row in rows]


@dataclass(frozen=True)
class Gap:
    """A source that sent nothing from ``start_ms`` (wall clock) until ``end_ms`` (None:
    still quiet)."""

    source: str
    start_ms: int
    end_ms: int | None


def record_gap(store: Store, job_id: str, source: str, start_ms: int, end_ms: int | None) -> None:
    with store.transaction():
        store.execute(
            "INSERT INTO serve_gaps (job_id, source, start_ms, end_ms) VALUES (?,?,?,?) "
            "ON CONFLICT(job_id, source, start_ms) DO UPDATE SET end_ms = excluded.end_ms",
            (job_id, source, start_ms, end_ms),
        )


def gaps(store: Store, job_id: str, limit: int = 100) -> list[Gap]:
    rows = store.all(
        "SELECT source, start_ms, end_ms FROM serve_gaps WHERE job_id = ? "
        "ORDER BY start_ms DESC LIMIT ?",
        (job_id, limit),
    )
    return [Gap(*row) for row in rows]


# --- early-warning alerts -----------------------------------------------------------------


@dataclass(frozen=True)
class InterimAlert:
    """An alert made from an interim record, waiting for its bucket to be final."""

    alert_id: str
    record_id: str
    interim_score: float


def add_interim(
    store: Store, *, alert_id: str, job_id: str, record_id: str, bucket_ms: int, score: float
) -> None:
    with store.transaction():
        store.execute(
            "INSERT OR REPLACE INTO serve_interim (alert_id, job_id, record_id, bucket_ms, "
            "interim_score, status, final_score) VALUES (?,?,?,?,?,'interim',NULL)",
            (alert_id, job_id, record_id, bucket_ms, score),
        )


def interim_in_bucket(store: Store, job_id: str, bucket_ms: int) -> list[InterimAlert]:
    rows = store.all(
        "SELECT alert_id, record_id, interim_score FROM serve_interim "
        "WHERE job_id = ? AND bucket_ms = ? AND status = 'interim'",
        (job_id, bucket_ms),
    )
    return [InterimAlert(str(a), str(r), float(s)) for a, r, s in rows]


def set_interim_outcome(
    store: Store, alert_id: str, status: str, final_score: float | None
) -> None:
    with store.transaction():
        store.execute(
            "UPDATE serve_interim SET status = ?, final_score = ? WHERE alert_id = ?",
            (status, final_score, alert_id),
        )


def interim_counts(store: Store, job_id: str) -> dict[str, int]:
    """Early-warning alerts by status (interim, confirmed, not_confirmed)."""
    rows = store.all(
        "SELECT status, count(*) FROM serve_interim WHERE job_id = ? GROUP BY status", (job_id,)
    )
    return {str(s): int(n) for s, n in rows}


def delete_waiting_interim(store: Store, job_id: str) -> None:
    """Forget early-warning alerts still waiting for their final record (a revert)."""
    with store.transaction():
        store.execute(
            "DELETE FROM serve_interim WHERE job_id = ? AND status = 'interim'", (job_id,)
        )


# --- the outbox ---------------------------------------------------------------------------


def add_to_outbox(store: Store, alerts: Iterable[Alert]) -> None:
    with store.transaction():
        store.executemany(
            "INSERT INTO serve_outbox (alert_id, revision, doc) VALUES (?,?,?)",
            [(a.id, a.revision, orjson.dumps(a.doc).decode()) for a in alerts],
        )


def outbox_batch(store: Store, limit: int) -> list[tuple[int, Alert]]:
    """The oldest alerts waiting for the outputs: (sequence number, alert)."""
    rows = store.all(
        "SELECT seq, alert_id, revision, doc FROM serve_outbox ORDER BY seq LIMIT ?", (limit,)
    )
    return [(int(seq), Alert(str(aid), orjson.loads(doc), int(rev))) for seq, aid, rev, doc in rows]


def delete_outbox_through(store: Store, seq: int) -> None:
    with store.transaction():
        store.execute("DELETE FROM serve_outbox WHERE seq <= ?", (seq,))


# --- ingest batches -----------------------------------------------------------------------


def batch_result(store: Store, batch_id: str) -> str | None:
    """The answer given to an ingest batch id already accepted (JSON text), if any."""
    value = store.scalar("SELECT result FROM serve_batches WHERE batch_id = ?", (batch_id,))
    return None if value is None else str(value)


def record_batch(store: Store, batch_id: str, job_id: str, received_ms: int, result: str) -> None:
    with store.transaction():
        store.execute(
            "INSERT INTO serve_batches (batch_id, job_id, received_ms, result) VALUES (?,?,?,?)",
            (batch_id, job_id, received_ms, result),
        )
