"""Model snapshots: taken periodically in data time and at a clean stop, listed, thinned by
Elastic's retention, and reverted to (model only, or with delete_intervening_results, which
rewinds the service so the data since the snapshot is read and modelled again)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from rarebird.cli import main
from rarebird.clock import FixedClock
from rarebird.definitions.service import SnapshotConfig
from rarebird.run.snapshots import apply_retention, take_snapshot
from rarebird.store import open_store
from rarebird.store.alerts import list_alerts
from rarebird.store.results import search_results
from rarebird.store.snapshots import list_snapshots
from tests.serve_support import JOB_ID, event, history, in_process, turn, write_lines

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def job_state(store_path: Path) -> dict[str, Any]:
    store = open_store(str(store_path))
    try:
        row = store.execute("SELECT state FROM job_state").fetchone()
        return dict(orjson.loads(row[0]))
    finally:
        store.close()


def snapshot_state(store_path: Path, snapshot_id: str) -> dict[str, Any]:
    store = open_store(str(store_path))
    try:
        row = store.execute(
            "SELECT state FROM model_snapshots WHERE snapshot_id = ?", (snapshot_id,)
        ).fetchone()
        return dict(orjson.loads(row[0]))
    finally:
        store.close()


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def test_snapshots_are_taken_every_interval_of_data_and_at_a_clean_stop(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    live = tmp_path / "events.ndjson"
    write_lines(live, history(T0, 300), "w")  # 25 minutes of data
    service, log = in_process(tmp_path, clock, [live],
                              snapshots=SnapshotConfig(interval=timedelta(minutes=5)))  # fmt: skip
    service.catchup_budget = 8192
    turn(service, clock)
    service.close()
    with open_store(str(tmp_path / "serve.db")) as store:
        snaps = list_snapshots(store, JOB_ID)
    periodic, last = snaps[:-1], snaps[-1]
    # one each time the data crossed a 5-minute boundary (the first boundary starts the count)
    assert len(periodic) == 4
    ends = [s.timestamp for s in periodic]
    assert all(b - a >= timedelta(minutes=5) for a, b in zip(ends, ends[1:], strict=False))
    for s in snaps:
        assert s.snapshot_id == str(int(s.timestamp.timestamp()))
        assert s.latest_result_time == s.timestamp - timedelta(seconds=5)
    assert last.description.startswith("State persisted due to job close at ")
    assert last.timestamp == at(-5)  # at 12:00:00 the bucket 11:59:55-12:00:00 is not yet final
    assert [e["snapshot_id"] for e in log.events("model_snapshot")] == [
        s.snapshot_id for s in snaps
    ]

    out = cli("snapshots", "list", "--store", str(tmp_path / "serve.db"), "--format", "json")
    assert out.exit_code == 0, out.output
    docs = json.loads(out.output)
    assert [d["snapshot_id"] for d in docs] == [s.snapshot_id for s in snaps]
    assert set(docs[0]) >= {
        "job_id", "snapshot_id", "timestamp", "description", "latest_record_time_stamp",
        "latest_result_time_stamp", "retain", "model_size_stats",
    }  # fmt: skip
    assert docs[-1]["model_size_stats"]["total_by_field_count"] == 3
    table = cli("snapshots", "list", "--store", str(tmp_path / "serve.db")).output
    assert table.splitlines()[0].split() == [
        "snapshot_id", "timestamp", "latest", "record", "users", "memory", "description",
    ]  # fmt: skip


def test_retention_keeps_recent_snapshots_one_a_day_after_that_and_none_past_it(
    tmp_path: Path,
) -> None:
    store = open_store(str(tmp_path / "s.db"))
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for hours in range(0, 15 * 24 + 1, 6):  # every 6 hours for 15 days
        end = (start + timedelta(hours=hours)).timestamp()
        state = {"job_id": "j", "config": {"bucket_span_s": 900},
                 "stats": {"last_finalised_bucket_end": end, "latest_record_timestamp": end}}  # fmt: skip
        take_snapshot(store, state, None, [], created=start, description="")
    deleted = apply_retention(store, "j", retention_days=10, daily_after_days=1)
    kept = [s.timestamp for s in list_snapshots(store, "j")]
    newest = start + timedelta(days=15)
    assert kept[-5:] == [newest - timedelta(hours=h) for h in (24, 18, 12, 6, 0)]
    older = kept[:-5]
    assert [t.hour for t in older] == [0] * len(older)  # the first of each day
    assert older[0] == newest - timedelta(days=10)
    assert len(older) == 9
    assert len(deleted) == 61 - len(kept)
    store.close()


def _two_sessions(tmp_path: Path) -> tuple[Path, Path, FixedClock]:
    """Session 1: the history, then a clean stop (snapshot S1 at 12:00:05). Session 2: newcomers
    who alert, then a clean stop (snapshot S2)."""
    clock = FixedClock(T0)
    live = tmp_path / "events.ndjson"
    write_lines(live, history(T0, 300), "w")
    service, _ = in_process(tmp_path, clock, [live])
    turn(service, clock)
    turn(service, clock, seconds=1, times=7)
    service.close()
    docs = []
    for s in range(10, 40):
        docs.append(event(at(s + 0.5), "monitor"))
    docs += [event(at(16), "mallory", host="web-2"), event(at(31), "trudy", host="web-3")]
    write_lines(live, sorted(docs, key=lambda d: str(d["@timestamp"])))
    service, _ = in_process(tmp_path, clock, [live])
    turn(service, clock, seconds=1, times=40)
    service.close()
    return tmp_path / "serve.db", live, clock


def first_close(store_path: Path) -> Any:
    """The snapshot of the first clean stop."""
    with open_store(str(store_path)) as store:
        return next(
            s for s in list_snapshots(store, JOB_ID)
            if s.description.startswith("State persisted due to job close")
        )  # fmt: skip


def test_revert_puts_back_the_model_only_and_keeps_results_and_counts(tmp_path: Path) -> None:
    store_path, _, _ = _two_sessions(tmp_path)
    s1 = first_close(store_path)
    assert s1.timestamp == at(5)
    before = job_state(store_path)
    with open_store(str(store_path)) as store:
        records = search_results(store, "record").total
    assert before["stats"]["total_by_field_count"] == 5  # mallory and trudy learnt
    out = cli("snapshots", "revert", "--store", str(store_path), s1.snapshot_id)
    assert out.exit_code == 0, out.output
    assert out.output == (
        f"rarebird: job {JOB_ID} reverted to snapshot {s1.snapshot_id} "
        f"(model as of 2026-03-02T12:00:05.000Z)\n"
    )
    after = job_state(store_path)
    snap = snapshot_state(store_path, s1.snapshot_id)
    assert after["model"] == snap["model"]
    assert after["normalizers"] == snap["normalizers"]
    assert after["stats"] == before["stats"]  # data_counts are not reverted (as Elastic)
    with open_store(str(store_path)) as store:
        assert search_results(store, "record").total == records


def test_revert_with_delete_intervening_results_reads_the_data_again_without_new_alerts(
    tmp_path: Path,
) -> None:
    store_path, live, clock = _two_sessions(tmp_path)
    s1 = first_close(store_path)
    assert s1.timestamp == at(5)
    store = open_store(str(store_path))
    records_before = dict(search_results(store, "record", order="time").hits)
    alerts_before = {a.id: a.doc for a in list_alerts(store)}
    store.close()
    assert len(alerts_before) >= 1

    out = cli("snapshots", "revert", "--store", str(store_path), "--delete-intervening-results",
              s1.snapshot_id)  # fmt: skip
    assert out.exit_code == 0, out.output
    store = open_store(str(store_path))
    assert search_results(store, "record", start=at(5)).total == 0
    assert search_results(store, "bucket", start=at(5)).total == 0
    store.close()
    assert job_state(store_path) == snapshot_state(store_path, s1.snapshot_id)

    # started again, the service reads the file from where it was at the snapshot
    service, log = in_process(tmp_path, clock, [live])
    turn(service, clock, seconds=1, times=3)
    records_after = dict(search_results(service.store, "record", order="time").hits)
    alerts_after = {a.id: a.doc for a in list_alerts(service.store)}
    service.close()
    assert sorted(records_after) == sorted(records_before)
    for rid, doc in records_before.items():
        assert records_after[rid]["initial_record_score"] == doc["initial_record_score"]
    assert alerts_after == alerts_before  # the rule ran again over the same records: no new alert


def test_revert_is_refused_while_the_service_runs(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    live = tmp_path / "events.ndjson"
    write_lines(live, history(T0, 20), "w")
    service, _ = in_process(tmp_path, clock, [live])
    turn(service, clock, seconds=10)
    out = cli("snapshots", "revert", "--store", str(tmp_path / "serve.db"), "empty")
    assert out.exit_code == 1
    assert "rarebird serve is running on this store; stop it first" in out.output
    service.close()
    out = cli("snapshots", "revert", "--store", str(tmp_path / "serve.db"), "empty")
    assert out.exit_code == 0, out.output
    assert job_state(tmp_path / "serve.db")["model"]["values"] == []
