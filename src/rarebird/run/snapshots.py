"""Model snapshots: kept periodically, listed, and reverted to (Elastic's revert-model-snapshot).

A live engine takes a snapshot of the job's whole state each time another
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
  results go and the inputs are read again from the start, as on a first start). The job
  stays in the store, as a fresh job with zero counts, so ``status`` and ``snapshots list``
  still find it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson

from rarebird.detectors.aggregate import Normalizers
from rarebird.detectors.rare import RareModel
from rarebird.errors import StateError
from rarebird.job import STATE_VERSION, JobStats
from rarebird.run.state import EngineState
from rarebird.store import Store
from rarebird.store.events import delete_events_since
from rarebird.store.jobs import load_job_state, save_job_state
from rarebird.store.results import delete_results_since
from rarebird.store.rules import delete_rule_runs_since
from rarebird.store.serve import (
    PendingRow,
    delete_waiting_interim,
    load_service_state,
    replace_pending,
    save_service_state,
)
from rarebird.store.snapshots import (
    Snapshot,
    SnapshotError,
    delete_snapshots,
    get_snapshot,
    save_snapshot,
    snapshot_content,
    snapshot_times,
)
from rarebird.timeutil import from_epoch_ms, iso

EMPTY = "empty"


def take_snapshot(
    store: Store,
    job_state: dict[str, Any],
    service: EngineState | None,
    pending: Sequence[PendingRow],
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
        service_doc = orjson.dumps({"state": service.to_doc(), "pending": list(pending)}).decode()
    snapshot_id = str(int(end))
    save_snapshot(
        store, job_id=job_state["job_id"], snapshot_id=snapshot_id, timestamp_ms=timestamp_ms,
        latest_record_ms=None if latest is None else int(latest * 1000),
        latest_result_ms=timestamp_ms - span * 1000, created=iso(created),
        description=description, state=orjson.dumps(job_state).decode(), service=service_doc,
    )  # fmt: skip
    return get_snapshot(store, job_state["job_id"], snapshot_id)


def apply_retention(
    store: Store, job_id: str, *, retention_days: int, daily_after_days: int
) -> list[str]:
    """Delete snapshots past retention (relative to the newest); returns the deleted ids."""
    rows = snapshot_times(store, job_id)
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
        delete_snapshots(store, job_id, delete)
    return delete


def _job_state(store: Store, job_id: str) -> dict[str, Any] | None:
    saved = load_job_state(store, job_id)
    if saved is None:
        return None
    if saved.version != STATE_VERSION:
        raise StateError(
            f"job {job_id!r} state is version {saved.version}; expected {STATE_VERSION}"
        )
    state: dict[str, Any] = orjson.loads(saved.text)
    return state


def _write_job_state(store: Store, job_id: str, state: dict[str, Any], now: datetime) -> None:
    save_job_state(store, job_id, STATE_VERSION, orjson.dumps(state).decode(), iso(now))


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


def _empty_model(state: dict[str, Any]) -> dict[str, Any]:
    """The job's state with a model and normalisers from scratch (counts kept)."""
    span = int(state["config"]["bucket_span_s"])
    return {
        **state,
        "model": RareModel(span).to_state(),
        "normalizers": Normalizers.create(span).to_state(),
    }


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
    cut_ms: int | None = None
    if snapshot_id == EMPTY:
        snap_state = _empty_model(current)
    else:
        content = snapshot_content(store, job_id, snapshot_id)
        snap_state = orjson.loads(content.state)
        service = orjson.loads(content.service) if content.service else None
        cut_ms = content.timestamp_ms
    if snap_state.get("config") != current.get("config"):
        raise SnapshotError(
            f"snapshot {snapshot_id!r} was taken with another job definition; cannot revert"
        )
    deleted_results = deleted_events = deleted_runs = 0
    rewound = False
    with store.transaction():
        if not delete_intervening_results:
            new_state = {**current, "model": snap_state["model"],
                         "normalizers": snap_state["normalizers"]}  # fmt: skip
            _write_job_state(store, job_id, new_state, now)
        else:
            if snapshot_id == EMPTY:
                # a model from scratch that will see the data again from its start: nothing
                # finalised yet, but the job (and its counts so far) is still there
                fresh = _empty_model(current)
                fresh.update(current=None, skip_bucket=None, last_renormalised_s=None)
                fresh["stats"] = asdict(JobStats())
                _write_job_state(store, job_id, fresh, now)
            else:
                _write_job_state(store, job_id, snap_state, now)
            deleted_results = delete_results_since(store, job_id, cut_ms)
            text = load_service_state(store, job_id)
            if text is not None:
                rewound = True
                deleted_events, deleted_runs = _rewind_service(
                    store, job_id, EngineState.from_json(text), service, snapshot_id, cut_ms, now
                )
    model_time = None
    if snapshot_id != EMPTY and cut_ms is not None:
        model_time = from_epoch_ms(cut_ms)
    return RevertOutcome(job_id, snapshot_id, model_time, deleted_results, deleted_events,
                         deleted_runs, rewound)  # fmt: skip


def _rewind_service(
    store: Store,
    job_id: str,
    serve: EngineState,
    service: dict[str, Any] | None,
    snapshot_id: str,
    cut_ms: int | None,
    now: datetime,
) -> tuple[int, int]:
    """Put the service back where it was at the snapshot; (kept events, rule runs) deleted."""
    restored = EngineState()
    pending: list[PendingRow] = []
    if service is not None:
        restored = EngineState.from_doc(service["state"])
        pending = [(int(p[0]), int(p[1]), str(p[2]), str(p[3])) for p in service["pending"]]
    restored.first_start = serve.first_start
    restored.rule_uuid = serve.rule_uuid
    restored.backfill_from_ms = serve.backfill_from_ms
    restored.seq = max(serve.seq, restored.seq)
    if snapshot_id == EMPTY:
        restored.next_run_ms = None
    restored.last_snapshot_ms = cut_ms
    deleted_events = delete_events_since(store, job_id, restored.frontier_ms)
    deleted_runs = 0
    if restored.next_run_ms is not None or snapshot_id == EMPTY:
        deleted_runs = delete_rule_runs_since(store, serve.rule_uuid, restored.next_run_ms)
    save_service_state(store, job_id, restored.to_json(), iso(now))
    replace_pending(store, job_id, pending)
    delete_waiting_interim(store, job_id)
    return deleted_events, deleted_runs
