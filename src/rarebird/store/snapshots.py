"""Model snapshots in the store (table ``model_snapshots``): the job's whole state, and the
service's position, kept at moments of data time (see :mod:`rarebird.run.snapshots`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from rarebird.errors import RarebirdError
from rarebird.store.sqlite import Row, Store
from rarebird.timeutil import from_epoch_ms, iso


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


@dataclass(frozen=True)
class SnapshotContent:
    """What a snapshot holds: the job state and the service position, as JSON text."""

    state: str
    service: str | None
    timestamp_ms: int


def save_snapshot(
    store: Store,
    *,
    job_id: str,
    snapshot_id: str,
    timestamp_ms: int,
    latest_record_ms: int | None,
    latest_result_ms: int | None,
    created: str,
    description: str,
    state: str,
    service: str | None,
) -> None:
    with store.transaction():
        store.execute(
            "INSERT OR REPLACE INTO model_snapshots (job_id, snapshot_id, timestamp_ms, "
            "latest_record_ms, latest_result_ms, created, description, retain, state, service) "
            "VALUES (?,?,?,?,?,?,?,0,?,?)",
            (job_id, snapshot_id, timestamp_ms, latest_record_ms, latest_result_ms, created,
             description, state, service),
        )  # fmt: skip


def _from_row(row: Row) -> Snapshot:
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
    return [_from_row(r) for r in store.all(sql, args)]


def get_snapshot(store: Store, job_id: str, snapshot_id: str) -> Snapshot:
    row = store.one(
        f"SELECT {_COLUMNS} FROM model_snapshots WHERE job_id = ? AND snapshot_id = ?",
        (job_id, snapshot_id),
    )
    if row is None:
        raise SnapshotError(f"job {job_id!r} has no model snapshot {snapshot_id!r}")
    return _from_row(row)


def snapshot_content(store: Store, job_id: str, snapshot_id: str) -> SnapshotContent:
    row = store.one(
        "SELECT state, service, timestamp_ms FROM model_snapshots "
        "WHERE job_id = ? AND snapshot_id = ?",
        (job_id, snapshot_id),
    )
    if row is None:
        raise SnapshotError(f"job {job_id!r} has no model snapshot {snapshot_id!r}")
    return SnapshotContent(str(row[0]), None if row[1] is None else str(row[1]), int(row[2]))


def snapshot_times(store: Store, job_id: str) -> list[tuple[str, int, bool]]:
    """(snapshot id, timestamp in epoch ms, retain), oldest first."""
    rows = store.all(
        "SELECT snapshot_id, timestamp_ms, retain FROM model_snapshots WHERE job_id = ? "
        "ORDER BY timestamp_ms",
        (job_id,),
    )
    return [(str(s), int(t), bool(r)) for s, t, r in rows]


def delete_snapshots(store: Store, job_id: str, snapshot_ids: Sequence[str]) -> None:
    with store.transaction():
        store.executemany(
            "DELETE FROM model_snapshots WHERE job_id = ? AND snapshot_id = ?",
            [(job_id, sid) for sid in snapshot_ids],
        )
