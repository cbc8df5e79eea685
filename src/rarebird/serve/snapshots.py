"""Model snapshots: kept periodically, listed, and reverted to (Elastic's revert-model-snapshot).

``rarebird serve`` takes a snapshot of the job's whole state each time another
``snapshots.interval`` of data time has been modelled (and when it stops), in the same
transaction as everything else. A snapshot's id is the end of the data it covers, in epoch
seconds (Elastic's ids are epoch seconds too); its ``timestamp`` is that instant,
``latest_result_time_stamp`` the start of the last final bucket. Retention is Elastic's:
snapshots are kept ``retention_days`` (``model_snapshot_retention_days``), and those older than
``daily_retention_after_days`` are thinned to the first of each day; the newest and those
marked ``retain`` are always kept.

Reverting (:func:`revert_snapshot`, ``rarebird snapshots revert ID``; the service must be
stopped, as Elastic requires the job to be closed):

- by default the model (the rare model and the normalisers) goes back to the snapshot, and
  nothing else: the job's ``data_counts`` are not reverted, results stay, and the job goes on
  with new data only -- "the job will not accept input data that is older than the current
  time" (Elastic's documentation);
- with ``delete_intervening_results`` the results after the snapshot are deleted (with the kept
  events and rule runs after it) and the service goes back to where it was at the snapshot:
  its input positions too, so the data since then is read again from the followed files
  (those still there) and modelled afresh. Alerts are never deleted; the rule re-run over the
  re-read data does not duplicate them (alert ids are deterministic);
- ``empty`` as the id starts the model from scratch (with ``delete_intervening_results``: all
  results go and the inputs are read again from the start, as on a first start).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from rarebird.detectors.aggregate import Normalizers
from rarebird.detectors.rare import RareModel
from rarebird.errors import RarebirdError, StateError
from rarebird.job import STATE_VERSION
from rarebird.serve.state import ServeState, load_serve_state, replace_pending, save_serve_state
from rarebird.store.sqlite import Store, register_migrations
from rarebird.timeutil import from_epoch_ms, iso

EMPTY = "empty"

register_migrations(
    "snapshots",
    [
        """
        CREATE TABLE model_snapshots (
            job_id            TEXT NOT NULL,
            snapshot_id       TEXT NOT NULL,
            timestamp_ms      INTEGER NOT NULL,
            latest_record_ms  INTEGER,
            latest_result_ms  INTEGER,
            created           TEXT NOT NULL,
            description       TEXT NOT NULL,
            retain            INTEGER NOT NULL DEFAULT 0,
            state             TEXT NOT NULL,
            service           TEXT,
            PRIMARY KEY (job_id, snapshot_id)
        );
        CREATE INDEX model_snapshots_by_time ON model_snapshots (job_id, timestamp_ms);
        """,
    ],
)


class SnapshotError(RarebirdError):
    """A snapshot that does not exist, or a revert that cannot be done."""


@dataclass(frozen=True)
class Snapshot:
    """One model snapshot (Elastic's ``model_snapshot`` fields)."""

    job_id: str
    snapshot_id: str
    timestamp: datetime
    latest_record_time: datetime | None
    latest_result_time: datetime | None
    created: str
    description: str
    retain: bool
    state_bytes: int
    memory_status: str
    model_bytes: int
    by_field_count: int
    has_service_state: bool

    def to_doc(self) -> dict[str, Any]:
        """As Elastic's get-model-snapshots API lists a snapshot."""
        return {
            "job_id": self.job_id,
            "snapshot_id": self.snapshot_id,
            "timestamp": iso(self.timestamp),
            "description": self.description,
            "latest_record_time_stamp": iso(self.latest_record_time) if self.latest_record_time else None,
            "latest_result_time_stamp": iso(self.latest_result_time) if self.latest_result_time else None,
            "retain": self.retain,
            "snapshot_doc_count": 1,
            "model_size_stats": {
                "model_bytes": self.model_bytes,
                "memory_status": self.memory_status,
                "total_by_field_count": self.by_field_count,
            },
            "created": self.created,
            "state_bytes": self.state_bytes,
        }  # fmt: skip


def take_snapshot(
    store: Store,
    job_state: dict[str, Any],
    service: ServeState | None,
    pending: Sequence[tuple[int, int, str, str]],
    *,
    created: datetime,
    description: str,
) -> Snapshot | None:
    """Keep the job's state (and the service's position) now. None before any final bucket."""
    stats = job_state["stats"]
    end = stats.get("last_finalised_bucket_end")
    if end is None:
        return None
    span = int(job_state["config"]["bucket_span_s"])
    timestamp_ms = int(end * 1000)
    latest = stats.get("latest_record_timestamp")
    service_doc = None
    if service is not None:
        service_doc = orjson.dumps(
            {"state": orjson.loads(service.to_json()), "pending": list(pending)}
        ).decode()
    state_text = orjson.dumps(job_state).decode()
    snapshot_id = str(int(end))
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO model_snapshots (job_id, snapshot_id, timestamp_ms, "
            "latest_record_ms, latest_result_ms, created, description, retain, state, service) "
            "VALUES (?,?,?,?,?,?,?,0,?,?)",
            (job_state["job_id"], snapshot_id, timestamp_ms,
             None if latest is None else int(latest * 1000), timestamp_ms - span * 1000,
             iso(created), description, state_text, service_doc),
        )  # fmt: skip
    return get_snapshot(store, job_state["job_id"], snapshot_id)


def _from_row(row: tuple[Any, ...]) -> Snapshot:
    job_id, sid, ts, latest_rec, latest_res, created, desc, retain, state, has_service = row
    stats = orjson.loads(state)["stats"]
    return Snapshot(
        job_id=job_id,
        snapshot_id=sid,
        timestamp=from_epoch_ms(ts),
        latest_record_time=None if latest_rec is None else from_epoch_ms(latest_rec),
        latest_result_time=None if latest_res is None else from_epoch_ms(latest_res),
        created=created,
        description=desc,
        retain=bool(retain),
        state_bytes=len(state),
        memory_status=str(stats.get("memory_status", "ok")),
        model_bytes=int(stats.get("model_bytes", 0)),
        by_field_count=int(stats.get("total_by_field_count", 0)),
        has_service_state=bool(has_service),
    )


_COLUMNS = (
    "job_id, snapshot_id, timestamp_ms, latest_record_ms, latest_result_ms, created, "
    "description, retain, state, service IS NOT NULL"
)


def list_snapshots(store: Store, job_id: str | None = None) -> list[Snapshot]:
    """Snapshots, oldest first."""
    sql = f"SELECT {_COLUMNS} FROM model_snapshots"
    args: list[Any] = []
    if job_id is not None:
        sql += " WHERE job_id = ?"
        args.append(job_id)
    sql += " ORDER BY job_id, timestamp_ms"
    return [_from_row(r) for r in store.conn.execute(sql, args)]


def get_snapshot(store: Store, job_id: str, snapshot_id: str) -> Snapshot:
    row = store.conn.execute(
        f"SELECT {_COLUMNS} FROM model_snapshots WHERE job_id = ? AND snapshot_id = ?",
        (job_id, snapshot_id),
    ).fetchone()
    if row is None:
        raise SnapshotError(f"job {job_id!r} has no model snapshot {snapshot_id!r}")
    return _from_row(row)


def apply_retention(
    store: Store, job_id: str, *, retention_days: int, daily_after_days: int
) -> list[str]:
    """Delete snapshots past retention (relative to the newest); returns the deleted ids."""
    rows = list(
        store.conn.execute(
            "SELECT snapshot_id, timestamp_ms, retain FROM model_snapshots WHERE job_id = ? "
            "ORDER BY timestamp_ms",
            (job_id,),
        )
    )
    if len(rows) < 2:
        return []
    newest = rows[-1][1]
    day = 86_400_000
    delete: list[str] = []
    seen_days: set[int] = set()
    for sid, ts, retain in rows[:-1]:
        if retain:
            continue
        age = newest - ts
        if age > retention_days * day:
            delete.append(sid)
        elif age > daily_after_days * day:
            if ts // day in seen_days:
                delete.append(sid)
            seen_days.add(ts // day)
    if delete:
        with store.transaction() as conn:
            conn.executemany(
                "DELETE FROM model_snapshots WHERE job_id = ? AND snapshot_id = ?",
                [(job_id, sid) for sid in delete],
            )
    return delete


def _job_state(store: Store, job_id: str) -> dict[str, Any] | None:
    row = store.conn.execute(
        "SELECT version, state FROM job_state WHERE job_id = ?", (job_id,)
    ).fetchone()
    if row is None:
        return None
    if row[0] != STATE_VERSION:
        raise StateError(f"job {job_id!r} state is version {row[0]}; expected {STATE_VERSION}")
    state: dict[str, Any] = orjson.loads(row[1])
    return state


def _write_job_state(store: Store, job_id: str, state: dict[str, Any], updated: str) -> None:
    store.conn.execute(
        "INSERT INTO job_state (job_id, version, state, updated) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(job_id) DO UPDATE SET version = excluded.version, state = excluded.state, "
        "updated = excluded.updated",
        (job_id, STATE_VERSION, orjson.dumps(state).decode(), updated),
    )


@dataclass(frozen=True)
class RevertOutcome:
    """What a revert did."""

    job_id: str
    snapshot_id: str
    model_time: datetime | None
    deleted_results: int
    deleted_events: int
    deleted_rule_runs: int
    rewound_inputs: bool


def revert_snapshot(
    store: Store,
    job_id: str,
    snapshot_id: str,
    *,
    delete_intervening_results: bool = False,
    now: datetime,
) -> RevertOutcome:
    """Revert the job's model to a snapshot (see the module doc). One transaction."""
    current = _job_state(store, job_id)
    if current is None:
        raise SnapshotError(f"the store has no job {job_id!r}")
    service: dict[str, Any] | None = None
    if snapshot_id == EMPTY:
        span = int(current["config"]["bucket_span_s"])
        snap_state = {
            **current,
            "model": RareModel(span).to_state(),
            "normalizers": Normalizers.create(span).to_state(),
        }
        cut_ms: int | None = None
    else:
        row = store.conn.execute(
            "SELECT state, service, timestamp_ms FROM model_snapshots "
            "WHERE job_id = ? AND snapshot_id = ?",
            (job_id, snapshot_id),
        ).fetchone()
        if row is None:
            raise SnapshotError(f"job {job_id!r} has no model snapshot {snapshot_id!r}")
        snap_state = orjson.loads(row[0])
        service = orjson.loads(row[1]) if row[1] else None
        cut_ms = int(row[2])
    if snap_state.get("config") != current.get("config"):
        raise SnapshotError(
            f"snapshot {snapshot_id!r} was taken with another job definition; cannot revert"
        )
    deleted_results = deleted_events = deleted_runs = 0
    rewound = False
    with store.transaction() as conn:
        if not delete_intervening_results:
            new_state = {**current, "model": snap_state["model"],
                         "normalizers": snap_state["normalizers"]}  # fmt: skip
            _write_job_state(store, job_id, new_state, iso(now))
        else:
            serve = load_serve_state(store, job_id)
            if snapshot_id == EMPTY:
                conn.execute("DELETE FROM job_state WHERE job_id = ?", (job_id,))
                cut_ms = None
            else:
                _write_job_state(store, job_id, snap_state, iso(now))
            where = "job_id = ? AND timestamp_ms >= ?"
            args: list[Any] = [job_id, -(2**62) if cut_ms is None else cut_ms]
            deleted_results = conn.execute(f"DELETE FROM results WHERE {where}", args).rowcount
            deleted_results += conn.execute(
                "DELETE FROM results WHERE job_id = ? AND is_interim = 1", (job_id,)
            ).rowcount
            if serve is not None:
                restored = ServeState()
                pending: list[tuple[int, int, str, str]] = []
                if service is not None:
                    restored = ServeState(**{k: v for k, v in service["state"].items()
                                             if k != "version"})  # fmt: skip
                    pending = [(int(p[0]), int(p[1]), str(p[2]), str(p[3]))
                               for p in service["pending"]]  # fmt: skip
                restored.first_start = serve.first_start
                restored.rule_uuid = serve.rule_uuid
                restored.backfill_from_ms = serve.backfill_from_ms
                restored.seq = max(serve.seq, restored.seq)
                if snapshot_id == EMPTY:
                    restored.next_run_ms = None
                restored.last_snapshot_ms = None if cut_ms is None else cut_ms
                events_from = restored.frontier_ms
                deleted_events = conn.execute(
                    "DELETE FROM events WHERE job_id = ? AND timestamp_ms >= ?",
                    (job_id, events_from if events_from is not None else -(2**62)),
                ).rowcount
                if restored.next_run_ms is not None or snapshot_id == EMPTY:
                    deleted_runs = _delete_rule_runs(store, serve.rule_uuid, restored.next_run_ms)
                save_serve_state(store, job_id, restored, iso(now))
                replace_pending(store, job_id, pending)
                conn.execute("DELETE FROM serve_interim WHERE job_id = ? AND status = 'interim'",
                             (job_id,))  # fmt: skip
                rewound = True
    model_time = None
    if snapshot_id != EMPTY and cut_ms is not None:
        model_time = from_epoch_ms(cut_ms)
    return RevertOutcome(job_id, snapshot_id, model_time, deleted_results, deleted_events,
                         deleted_runs, rewound)  # fmt: skip


def _delete_rule_runs(store: Store, rule_uuid: str, from_ms: int | None) -> int:
    """The service's rule runs at or after ``from_ms`` (all when None)."""
    have = store.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'rule_runs'"
    ).fetchone()
    if have is None or not rule_uuid:
        return 0
    cur = store.conn.execute(
        "DELETE FROM rule_runs WHERE rule_uuid = ? AND started_ms >= ?",
        (rule_uuid, from_ms if from_ms is not None else -(2**62)),
    )
    return cur.rowcount
