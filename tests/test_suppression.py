"""Alert suppression: group by 1-3 fields for a duration (or per execution), duplicates counted
once on the kept alert, closed alerts not extended, missing-field strategies."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from rarebird.definitions.rule import AlertSuppression
from rarebird.rules.executor import RuleExecutor
from rarebird.store.adapters import SqliteRuleStore
from rarebird.store.alerts import get_alert, set_workflow_status
from rarebird.store.sqlite import Store
from tests.rule_support import alert_count, at, make_store, record, rule, write


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = make_store(tmp_path)
    yield s
    s.close()


def executor(store: Store, *fields: str, minutes: int | None = 60,
             strategy: str = "suppress") -> RuleExecutor:  # fmt: skip
    duration = timedelta(minutes=minutes) if minutes is not None else None
    r = rule(alert_suppression=AlertSuppression(tuple(fields), duration, strategy))
    return RuleExecutor(SqliteRuleStore(store), r)


def test_duplicates_are_counted_once_on_the_kept_alert(store: Store) -> None:
    ex = executor(store, "user.name")
    write(store, record(at(0), "alice", 80))
    first = ex.run(at(15))
    assert len(first.new_alerts) == 1
    kept = first.new_alerts[0]
    assert kept.doc["kibana.alert.suppression.terms"] == [
        {"field": "user.name", "value": ["alice"]}
    ]
    assert kept.doc["kibana.alert.suppression.docs_count"] == 0
    assert kept.doc["kibana.alert.suppression.start"] == "2026-03-02T12:00:00.000Z"
    assert kept.doc["kibana.alert.suppression.end"] == "2026-03-02T12:00:00.000Z"
    assert kept.doc["kibana.alert.instance.id"] != kept.id

    write(store, record(at(15), "alice", 70))
    second = ex.run(at(30))
    assert second.new_alerts == ()
    assert second.suppressed == 1
    assert [a.id for a in second.updated_alerts] == [kept.id]
    assert second.updated_alerts[0].revision == 1

    write(store, record(at(30), "alice", 60))
    third = ex.run(at(45))  # sees at(0), at(15) and at(30): only at(30) is new
    assert third.suppressed == 1
    assert third.already_alerted == 2
    stored = get_alert(store, kept.id)
    assert stored.doc["kibana.alert.suppression.docs_count"] == 2
    assert stored.doc["kibana.alert.suppression.end"] == "2026-03-02T12:30:00.000Z"
    assert stored.doc["kibana.alert.suppression.start"] == "2026-03-02T12:00:00.000Z"
    assert stored.doc["kibana.alert.last_detected"] == "2026-03-02T12:45:00.000Z"
    assert stored.revision == 2
    assert alert_count(store) == 1


def test_two_fields_group(store: Store) -> None:
    ex = executor(store, "user.name", "host.name")
    write(store, record(at(0), "alice", 80, hosts=("h1",)), record(at(0), "bob", 70, hosts=("h1",)))
    assert len(ex.run(at(15)).new_alerts) == 2
    write(
        store, record(at(15), "alice", 80, hosts=("h2",)), record(at(15), "bob", 70, hosts=("h1",))
    )
    run = ex.run(at(30))
    assert [(a.values("user.name"), a.values("host.name")) for a in run.new_alerts] == [
        (["alice"], ["h2"])
    ]
    assert run.suppressed == 1  # bob on h1 again
    assert alert_count(store) == 3


def test_a_new_alert_after_the_duration(store: Store) -> None:
    ex = executor(store, "user.name", minutes=30)
    write(store, record(at(0), "alice", 80))
    ex.run(at(15))
    write(store, record(at(30), "alice", 80))
    assert ex.run(at(45)).suppressed == 1  # kept alert created at 15, 45 - 30m = 15: inside
    write(store, record(at(45), "alice", 80))
    late = ex.run(at(60))  # 60 - 30m = 30 > 15: the kept alert is too old
    assert len(late.new_alerts) == 1
    assert alert_count(store) == 2


def test_a_closed_alert_is_not_extended(store: Store) -> None:
    ex = executor(store, "user.name")
    write(store, record(at(0), "alice", 80))
    kept = ex.run(at(15)).new_alerts[0]
    set_workflow_status(store, [kept.id], "closed", now=at(20))
    write(store, record(at(15), "alice", 80))
    run = ex.run(at(30))
    assert len(run.new_alerts) == 1
    assert run.suppressed == 0


def test_without_duration_suppression_is_per_execution(store: Store) -> None:
    ex = executor(store, "host.name", minutes=None)
    write(store, record(at(0), "alice", 80, hosts=("h1",)), record(at(0), "bob", 70, hosts=("h1",)))
    first = ex.run(at(15))
    assert len(first.new_alerts) == 1
    assert first.new_alerts[0].values("user.name") == ["alice"]  # best score comes first ...
    assert first.new_alerts[0].doc["kibana.alert.suppression.docs_count"] == 1
    write(store, record(at(15), "carol", 60, hosts=("h1",)))
    second = ex.run(at(30))
    assert len(second.new_alerts) == 1  # a new execution: a new alert for h1
    assert second.suppressed == 0


def test_the_earliest_anomaly_of_a_group_is_kept(store: Store) -> None:
    ex = executor(store, "host.name", minutes=None)
    write(
        store, record(at(0), "early", 40, hosts=("h1",)), record(at(15), "late", 90, hosts=("h1",))
    )
    run = ex.run(at(30))
    assert [a.values("user.name") for a in run.new_alerts] == [["early"]]
    assert run.new_alerts[0].doc["kibana.alert.suppression.end"] == "2026-03-02T12:15:00.000Z"


@pytest.mark.parametrize(("strategy", "alerts"), [("suppress", 1), ("doNotSuppress", 2)])
def test_missing_fields_strategy(store: Store, strategy: str, alerts: int) -> None:
    ex = executor(store, "host.name", strategy=strategy)
    write(store, record(at(0), "alice", 80, hosts=()), record(at(0), "bob", 70, hosts=()))
    run = ex.run(at(15))
    assert len(run.new_alerts) == alerts
    if strategy == "suppress":
        assert run.new_alerts[0].doc["kibana.alert.suppression.terms"] == [
            {"field": "host.name", "value": None}
        ]
    else:
        assert all("kibana.alert.suppression.terms" not in a.doc for a in run.new_alerts)
