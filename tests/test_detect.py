"""End to end: ECS events -> datafeed -> job -> rule on the event clock -> alerts.

The scenario is constructed (see ``tests/rule_support.py``): three quiet days, then one user
who never ran a discovery tool runs ``ss`` on another host.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from rarebird.alerts import rule_uuid_for
from rarebird.cli import main
from rarebird.definitions import load_datafeed, load_job
from rarebird.definitions.datafeed import datafeed_from_dict
from rarebird.definitions.rule import load_rule
from rarebird.run.engine import Engine
from rarebird.run.replay import InputOptions, replay_inputs
from rarebird.run.tally import ReplayReport
from rarebird.store.results import get_result
from rarebird.store.sqlite import Store
from tests.rule_support import (
    MALLORY_BUCKET,
    ecs_event,
    make_store,
    scenario_events,
    write_ndjson,
)

QD = timedelta(milliseconds=75_590)  # the packaged job's stable query delay


def run_replay(store: Store, path: Path, **kw: Any) -> ReplayReport:
    job = kw.pop("job", load_job())
    datafeed = kw.pop("datafeed", load_datafeed())
    rule = kw.pop("rule", load_rule())
    engine = Engine(store, job, datafeed, rule)
    return replay_inputs(engine, [str(path)], InputOptions(format="ecs"), **kw).report


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    return write_ndjson(tmp_path / "events.ndjson", scenario_events())


def test_the_new_user_alerts_once_at_the_first_run_after_its_bucket_is_final(
    tmp_path: Path, events_file: Path
) -> None:
    store = make_store(tmp_path)
    report = run_replay(store, events_file)
    assert report.query_delay == QD
    assert [a.values("user.name") for a in report.new_alerts] == [["mallory"]]
    alert = report.new_alerts[0]
    # bucket 00:00-00:15 is final at 00:15 + 75.59 s; the runs are at :00, :15, :30, :45
    assert alert.timestamp == MALLORY_BUCKET + timedelta(minutes=30)
    assert report.warnings == {}
    assert report.unseen_buckets == 0
    # the last event is in bucket 01:45; the runs go on while it is inside [T-45m, T]
    assert report.first_run == datetime(2026, 3, 1, 0, 15, tzinfo=UTC)
    assert report.last_run == datetime(2026, 3, 4, 2, 30, tzinfo=UTC)
    assert report.runs == 298
    store.close()


def test_the_alert_document_from_ecs_events_field_by_field(tmp_path: Path, events_file: Path) -> None:  # fmt: skip
    store = make_store(tmp_path)
    alert = run_replay(store, events_file).new_alerts[0]
    record_id = alert.record_id
    stored = get_result(store, record_id)
    assert stored is not None
    assert stored["record_score"] >= 25
    d = alert.doc
    rule = load_rule()
    # the anomaly record's own fields, as the job stored them
    for key in ("job_id", "result_type", "probability", "multi_bucket_impact", "record_score",
                "initial_record_score", "bucket_span", "detector_index", "is_interim",
                "timestamp", "by_field_name", "by_field_value", "function",
                "function_description", "typical", "actual", "influencers"):  # fmt: skip
        assert d[key] == stored[key], key
    assert d["by_field_value"] == "mallory"
    assert d["timestamp"] == 1772582400000
    assert d["is_interim"] is False
    assert record_id.startswith("v3_linux_network_connection_discovery_record_1772582400000_900_0_")
    # influencers and the by field as nested ECS, no dotted copies left
    assert d["user"] == {"name": ["mallory"]}
    assert d["host"] == {"name": ["web-2"]}
    assert d["process"]["name"] == ["ss"]
    assert sorted(d["process"]["args"][0].split(",")) == ["-tunap", "ss"]
    assert not any(k in d for k in ("user.name", "host.name", "process.name", "process.args"))
    # kibana.alert.*
    assert d["@timestamp"] == "2026-03-04T00:30:00.000Z"
    assert d["kibana.alert.original_time"] == "2026-03-04T00:00:00.000Z"
    assert d["kibana.alert.ancestors"] == [
        {"id": record_id, "type": "event", "index": ".ml-anomalies-shared", "depth": 0}
    ]
    assert d["kibana.alert.depth"] == 1
    assert d["event.kind"] == "signal"
    assert d["kibana.alert.status"] == "active"
    assert d["kibana.alert.workflow_status"] == "open"
    assert d["kibana.alert.reason"] == (
        "event with process ss, by mallory on web-2 created low alert "
        "Unusual Linux Network Connection Discovery."
    )
    assert (d["kibana.alert.severity"], d["kibana.alert.risk_score"]) == ("low", 21)
    assert d["kibana.alert.rule.rule_id"] == "c28c4d8c-f014-40ef-88b6-79a1d67cd499"
    assert d["kibana.alert.rule.uuid"] == rule_uuid_for(rule.rule_id)
    assert d["kibana.alert.rule.name"] == "Unusual Linux Network Connection Discovery"
    assert d["kibana.alert.rule.type"] == "machine_learning"
    assert d["kibana.alert.rule.parameters"]["anomaly_threshold"] == 25
    assert d["kibana.alert.rule.parameters"]["machine_learning_job_id"] == [
        "v3_linux_network_connection_discovery"
    ]
    assert (d["kibana.alert.rule.from"], d["kibana.alert.rule.to"], d["kibana.alert.rule.interval"]) == ("now-45m", "now", "15m")  # fmt: skip
    assert d["kibana.alert.rule.max_signals"] == 100
    assert d["kibana.alert.rule.threat"][0]["technique"][0]["id"] == "T1049"
    assert d["kibana.alert.rule.threat"][0]["tactic"]["id"] == "TA0007"
    assert d["kibana.alert.rule.note"] == rule.note
    assert d["kibana.alert.rule.note"].startswith("## Triage and analysis")
    assert d["kibana.alert.uuid"] == alert.id
    assert d["kibana.space_ids"] == ["default"]
    assert d["kibana.alert.rule.execution.type"] == "scheduled"
    assert d["kibana.alert.intended_timestamp"] == d["@timestamp"]
    store.close()


def test_a_longer_query_delay_moves_the_alert_later(tmp_path: Path, events_file: Path) -> None:
    store = make_store(tmp_path)
    df = datafeed_from_dict({**load_datafeed().raw, "query_delay": "20m"})
    report = run_replay(store, events_file, datafeed=df)
    assert report.query_delay == timedelta(minutes=20)
    assert [a.timestamp for a in report.new_alerts] == [MALLORY_BUCKET + timedelta(minutes=45)]
    store.close()


def test_a_lookback_shorter_than_span_plus_delay_never_sees_buckets(tmp_path: Path, events_file: Path) -> None:  # fmt: skip
    store = make_store(tmp_path)
    df = datafeed_from_dict({**load_datafeed().raw, "query_delay": "40m"})
    report = run_replay(store, events_file, datafeed=df)
    assert report.new_alerts == ()
    assert report.unseen_buckets == 1
    assert report.warnings == {
        "1 bucket(s) with anomalies over the threshold were never inside a rule run's range: "
        "the rule looks back 45m (now-45m) but a bucket is final only 15m + 2400s (bucket span + "
        "query delay) after it starts": 1
    }
    store.close()


def test_other_interval_and_bucket_span(tmp_path: Path, events_file: Path) -> None:
    store = make_store(tmp_path)
    base = load_job()
    job = replace(base, bucket_span=timedelta(minutes=30))
    rule = replace(load_rule(), interval=timedelta(minutes=5), lookback=timedelta(minutes=60),
                   from_="now-60m")  # fmt: skip
    report = run_replay(store, events_file, job=job, rule=rule)
    assert [a.values("user.name") for a in report.new_alerts] == [["mallory"]]
    alert = report.new_alerts[0]
    assert alert.original_time == MALLORY_BUCKET
    assert alert.doc["bucket_span"] == 1800
    # bucket 00:00-00:30 is final at 00:31:15.59; the next 5-minute run is 00:35
    assert alert.timestamp == MALLORY_BUCKET + timedelta(minutes=35)
    assert alert.doc["kibana.alert.rule.interval"] == "5m"
    store.close()


def down(start_min: int, end_min: int) -> list[tuple[datetime, datetime]]:
    return [(MALLORY_BUCKET + timedelta(minutes=start_min), MALLORY_BUCKET + timedelta(minutes=end_min))]  # fmt: skip


def test_missed_runs_are_caught_up(tmp_path: Path, events_file: Path) -> None:
    store = make_store(tmp_path)
    runs: list[Any] = []
    # down from 23:55 to 01:20: runs 00:00 .. 01:15 do not happen; the last one was 23:45
    report = run_replay(store, events_file, downtime=down(-5, 80), on_run=runs.append)
    assert report.skipped_runs == 6
    catch_up = next(r for r in runs if r.started_at == MALLORY_BUCKET + timedelta(minutes=90))
    # gap = 01:30 - 23:45 - 45m = 60m: four more ranges, back to [23:45, 00:30]
    assert [(r.start, r.end) for r in catch_up.ranges][0] == (
        MALLORY_BUCKET - timedelta(minutes=15), MALLORY_BUCKET + timedelta(minutes=30),
    )  # fmt: skip
    assert len(catch_up.ranges) == 5
    assert [a.timestamp for a in report.new_alerts] == [MALLORY_BUCKET + timedelta(minutes=90)]
    assert report.warnings == {}
    store.close()


def test_catch_up_covers_run_times_not_late_buckets(tmp_path: Path, events_file: Path) -> None:
    # Down from 00:20 to 01:40: the runs at 00:30 and 00:45, the only ones that see bucket 00:00
    # final, do not happen. Kibana's catch-up ranges reach back to the previous run (00:15),
    # which was before the bucket was final: Elastic loses the anomaly without a gap warning.
    store = make_store(tmp_path)
    report = run_replay(store, events_file, downtime=down(20, 100))
    assert report.skipped_runs == 5
    assert report.new_alerts == ()
    assert not any("were not queried" in w for w in report.warnings)
    assert report.unseen_buckets == 1  # rarebird says so
    store.close()


def test_a_long_outage_reports_the_gap(tmp_path: Path, events_file: Path) -> None:
    store = make_store(tmp_path)
    report = run_replay(store, events_file, downtime=down(-5, 120))
    assert report.new_alerts == ()
    assert report.unseen_buckets == 1
    # gap = 02:00 - 23:45 - 45m = 90m; 4 ranges cover 60m of it
    assert [w for w in report.warnings if "were not queried" in w] == [
        "30 minutes (1800000ms) were not queried between this rule execution and the last "
        "execution, so signals may have been missed. Consider increasing your look behind time "
        "or adding more Kibana instances"
    ]
    store.close()


def test_two_replays_with_one_store_equal_one_replay(tmp_path: Path) -> None:
    events = scenario_events()
    cut = "2026-03-02T06:00"
    first = [e for e in events if e["@timestamp"] < cut]
    # a quiet hour and a half: the first replay's trailing runs end before the second begins
    second = [e for e in events if e["@timestamp"] >= "2026-03-02T07:30"]
    whole = write_ndjson(tmp_path / "whole.ndjson", first + second)
    one = make_store(tmp_path, "one.db")
    single = run_replay(one, whole)
    two = make_store(tmp_path, "two.db")
    a = run_replay(two, write_ndjson(tmp_path / "a.ndjson", first))
    b = run_replay(two, write_ndjson(tmp_path / "b.ndjson", second))
    assert a.new_alerts == ()
    assert [(x.id, x.doc["@timestamp"]) for x in b.new_alerts] == [
        (x.id, x.doc["@timestamp"]) for x in single.new_alerts
    ]
    assert len(single.new_alerts) == 1
    assert a.runs + b.runs == single.runs
    one.close()
    two.close()


# --- the command ----------------------------------------------------------------------------


def test_detect_command_prints_new_alerts_and_sends_them(tmp_path: Path, events_file: Path) -> None:  # fmt: skip
    store = tmp_path / "s.db"
    bulk = tmp_path / "bulk.ndjson"
    runner = CliRunner()
    res = runner.invoke(main, ["detect", "--store", str(store), "--format", "ndjson",
                               "--output", f"es-bulk:{bulk}", str(events_file)])  # fmt: skip
    assert res.exit_code == 0, res.output
    docs = [orjson.loads(x) for x in res.stdout.splitlines()]
    assert [d["user"]["name"] for d in docs] == [["mallory"]]
    assert "rarebird: 411 lines read, 411 events matched the datafeed, 296 buckets" in res.stderr
    assert "1 new alert(s), 0 suppressed, 0 excepted" in res.stderr
    lines = bulk.read_text().splitlines()
    assert json.loads(lines[0]) == {
        "create": {"_index": ".alerts-security.alerts-default", "_id": docs[0]["kibana.alert.uuid"],
                   "require_alias": True}
    }  # fmt: skip
    # again over the same data: the job sees it all as old (out of order), nothing is new
    again = runner.invoke(main, ["detect", "--store", str(store), str(events_file)])
    assert again.exit_code == 0, again.output
    assert again.stdout == "(no new alerts)\n"
    assert "rarebird: 411 event(s) older than the job's current bucket were dropped" in again.stderr
    assert (
        "rarebird: warning: the input starts at 2026-03-01T00:00:10.000Z, before the rule's last run in this store (2026-03-04T02:30:00.000Z)"
        in again.stderr
    )


def test_detect_table_and_exception_from_the_alert(tmp_path: Path, events_file: Path) -> None:
    runner = CliRunner()
    store = str(tmp_path / "s.db")
    res = runner.invoke(main, ["detect", "--store", store, "-q", str(events_file)])
    assert res.exit_code == 0, res.output
    header, row = res.stdout.splitlines()
    assert header.split() == ["alert", "anomaly", "time", "user", "host", "process", "score",
                              "anomaly", "severity", "status", "dups"]  # fmt: skip
    assert row.split()[1:5] == ["2026-03-04T00:00:00.000Z", "mallory", "web-2", "ss"]
    alert_id = row.split()[0]
    add = runner.invoke(main, ["exceptions", "add", "--store", store, "--from-alert", alert_id,
                               "--with-parents", "--yes"])  # fmt: skip
    assert add.exit_code == 0, add.output
    assert "user.name is mallory AND host.name is web-2 AND parent in [cron]" in add.stdout
    # the same events into a fresh store with the exception: no alert, one excepted
    export = runner.invoke(main, ["exceptions", "export", "--store", store])
    fresh = str(tmp_path / "fresh.db")
    (tmp_path / "exc.ndjson").write_text(export.stdout)
    imp = runner.invoke(main, ["exceptions", "import", "--store", fresh, str(tmp_path / "exc.ndjson")])  # fmt: skip
    assert imp.exit_code == 0, imp.output
    again = runner.invoke(main, ["detect", "--store", fresh, str(events_file)])
    assert again.stdout == "(no new alerts)\n"
    assert "0 new alert(s), 0 suppressed, 1 excepted" in again.stderr


def test_detect_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["detect", "--store", str(tmp_path / "s.db"), str(tmp_path / "nope")])
    assert res.exit_code == 2
    bad_rule = tmp_path / "r.toml"
    bad_rule.write_text('[rule]\nname = "x"\n')
    f = write_ndjson(tmp_path / "e.ndjson", [ecs_event(MALLORY_BUCKET, "a")])
    res = runner.invoke(main, ["detect", "--rule", str(bad_rule), "--store", str(tmp_path / "s.db"), str(f)])  # fmt: skip
    assert res.exit_code == 1
    assert "r.toml: rule.type" in res.stderr or "r.toml: rule." in res.stderr
