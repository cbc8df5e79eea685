"""What ``rarebird serve`` keeps in the store besides the job's own state, results and alerts.

Tables (component ``serve``):

``serve_state``    one row per job: the service's position as versioned JSON -- the datafeed
                   frontier (every event before it has been given to the job), the next rule
                   run, the input positions, the sequence counter
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

from dataclasses import dataclass, field
from typing import Any

import orjson

from rarebird.errors import StateError
from rarebird.store.sqlite import Store, register_migrations

SERVE_STATE_VERSION = 1

register_migrations(
    "serve",
    [
        """
        CREATE TABLE serve_state (
            job_id   TEXT PRIMARY KEY,
            state    TEXT NOT NULL,
            updated  TEXT NOT NULL
        );
        CREATE TABLE serve_pending (
            seq      INTEGER PRIMARY KEY,
            job_id   TEXT NOT NULL,
            ts_ms    INTEGER NOT NULL,
            source   TEXT NOT NULL,
            doc      TEXT NOT NULL
        );
        CREATE INDEX serve_pending_by_job ON serve_pending (job_id, ts_ms);
        CREATE TABLE serve_late (
            job_id         TEXT NOT NULL,
            source         TEXT NOT NULL,
            bucket_ms      INTEGER NOT NULL,
            count          INTEGER NOT NULL,
            first_seen_ms  INTEGER NOT NULL,
            last_seen_ms   INTEGER NOT NULL,
            PRIMARY KEY (job_id, source, bucket_ms)
        );
        CREATE TABLE serve_gaps (
            job_id    TEXT NOT NULL,
            source    TEXT NOT NULL,
            start_ms  INTEGER NOT NULL,
            end_ms    INTEGER,
            PRIMARY KEY (job_id, source, start_ms)
        );
        CREATE TABLE serve_interim (
            alert_id       TEXT PRIMARY KEY,
            job_id         TEXT NOT NULL,
            record_id      TEXT NOT NULL,
            bucket_ms      INTEGER NOT NULL,
            interim_score  REAL NOT NULL,
            status         TEXT NOT NULL,
            final_score    REAL
        );
        CREATE INDEX serve_interim_by_bucket ON serve_interim (job_id, bucket_ms, status);
        CREATE TABLE serve_outbox (
            seq       INTEGER PRIMARY KEY AUTOINCREMENT,
            alert_id  TEXT NOT NULL,
            revision  INTEGER NOT NULL,
            doc       TEXT NOT NULL
        );
        CREATE TABLE serve_batches (
            batch_id     TEXT PRIMARY KEY,
            job_id       TEXT NOT NULL,
            received_ms  INTEGER NOT NULL,
            result       TEXT NOT NULL
        );
        """,
    ],
)


@dataclass
class ServeState:
    """The service's own position, saved with every commit."""

    #: every event with a timestamp before this (epoch ms) has been given to the job
    frontier_ms: int | None = None
    #: the next scheduled rule run (epoch ms); None until decided
    next_run_ms: int | None = None
    #: events older than this (epoch ms) are not modelled (start-up learning window)
    backfill_from_ms: int | None = None
    #: when the service first started (ISO-8601)
    first_start: str = ""
    #: sequence number of the next pending event
    seq: int = 0
    #: end (epoch ms) of the data covered by the last model snapshot
    last_snapshot_ms: int | None = None
    #: the rule the service runs (its uuid)
    rule_uuid: str = ""
    #: input positions, by source name
    sources: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        doc = {"version": SERVE_STATE_VERSION, **self.__dict__}
        return orjson.dumps(doc).decode()

    @classmethod
    def from_json(cls, text: str) -> ServeState:
        doc = orjson.loads(text)
        version = doc.pop("version", None)
        if version != SERVE_STATE_VERSION:
            raise StateError(
                f"the service state is version {version}; this rarebird reads "
                f"version {SERVE_STATE_VERSION}"
            )
        return cls(**doc)


def load_serve_state(store: Store, job_id: str) -> ServeState | None:
    row = store.conn.execute("SELECT state FROM serve_state WHERE job_id = ?", (job_id,)).fetchone()
    return None if row is None else ServeState.from_json(row[0])


def save_serve_state(store: Store, job_id: str, state: ServeState, updated: str) -> None:
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO serve_state (job_id, state, updated) VALUES (?, ?, ?) "
            "ON CONFLICT(job_id) DO UPDATE SET state = excluded.state, updated = excluded.updated",
            (job_id, state.to_json(), updated),
        )


def pending_rows(store: Store, job_id: str) -> list[tuple[int, int, str, str]]:
    """(seq, ts_ms, source, doc) of the pending events, in sequence order."""
    return list(
        store.conn.execute(
            "SELECT seq, ts_ms, source, doc FROM serve_pending WHERE job_id = ? ORDER BY seq",
            (job_id,),
        )
    )


def replace_pending(store: Store, job_id: str, rows: list[tuple[int, int, str, str]]) -> None:
    with store.transaction() as conn:
        conn.execute("DELETE FROM serve_pending WHERE job_id = ?", (job_id,))
        conn.executemany(
            "INSERT INTO serve_pending (seq, job_id, ts_ms, source, doc) VALUES (?, ?, ?, ?, ?)",
            [(seq, job_id, ts, src, doc) for seq, ts, src, doc in rows],
        )


@dataclass(frozen=True)
class LateReport:
    """Late events of one source in one bucket."""

    source: str
    bucket_ms: int
    count: int
    first_seen_ms: int
    last_seen_ms: int


def late_reports(store: Store, job_id: str, limit: int = 100) -> list[LateReport]:
    rows = store.conn.execute(
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


def gaps(store: Store, job_id: str, limit: int = 100) -> list[Gap]:
    rows = store.conn.execute(
        "SELECT source, start_ms, end_ms FROM serve_gaps WHERE job_id = ? "
        "ORDER BY start_ms DESC LIMIT ?",
        (job_id, limit),
    )
    return [Gap(*row) for row in rows]
