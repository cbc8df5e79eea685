"""``rarebird alerts list/show/ack/close/open`` and ``rarebird rule run`` on a real store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rarebird.cli import main
from rarebird.rules.executor import RuleExecutor
from rarebird.store.adapters import SqliteRuleStore
from tests.rule_support import at, make_store, record, rule, write


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    store = make_store(tmp_path)
    write(store, record(at(0), "alice", 80, hosts=("web-1",)),
          record(at(0), "bob", 40, hosts=("db-1",)))  # fmt: skip
    write(store, record(at(15), "carol", 60, hosts=("web-1", "web-2")))
    ex = RuleExecutor(SqliteRuleStore(store), rule())
    ex.run(at(15))
    ex.run(at(30))
    store.close()
    return str(tmp_path / "store.db")


def cli(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.stdout, res.stderr


def ids(store_path: str, *filters: str) -> dict[str, str]:
    code, out, _ = cli("alerts", "list", "--store", store_path, "--format", "ndjson", *filters)
    assert code == 0
    docs = [json.loads(x) for x in out.splitlines()]
    return {d["user"]["name"][0]: d["kibana.alert.uuid"] for d in docs}


def test_list_table(store_path: str) -> None:
    code, out, _ = cli("alerts", "list", "--store", store_path)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["alert", "anomaly", "time", "user", "host", "process", "score",
                                "anomaly", "severity", "status", "dups"]  # fmt: skip
    rows = [line.split() for line in lines[1:]]
    assert [r[1:4] for r in rows] == [
        ["2026-03-02T12:15:00.000Z", "carol", "web-1,"],
        ["2026-03-02T12:00:00.000Z", "alice", "web-1"],
        ["2026-03-02T12:00:00.000Z", "bob", "db-1"],
    ]
    # Elastic's anomaly severity label beside the score, then the rule's severity
    assert rows[1][5:] == ["80.00", "critical", "low", "open"]


def test_list_filters_and_json(store_path: str) -> None:
    assert list(ids(store_path, "--host", "web-2")) == ["carol"]
    assert list(ids(store_path, "--user", "bob")) == ["bob"]
    assert list(ids(store_path, "--min-score", "50")) == ["carol", "alice"]
    assert list(ids(store_path, "--since", "2026-03-02T12:10:00Z")) == ["carol"]
    code, out, _ = cli("alerts", "list", "--store", store_path, "--format", "json", "--limit", "1")
    assert code == 0
    assert [d["user"]["name"] for d in json.loads(out)] == [["carol"]]
    code, out, _ = cli("alerts", "list", "--store", store_path, "--user", "nobody")
    assert out == "(no alerts)\n"


def test_workflow_commands(store_path: str) -> None:
    known = ids(store_path)
    code, out, err = cli(
        "alerts", "ack", "--store", store_path, "--user", "ann", known["alice"][:8]
    )
    assert code == 2  # --user filters everywhere; the analyst is --by
    assert "the analyst who changes an alert is --by NAME" in err
    code, out, _ = cli("alerts", "ack", "--store", store_path, "--by", "ann", known["alice"][:8])
    assert (code, out) == (0, f"{known['alice']}  acknowledged\n")
    code, out, _ = cli("alerts", "close", "--store", store_path, "--reason", "false_positive",
                       known["bob"], known["carol"][:12])  # fmt: skip
    assert code == 0
    assert out.splitlines() == [f"{known['bob']}  closed", f"{known['carol']}  closed"]
    assert list(ids(store_path, "--status", "open")) == []
    assert list(ids(store_path, "--status", "acknowledged")) == ["alice"]
    assert list(ids(store_path, "--status", "closed")) == ["carol", "bob"]
    code, out, _ = cli("alerts", "show", "--store", store_path, "--format", "json", known["bob"])
    doc = json.loads(out)
    assert doc["kibana.alert.workflow_status"] == "closed"
    assert doc["kibana.alert.workflow_reason"] == "false_positive"
    cli("alerts", "open", "--store", store_path, known["bob"])
    assert list(ids(store_path, "--status", "open")) == ["bob"]


def test_show_text_has_the_guide(store_path: str) -> None:
    alice = ids(store_path)["alice"]
    code, out, _ = cli("alerts", "show", "--store", store_path, alice[:10])
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"id            {alice}"
    assert "user          alice" in lines
    assert "anomaly time  2026-03-02T12:00:00.000Z" in lines
    assert "alerted at    2026-03-02T12:15:00.000Z" in lines
    assert "### Investigating Unusual Linux Network Connection Discovery" in lines


def test_unknown_alert_is_a_usage_error(store_path: str) -> None:
    code, _, err = cli("alerts", "ack", "--store", store_path, "deadbeef00")
    assert code == 1
    assert err == "rarebird: error: no alert with id 'deadbeef00'\n"


def test_rule_run_once_with_catch_up(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    write(store, record(at(0), "alice", 80))
    store.close()
    path = str(tmp_path / "store.db")
    code, out, err = cli("rule", "run", "--store", path, "--now", "2026-03-02T11:00:00Z")
    assert (code, out) == (0, "(no new alerts)\n")
    assert err.startswith("rarebird: rule run at 2026-03-02T11:00:00.000Z over "
                          "[2026-03-02T10:15:00.000Z, 2026-03-02T11:00:00.000Z]: 0 anomalies")  # fmt: skip
    # two hours later: catch-up reaches the record at 12:00
    code, out, err = cli("rule", "run", "--store", path, "--now", "2026-03-02T13:00:00Z",
                         "--format", "ndjson")  # fmt: skip
    assert code == 0
    assert [json.loads(x)["user"]["name"] for x in out.splitlines()] == [["alice"]]
    assert "over [2026-03-02T11:15:00.000Z, 2026-03-02T12:00:00.000Z], " in err
    assert "1 anomalies over the threshold, 1 new alert(s)" in err
    assert "rarebird: warning: 15 minutes (900000ms) were not queried" in err
