"""The rule executor with Elastic's semantics: window edges, threshold, interim results,
max_signals, dedup across overlapping runs, renormalisation, catch-up, exceptions."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from rarebird.alerts import Alert, rule_uuid_for
from rarebird.definitions import load_datafeed, load_job
from rarebird.rules.exception_items import new_item
from rarebird.rules.exceptions import MatchEntry, ScheduleWindow
from rarebird.rules.executor import MAX_SIGNALS_WARNING, RuleExecutor, run_rule
from rarebird.run.engine import Engine
from rarebird.store.adapters import SqliteRuleStore
from rarebird.store.exceptions import ensure_rule_default_list, save_item
from rarebird.store.sqlite import Store
from tests.rule_support import T0, alert_count, at, make_store, record, rescore, rule, write


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = make_store(tmp_path)
    yield s
    s.close()


def users(alerts: Sequence[Alert]) -> list[str]:
    return [a.values("user.name")[0] for a in alerts]


def test_window_is_inclusive_at_both_ends(store: Store) -> None:
    now = at(60)
    write(
        store,
        record(now - timedelta(minutes=45, milliseconds=1), "before", 80),
        record(now - timedelta(minutes=45), "first_edge", 80),
        record(now - timedelta(minutes=20), "inside", 80),
        record(now, "last_edge", 80),
        record(now + timedelta(milliseconds=1), "after", 80),
    )
    run = run_rule(SqliteRuleStore(store), rule(), now, previous_started_at=None)
    assert sorted(users(run.new_alerts)) == ["first_edge", "inside", "last_edge"]
    assert run.found == 3
    assert [(r.start, r.end) for r in run.ranges] == [(at(15), at(60))]
    assert run.warnings == ()


def test_threshold_edge(store: Store) -> None:
    write(store, record(at(0), "below", 24.99), record(at(0), "at", 25.0), record(at(0), "above", 25.01))  # fmt: skip
    run = run_rule(SqliteRuleStore(store), rule(), at(15), previous_started_at=None)
    assert users(run.new_alerts) == ["above", "at"]  # best score first


def test_threshold_comes_from_the_rule(store: Store) -> None:
    write(store, record(at(0), "alice", 40))
    assert run_rule(SqliteRuleStore(store), rule(anomaly_threshold=50), at(15), previous_started_at=None).new_alerts == ()  # fmt: skip
    assert len(run_rule(SqliteRuleStore(store), rule(anomaly_threshold=40), at(15), previous_started_at=None).new_alerts) == 1  # fmt: skip


def test_interim_records_never_alert(store: Store) -> None:
    write(store, record(at(0), "alice", 90, interim=True))
    run = run_rule(SqliteRuleStore(store), rule(), at(15), previous_started_at=None)
    assert run.new_alerts == ()
    assert run.found == 0


def test_other_jobs_records_are_ignored(store: Store) -> None:
    write(store, record(at(0), "alice", 90, job="some_other_job"))
    assert (
        run_rule(SqliteRuleStore(store), rule(), at(15), previous_started_at=None).new_alerts == ()
    )


def test_max_signals_truncates_to_the_best_and_warns(store: Store) -> None:
    scores = [30, 90, 50, 70, 60]
    write(store, *(record(at(0), f"u{s}", s) for s in scores))
    run = run_rule(SqliteRuleStore(store), rule(max_signals=3), at(15), previous_started_at=None)
    assert users(run.new_alerts) == ["u90", "u70", "u60"]
    assert run.truncated == 2
    assert run.warnings == (MAX_SIGNALS_WARNING,)
    assert MAX_SIGNALS_WARNING == (
        "This rule reached the maximum alert limit for the rule execution. "
        "Some alerts were not created."
    )


def test_exactly_max_signals_does_not_warn(store: Store) -> None:
    write(store, *(record(at(0), f"u{i}", 50 + i) for i in range(3)))
    run = run_rule(SqliteRuleStore(store), rule(max_signals=3), at(15), previous_started_at=None)
    assert len(run.new_alerts) == 3
    assert run.warnings == ()


def test_truncated_records_alert_in_the_next_run(store: Store) -> None:
    write(store, *(record(at(0), f"u{i}", 50 + i) for i in range(5)))
    ex = RuleExecutor(SqliteRuleStore(store), rule(max_signals=3))
    first = ex.run(at(15))
    second = ex.run(at(30))  # the 3 alerted ones are dropped as duplicates after the cut
    assert users(first.new_alerts) == ["u4", "u3", "u2"]
    assert second.warnings == (MAX_SIGNALS_WARNING,)  # 5 still over the threshold
    assert second.new_alerts == ()  # Elastic cuts before dedup: the same top 3 again
    assert second.already_alerted == 3


def test_max_signals_above_the_kibana_limit_is_capped(store: Store) -> None:
    run = run_rule(SqliteRuleStore(store), rule(max_signals=5000), at(15), previous_started_at=None)
    assert run.ranges[0].max_signals == 1000
    assert run.warnings[0] == (
        "The rule's max alerts per run setting (5000) is greater than the Kibana alerting limit "
        "(1000). The rule will only write a maximum of 1000 alerts per rule run."
    )


def test_three_overlapping_runs_create_one_alert(store: Store) -> None:
    rec = record(at(0), "alice", 80)
    write(store, rec)
    ex = RuleExecutor(SqliteRuleStore(store), rule())
    runs = [ex.run(at(m)) for m in (15, 30, 45, 60)]
    assert [len(r.new_alerts) for r in runs] == [1, 0, 0, 0]
    assert [r.already_alerted for r in runs] == [0, 1, 1, 0]  # 60: out of [15m, 60m]
    assert [r.found for r in runs] == [1, 1, 1, 0]
    assert alert_count(store) == 1
    key = f".ml-anomalies-shared{rec.doc_id}undefineddefault:{rule_uuid_for(rule().rule_id)}"
    assert runs[0].new_alerts[0].id == hashlib.sha256(key.encode()).hexdigest()


def test_renormalised_upward_alerts_later_and_downward_never_withdraws(store: Store) -> None:
    rec = record(at(0), "alice", 20)
    write(store, rec)
    ex = RuleExecutor(SqliteRuleStore(store), rule())
    assert ex.run(at(15)).new_alerts == ()
    rescore(store, rec, 31.5)  # the next bucket renormalised it upward
    second = ex.run(at(30))
    assert users(second.new_alerts) == ["alice"]
    assert second.new_alerts[0].record_score == 31.5
    rescore(store, rec, 5)
    third = ex.run(at(45))
    assert third.new_alerts == ()
    assert alert_count(store) == 1
    stored = store.execute("SELECT record_score FROM alerts").fetchone()[0]
    assert stored == 31.5


def test_renormalised_upward_after_the_window_is_too_late(store: Store) -> None:
    rec = record(at(0), "alice", 20)
    write(store, rec)
    ex = RuleExecutor(SqliteRuleStore(store), rule())
    ex.run(at(45))
    rescore(store, rec, 60)
    assert ex.run(at(60)).new_alerts == ()  # at(0) < at(60) - 45m


def test_catch_up_after_missed_runs(store: Store) -> None:
    ex = RuleExecutor(SqliteRuleStore(store), rule())
    ex.run(at(0))
    write(store, record(at(10), "alice", 80))
    # runs at 15, 30, 45 and 60 were missed; gap = 75m - 45m = 30m: two catch-up ranges
    run = ex.run(at(75))
    assert [(r.start, r.end) for r in run.ranges] == [
        (at(0), at(45)), (at(15), at(60)), (at(30), at(75)),
    ]  # fmt: skip
    assert run.remaining_gap == timedelta(0)
    assert users(run.new_alerts) == ["alice"]
    assert run.warnings == ()


def test_one_missed_run_needs_no_catch_up_range(store: Store) -> None:
    ex = RuleExecutor(SqliteRuleStore(store), rule())
    ex.run(at(0))
    run = ex.run(at(30))  # gap = 30m - 45m < 0: the lookback already covers it
    assert len(run.ranges) == 1


def test_catch_up_is_limited_to_four_intervals_and_reports_the_gap(store: Store) -> None:
    ex = RuleExecutor(SqliteRuleStore(store), rule())
    ex.run(at(0))
    write(store, record(at(60), "lost", 80), record(at(300), "caught", 80))
    run = ex.run(at(360))  # gap = 6h - 45m = 5h15m; 4 catch-up ranges cover 1h of it
    assert len(run.ranges) == 5
    assert run.ranges[0].start == at(255)
    assert run.remaining_gap == timedelta(hours=4, minutes=15)
    assert run.warnings == (
        "4 hours (15300000ms) were not queried between this rule execution and the last "
        "execution, so signals may have been missed. Consider increasing your look behind time "
        "or adding more Kibana instances",
    )
    assert users(run.new_alerts) == ["caught"]


def test_a_record_in_two_catch_up_ranges_alerts_once(store: Store) -> None:
    ex = RuleExecutor(SqliteRuleStore(store), rule())
    ex.run(at(0))
    write(store, record(at(20), "alice", 80))
    run = ex.run(at(75))
    assert len(run.new_alerts) == 1
    assert run.found == 1


def test_exceptions_drop_records_before_max_signals(store: Store) -> None:
    r = rule(max_signals=2)
    write(store, record(at(0), "admin", 95), record(at(0), "bob", 60), record(at(0), "carol", 50))
    list_id = ensure_rule_default_list(store, r, T0)
    item = new_item(list_id=list_id, name="admins", entries=[MatchEntry("user.name", "admin")],
                    now=T0, item_id="admins-item")  # fmt: skip
    save_item(store, item)
    run = run_rule(SqliteRuleStore(store), r, at(15), previous_started_at=None)
    assert users(run.new_alerts) == ["bob", "carol"]
    assert run.excepted == {("admins-item", "admins"): 1}
    assert run.warnings == ()  # 2 left after the exception: not over max_signals
    assert run.found == 3


def test_schedule_exception_uses_the_anomaly_time(store: Store) -> None:
    r = rule()
    write(store, record(at(0), "alice", 80), record(at(60), "alice", 80))
    list_id = ensure_rule_default_list(store, r, T0)
    # T0 is Monday 12:00 UTC: a window 11:00-12:30 covers the first record only
    save_item(store, new_item(list_id=list_id, name="maintenance", entries=[],
                              windows=[ScheduleWindow.parse("Mon 11:00-12:30 UTC")], now=T0))  # fmt: skip
    first = run_rule(SqliteRuleStore(store), r, at(15), previous_started_at=None)
    second = run_rule(SqliteRuleStore(store), r, at(75), previous_started_at=None)
    assert first.new_alerts == ()
    assert first.excepted_total == 1
    assert len(second.new_alerts) == 1


def test_runs_are_recorded_for_catch_up(store: Store) -> None:
    ex = RuleExecutor(SqliteRuleStore(store), rule())
    assert ex.previous_started_at(at(0)) is None
    ex.run(at(0))
    ex.run(at(15))
    assert ex.previous_started_at(at(30)) == at(15)
    assert ex.previous_started_at(at(15)) == at(0)
    assert ex.last_started_at() == at(15)


def test_sinks_get_what_was_committed(store: Store) -> None:
    class Collect:
        name = "collect"

        def __init__(self) -> None:
            self.got: list[Alert] = []

        def write(self, alerts: Sequence[Alert]) -> None:
            assert alert_count(store) >= len(alerts)  # committed before the sink sees them
            self.got.extend(alerts)

        def close(self) -> None:
            pass

    sink = Collect()
    write(store, record(at(0), "alice", 80))
    ex = Engine(store, load_job(), load_datafeed(), rule(), sinks=[sink])
    ex.run_rule(at(15))
    ex.run_rule(at(30))
    assert users(sink.got) == ["alice"]


def test_missing_job_results_warn(store: Store) -> None:
    run = run_rule(SqliteRuleStore(store), rule(), at(15), previous_started_at=None)
    assert run.warnings == (
        'No results of ML job "v3_linux_network_connection_discovery" in the store: has the job run?',
    )
