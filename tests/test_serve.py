"""``rarebird serve`` in process, on a clock the test drives: the datafeed frontier and
query_delay, the rule on the wall clock, late events and their report, gaps, start-up learning,
the early warning, the configuration."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from rarebird.alerts import alert_id_for
from rarebird.cli import main
from rarebird.clock import FixedClock
from rarebird.definitions.service import (
    AlertsConfig,
    BackfillConfig,
    config_from_dict,
    example_path,
    load_config,
)
from rarebird.errors import DefinitionError
from rarebird.run.live import MISSED_MESSAGE
from rarebird.store.alerts import list_alerts
from rarebird.store.results import search_results
from tests.serve_support import event, history, in_process, turn, write_lines

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a bucket start, and a rule run instant


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_late_events_are_counted_per_source_and_bucket_and_reported(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    web, db = tmp_path / "web.ndjson", tmp_path / "db.ndjson"
    write_lines(web, history(T0, 60), "w")
    write_lines(db, [event(at(-30), "backup", host="db-1")], "w")
    service, log = in_process(tmp_path, clock, [web, db])
    turn(service, clock, seconds=20)  # live; the datafeed has searched up to 12:00:19
    assert service.engine.frontier == at(19)
    write_lines(web, [event(at(12), "monitor"),  # bucket 12:00:10, final
                      event(at(18.5), "monitor"),  # bucket 12:00:15, not final but searched
                      event(at(19.5), "monitor")])  # on time  # fmt: skip
    write_lines(db, [event(at(3), "backup", host="db-1")])
    turn(service, clock, seconds=0.5)

    rows = service.store.execute(
        "SELECT source, bucket_ms, count FROM serve_late ORDER BY source, bucket_ms"
    ).fetchall()
    ms = int(T0.timestamp() * 1000)
    assert rows == [(str(db), ms, 1), (str(web), ms + 10_000, 1), (str(web), ms + 15_000, 1)]
    reports = {r["source"]: r for r in log.events("late_events")}
    assert reports[str(web)]["count"] == 2
    assert reports[str(web)]["message"] == (
        "Datafeed has missed 2 documents due to ingest latency, latest bucket with missing "
        "data is [2026-03-02T12:00:15.000Z]. Consider increasing query_delay"
    )
    assert reports[str(db)]["message"] == MISSED_MESSAGE.format(1, "2026-03-02T12:00:00.000Z")
    metrics = service.render_metrics()
    assert f'rarebird_events_late_total{{source="{web}"}} 2' in metrics
    assert 'rarebird_events_dropped_total{reason="late"} 3' in metrics
    # the late events never reached the job; the on-time one waits for the frontier
    processed = service.engine.job.stats.processed_record_count
    assert service.engine.pending_count == 1
    turn(service, clock, seconds=1)
    assert service.engine.job.stats.processed_record_count == processed + 1

    out = CliRunner().invoke(
        main, ["status", "--store", str(tmp_path / "serve.db"), "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert [(r["source"], r["bucket"], r["count"]) for r in doc["late"]] == [
        (str(web), "2026-03-02T12:00:15.000Z", 1),
        (str(web), "2026-03-02T12:00:10.000Z", 1),
        (str(db), "2026-03-02T12:00:00.000Z", 1),
    ]
    text = CliRunner().invoke(main, ["status", "--store", str(tmp_path / "serve.db")]).output
    assert "Late events (missed due to ingest latency), by source and bucket:" in text
    assert f"{web}  2026-03-02T12:00:15.000Z       1" in text
    service.close()


def test_a_bucket_is_final_once_query_delay_has_passed_its_end(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    live = tmp_path / "events.ndjson"
    write_lines(live, history(T0, 20), "w")
    service, _ = in_process(tmp_path, clock, [live])
    turn(service, clock)
    job = service.engine.job
    write_lines(live, [event(at(2), "monitor")])
    turn(service, clock, seconds=5.5)  # bucket 12:00:00-05 ended 0.5 s ago: not final
    assert job.stats.last_finalised_bucket_end == T0.timestamp()
    turn(service, clock, seconds=0.5)  # query_delay (1 s) has passed its end
    assert job.stats.last_finalised_bucket_end == at(5).timestamp()
    service.close()


def test_the_rule_runs_every_interval_on_the_wall_clock_and_after_downtime_every_run_is_made(
    tmp_path: Path,
) -> None:
    clock = FixedClock(T0)
    live = tmp_path / "events.ndjson"
    write_lines(live, history(T0, 20), "w")
    service, _ = in_process(tmp_path, clock, [live])
    turn(service, clock)
    turn(service, clock, seconds=1, times=5)
    clock.advance(timedelta(seconds=30))  # the loop did not turn for 30 s
    turn(service, clock)
    runs = service.store.execute(
        "SELECT started_ms, summary FROM rule_runs ORDER BY started_ms"
    ).fetchall()
    starts = [from_ms for from_ms, _ in runs]
    base = int(T0.timestamp() * 1000)
    assert starts == [base + 2000 * i for i in range(18)]  # 12:00:00 .. 12:00:34, every 2 s
    for _, summary in runs:
        ranges = json.loads(summary)["ranges"]
        assert len(ranges) == 1  # each run over its own range: no gap, no catch-up ranges
    service.close()


def test_the_first_start_learns_the_history_then_starts_the_rule_now(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    live = tmp_path / "events.ndjson"
    docs = history(T0, 300)  # 25 minutes of routine, and a newcomer 10 minutes ago
    docs.append(event(at(-600), "mallory", host="web-2"))
    docs.sort(key=lambda d: str(d["@timestamp"]))
    write_lines(live, docs, "w")
    service, log = in_process(
        tmp_path, clock, [live], backfill=BackfillConfig(max_age=timedelta(minutes=20))
    )
    service.catchup_budget = 8192
    while service.run_once():
        clock.advance(timedelta(seconds=1))
    turn(service, clock)
    job = service.engine.job
    assert log.events("catching_up")[0]["bytes"] == live.stat().st_size
    progress = log.events("backfill_progress")
    assert len(progress) >= 3
    assert [p["percent"] for p in progress] == sorted(p["percent"] for p in progress)
    caught = log.events("caught_up")[0]
    assert caught["bytes_read"] == live.stat().st_size
    # only the last 20 minutes were modelled: 240 buckets, the first (partial) one skipped
    assert job.stats.earliest_record_timestamp >= (T0 - timedelta(minutes=20)).timestamp()
    buckets = search_results(service.store, "bucket", end=T0 - timedelta(seconds=5)).total
    assert buckets == 239
    assert (
        'rarebird_events_dropped_total{reason="older_than_backfill"} ' in service.render_metrics()
    )
    # mallory's anomaly is in the results, but the rule only started now
    records = search_results(service.store, "record", job_ids=[job.config.job_id]).hits
    assert any(doc["by_field_value"] == "mallory" for _, doc in records)
    first_run = service.store.execute("SELECT min(started_ms) FROM rule_runs").fetchone()[0]
    assert first_run >= int(T0.timestamp() * 1000)
    assert list_alerts(service.store) == []
    service.close()


def test_early_warning_alerts_at_once_and_the_final_record_updates_the_same_alert(
    tmp_path: Path,
) -> None:
    clock = FixedClock(T0)
    live = tmp_path / "events.ndjson"
    write_lines(live, history(T0, 300), "w")
    service, log = in_process(tmp_path, clock, [live],
                              alerts=AlertsConfig(alert_on_interim=True))  # fmt: skip
    turn(service, clock)
    write_lines(live, [event(at(0.2), "mallory", host="web-2")])
    turn(service, clock, seconds=0.3)  # 0.1 s after the line was written

    [alert] = list_alerts(service.store)
    assert alert.timestamp == at(0.3)
    assert alert.original_time == T0
    assert alert.values("user.name") == ["mallory"]
    assert alert.doc["is_interim"] is True
    assert alert.doc["rarebird.early_warning.status"] == "interim"
    assert alert.record_score >= 25
    interim_score = alert.record_score

    turn(service, clock, seconds=1, times=8)  # the bucket is final at 12:00:06, runs at :06, :08
    [final] = list_alerts(service.store)
    assert final.id == alert.id
    assert final.revision == 1
    assert final.timestamp == at(0.3)  # still the moment it was first alerted
    assert final.doc["is_interim"] is False
    assert final.doc["rarebird.early_warning.status"] == "confirmed"
    assert final.doc["rarebird.early_warning.interim_record_score"] == interim_score
    [(record_id, record)] = [
        (rid, doc) for rid, doc in search_results(service.store, "record").hits
        if doc["by_field_value"] == "mallory"
    ]  # fmt: skip
    assert final.id == alert_id_for(record_id, service.engine.identity)
    assert final.record_score == record["record_score"]
    assert final.doc["rarebird.early_warning.final_record_score"] == record["record_score"]
    # the scheduled run that saw the final record found its alert already made
    summary = json.loads(service.store.execute(
        "SELECT summary FROM rule_runs WHERE started_ms = ?",
        (int(at(6).timestamp() * 1000),),
    ).fetchone()[0])  # fmt: skip
    assert (summary["found"], summary["created"], summary["already_alerted"]) == (1, 0, 1)
    assert [e["status"] for e in log.events("interim_alert_final")] == ["confirmed"]
    service.close()


def test_an_early_alert_the_final_record_does_not_confirm_is_kept_and_marked(
    tmp_path: Path,
) -> None:
    clock = FixedClock(T0)
    live = tmp_path / "events.ndjson"
    write_lines(live, history(T0, 300), "w")
    service, _ = in_process(tmp_path, clock, [live], alerts=AlertsConfig(alert_on_interim=True))
    turn(service, clock)
    write_lines(live, [event(at(0.2), "mallory", host="web-2")])
    turn(service, clock, seconds=0.3)
    [alert] = list_alerts(service.store)
    # thirty more newcomers in the same bucket: mallory is no longer rare in it
    write_lines(live, [event(at(0.5), f"user{i}") for i in range(30)])
    turn(service, clock, seconds=1, times=8)
    [after] = list_alerts(service.store)
    assert after.id == alert.id
    assert after.doc["rarebird.early_warning.status"] == "not_confirmed"
    assert after.doc["rarebird.early_warning.final_record_score"] < 25
    assert after.workflow_status == "open"
    service.close()


def test_a_source_that_goes_quiet_is_reported_until_it_sends_again(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    live = tmp_path / "events.ndjson"
    write_lines(live, history(T0, 10), "w")
    service, log = in_process(tmp_path, clock, [live], quiet_after=timedelta(seconds=30))
    turn(service, clock)
    turn(service, clock, seconds=10, times=4)
    [quiet] = log.events("source_quiet")
    assert quiet["source"] == str(live)
    assert quiet["since"] == T0
    assert quiet["message"] == "Datafeed has been retrieving no data for a while"
    assert f'rarebird_source_quiet{{source="{live}"}} 1' in service.render_metrics()
    write_lines(live, [event(at(45), "monitor")])
    turn(service, clock, seconds=1)
    [back] = log.events("source_resumed")
    assert back["quiet_seconds"] == 41.0
    rows = service.store.execute("SELECT source, start_ms, end_ms FROM serve_gaps").fetchall()
    ms = int(T0.timestamp() * 1000)
    assert rows == [(str(live), ms, ms + 41_000)]
    service.close()


def test_the_example_configuration_is_valid_and_documents_every_key() -> None:
    cfg = load_config(example_path())
    assert cfg.store == "/var/lib/rarebird/rarebird.db"
    assert [f.path for f in cfg.follow] == [
        "/var/log/audit/audit.log",
        "/var/log/elastic-agent-events",
    ]
    assert (cfg.follow[0].format, cfg.follow[0].label) == ("auditd", "auditd")
    assert cfg.follow[1].pattern == "*.ndjson*"
    assert cfg.http.listen == "127.0.0.1:9400"
    assert cfg.http.max_body_bytes == 64 * 1024 * 1024
    assert cfg.backfill == BackfillConfig()
    assert cfg.alerts.alert_on_interim is False
    assert cfg.alerts.outputs == ("ndjson:/var/log/rarebird/alerts.ndjson",)
    text = Path(example_path()).read_text()
    for key in ("alert_on_interim", "max_age", "retention_days", "daily_retention_after_days",
                "quiet_after", "rotate_grace", "token_env", "pattern", "identity"):  # fmt: skip
        assert key in text


@pytest.mark.parametrize(
    ("doc", "key", "message"),
    [
        ({}, "store", "is required"),
        ({"store": "x.db", "http": {"listen": "localhost"}}, "http.listen", "expected HOST:PORT"),
        ({"store": "x.db", "http": {"max_body_bytes": "lots"}}, "http.max_body_bytes", "not a byte size"),
        ({"store": "x.db", "backfill": {"max_age": "two weeks"}}, "backfill.max_age", "not a duration"),
        ({"store": "x.db", "alerts": {"alert_on_interim": "yes"}}, "alerts.alert_on_interim", "expected true or false"),
        ({"store": "x.db", "follow": [{"format": "ecs"}]}, "follow[0].path", "is required"),
        ({"store": "x.db", "snapshots": {"every": "1h"}}, "snapshots.every", "unknown key"),
        ({"store": "x.db", "http": {"token": "a", "token_env": "X"}}, "http.token_env", "give only one"),
    ],
)  # fmt: skip
def test_configuration_mistakes_name_the_file_and_the_key(
    doc: dict, key: str, message: str
) -> None:
    with pytest.raises(DefinitionError) as err:
        config_from_dict(doc, "/etc/rarebird/rarebird.toml")
    assert err.value.path == "/etc/rarebird/rarebird.toml"
    assert err.value.key == key
    assert message in err.value.message


def test_a_short_ingest_token_is_refused_at_start(tmp_path: Path) -> None:
    cfg = config_from_dict({"store": "x.db", "http": {"listen": "127.0.0.1:0", "token": "short"}},
                           str(tmp_path / "r.toml"))  # fmt: skip
    with pytest.raises(DefinitionError, match="http.token: an ingest token must be at least 16"):
        cfg.http.resolve_token()
    assert replace(cfg.http, token="x" * 16).resolve_token() == "x" * 16


def test_early_warning_also_for_the_first_lines_of_a_file_after_rotation(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    live = tmp_path / "events.ndjson"
    write_lines(live, history(T0, 300), "w")
    service, log = in_process(tmp_path, clock, [live], alerts=AlertsConfig(alert_on_interim=True))
    turn(service, clock)
    live.rename(tmp_path / "events.ndjson.1")
    write_lines(live, [event(at(0.2), "mallory", host="web-2")], "w")
    turn(service, clock, seconds=0.3)
    assert [a.values("user.name") for a in list_alerts(service.store)] == [["mallory"]]
    assert [e["path"] for e in log.events("file_rotated")] == [str(tmp_path / "events.ndjson.1")]
    service.close()
