"""Alert documents as Kibana's ML rule writes them, their ids, the alerts table and workflow."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from rarebird.alerts import AlertLookupError, RuleIdentity, build_alert, build_reason, rule_uuid_for
from rarebird.alerts.document import anomaly_to_ecs
from rarebird.store.alerts import (
    AlertFilter,
    get_alert,
    insert_alerts,
    list_alerts,
    set_workflow_status,
)
from rarebird.store.sqlite import Store
from tests.rule_support import at, make_store, record, rule

THREAT = [
    {
        "framework": "MITRE ATT&CK",
        "technique": [
            {
                "id": "T1049",
                "name": "System Network Connections Discovery",
                "reference": "https://attack.mitre.org/techniques/T1049/",
            }
        ],
        "tactic": {
            "id": "TA0007",
            "name": "Discovery",
            "reference": "https://attack.mitre.org/tactics/TA0007/",
        },
    }
]


def short_rule(**kw: Any) -> Any:
    return rule(description="Desc.", note="## Guide", setup="", false_positives=("Admins.",),
                tags=("Rule Type: ML",), **kw)  # fmt: skip


def test_the_alert_document_field_by_field() -> None:
    r = short_rule()
    rec = record(at(0), "alice", 72.5, hosts=("web-1", "web-2"))
    alert = build_alert(rec, rec.doc_id, r, RuleIdentity.for_rule(r), at(30))
    record_id = "v3_linux_network_connection_discovery_record_1772452800000_900_0_-914461985_5"
    assert rec.doc_id == record_id
    rule_uuid = "c6387adf-4c8f-501d-84fd-f477235e60be"
    assert rule_uuid_for(r.rule_id) == rule_uuid
    alert_id = hashlib.sha256(
        f".ml-anomalies-shared{record_id}undefineddefault:{rule_uuid}".encode()
    ).hexdigest()
    assert alert.id == alert_id
    params = {
        "anomaly_threshold": 25,
        "machine_learning_job_id": ["v3_linux_network_connection_discovery"],
        "description": "Desc.",
        "risk_score": 21,
        "severity": "low",
        "license": "Elastic License v2",
        "author": ["Elastic"],
        "false_positives": ["Admins."],
        "from": "now-45m",
        "rule_id": "c28c4d8c-f014-40ef-88b6-79a1d67cd499",
        "max_signals": 100,
        "risk_score_mapping": [],
        "severity_mapping": [],
        "threat": THREAT,
        "to": "now",
        "references": [],
        # the packaged rule is Elastic's prebuilt rule: the version, integrations and origin of
        # the published asset (..._105.json), as Kibana's installed copy carries them
        "version": 105,
        "exceptions_list": [],
        "immutable": True,
        "rule_source": {"type": "external", "is_customized": False},
        "related_integrations": [
            {"package": "auditd_manager", "version": "^1.0.0"},
            {"package": "endpoint", "version": "^8.2.0"},
        ],
        "required_fields": [],
        "setup": "",
        "type": "machine_learning",
        "note": "## Guide",
    }
    assert alert.doc == {
        # the anomaly record, as stored in .ml-anomalies-*
        "job_id": "v3_linux_network_connection_discovery",
        "result_type": "record",
        "probability": 0.001,
        "multi_bucket_impact": 0.0,
        "record_score": 72.5,
        "initial_record_score": 72.5,
        "bucket_span": 900,
        "detector_index": 0,
        "is_interim": False,
        "timestamp": 1772452800000,
        "by_field_name": "user.name",
        "by_field_value": "alice",
        "function": "rare",
        "function_description": "rare",
        "typical": [0.05],
        "actual": [1.0],
        "influencers": [
            {"influencer_field_name": "host.name", "influencer_field_values": ["web-1", "web-2"]},
            {"influencer_field_name": "process.args", "influencer_field_values": ["-tunap,ss"]},
            {"influencer_field_name": "process.name", "influencer_field_values": ["ss"]},
            {"influencer_field_name": "user.name", "influencer_field_values": ["alice"]},
        ],
        "anomaly_score_explanation": {"by_field_first_occurrence": True},
        # influencers and the by field, moved to nested ECS objects
        "host": {"name": ["web-1", "web-2"]},
        "process": {"args": ["-tunap,ss"], "name": ["ss"]},
        "user": {"name": ["alice"]},
        # the kibana.alert.* fields
        "@timestamp": "2026-03-02T12:30:00.000Z",
        "kibana.space_ids": ["default"],
        "event.kind": "signal",
        "kibana.alert.original_time": "2026-03-02T12:00:00.000Z",
        "kibana.alert.rule.consumer": "siem",
        "kibana.alert.ancestors": [
            {"id": record_id, "type": "event", "index": ".ml-anomalies-shared", "depth": 0}
        ],
        "kibana.alert.status": "active",
        "kibana.alert.workflow_status": "open",
        "kibana.alert.depth": 1,
        "kibana.alert.reason": (
            "event with process ss, by alice on web-1, web-2 created low alert "
            "Unusual Linux Network Connection Discovery."
        ),
        "kibana.alert.severity": "low",
        "kibana.alert.risk_score": 21,
        "kibana.alert.rule.parameters": params,
        "kibana.alert.rule.actions": [],
        "kibana.alert.rule.author": ["Elastic"],
        "kibana.alert.rule.created_at": "2020-09-03T00:00:00.000Z",
        "kibana.alert.rule.created_by": "rarebird",
        "kibana.alert.rule.description": "Desc.",
        "kibana.alert.rule.enabled": True,
        "kibana.alert.rule.exceptions_list": [],
        "kibana.alert.rule.false_positives": ["Admins."],
        "kibana.alert.rule.from": "now-45m",
        "kibana.alert.rule.immutable": True,
        "kibana.alert.rule.interval": "15m",
        "kibana.alert.rule.indices": [],
        "kibana.alert.rule.license": "Elastic License v2",
        "kibana.alert.rule.max_signals": 100,
        "kibana.alert.rule.name": "Unusual Linux Network Connection Discovery",
        "kibana.alert.rule.note": "## Guide",
        "kibana.alert.rule.references": [],
        "kibana.alert.rule.risk_score_mapping": [],
        "kibana.alert.rule.rule_id": "c28c4d8c-f014-40ef-88b6-79a1d67cd499",
        "kibana.alert.rule.severity_mapping": [],
        "kibana.alert.rule.tags": ["Rule Type: ML"],
        "kibana.alert.rule.threat": THREAT,
        "kibana.alert.rule.to": "now",
        "kibana.alert.rule.type": "machine_learning",
        "kibana.alert.rule.updated_at": "2026-07-27T00:00:00.000Z",
        "kibana.alert.rule.updated_by": "rarebird",
        "kibana.alert.rule.uuid": rule_uuid,
        "kibana.alert.rule.version": 105,
        "kibana.alert.uuid": alert_id,
        "kibana.alert.workflow_tags": [],
        "kibana.alert.workflow_assignee_ids": [],
        "kibana.alert.rule.risk_score": 21,
        "kibana.alert.rule.severity": "low",
        "kibana.alert.intended_timestamp": "2026-03-02T12:30:00.000Z",
        "kibana.alert.rule.execution.type": "scheduled",
        "kibana.alert.rule.category": "Machine Learning Rule",
        "kibana.alert.rule.producer": "siem",
        "kibana.alert.rule.rule_type_id": "siem.mlRule",
        "kibana.alert.rule.revision": 0,
        "kibana.alert.rule.execution.uuid": alert.execution_uuid,
        "kibana.alert.rule.execution.timestamp": "2026-03-02T12:30:00.000Z",
        "kibana.alert.start": "2026-03-02T12:30:00.000Z",
        "kibana.alert.last_detected": "2026-03-02T12:30:00.000Z",
        "kibana.version": "9.1.0",
        # no kibana.alert.instance.id, action_group or flapping: Kibana's persistence wrapper
        # sets none of them on a security alert (instance.id only with suppression)
    }


def test_ids_depend_on_record_rule_and_space_only() -> None:
    r = short_rule()
    rec = record(at(0), "alice", 72.5)
    one = build_alert(rec, rec.doc_id, r, RuleIdentity.for_rule(r), at(15))
    later = build_alert(rec.with_score(90), rec.doc_id, r, RuleIdentity.for_rule(r), at(45))
    other_space = build_alert(rec, rec.doc_id, r, RuleIdentity.for_rule(r, space_id="soc"), at(15))
    kibana = build_alert(rec, rec.doc_id, r, RuleIdentity.for_rule(r, rule_uuid="abc"), at(15))
    assert one.id == later.id
    assert len({one.id, other_space.id, kibana.id}) == 3
    assert (
        kibana.id
        == hashlib.sha256(
            f".ml-anomalies-shared{rec.doc_id}undefineddefault:abc".encode()
        ).hexdigest()
    )
    assert other_space.doc["kibana.space_ids"] == ["soc"]


def test_kibana_url_only_with_a_base_url() -> None:
    r = short_rule()
    rec = record(at(0), "alice", 72.5)
    ident = RuleIdentity.for_rule(r, kibana_base_url="https://kb.example:5601/", space_id="soc")
    alert = build_alert(rec, rec.doc_id, r, ident, at(15))
    assert alert.doc["kibana.alert.url"] == (
        f"https://kb.example:5601/s/soc/app/security/alerts/redirect/{alert.id}"
        "?index=.alerts-security.alerts-soc&timestamp=2026-03-02T12:15:00.000Z"
    )
    plain = build_alert(rec, rec.doc_id, r, RuleIdentity.for_rule(r), at(15))
    assert "kibana.alert.url" not in plain.doc


def test_by_field_wins_over_an_influencer_of_the_same_name() -> None:
    doc = record(at(0), "alice", 50).to_doc()
    doc["influencers"] = [{"influencer_field_name": "user.name", "influencer_field_values": ["x"]}]
    ecs = anomaly_to_ecs(doc)
    assert ecs["user"] == {"name": ["alice"]}
    assert "user.name" not in ecs
    assert ecs["@timestamp"] == "2026-03-02T12:00:00.000Z"


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({}, "event created low alert R."),
        ({"user": {"name": ["alice"]}}, "event by alice created low alert R."),
        ({"host": {"name": "h1"}, "process": {"name": ["ss", "netstat"]}},
         "event with process ss, netstat, on h1 created low alert R."),
        ({"process": {"parent": {"name": "cron"}}, "user": {"name": "-"}},
         "event with parent process cron, created low alert R."),
        ({"event": {"category": ["process"]}, "source": {"ip": "10.0.0.1", "port": 22}},
         "process event with source 10.0.0.1:22, created low alert R."),
    ],
)  # fmt: skip
def test_reason_text_follows_kibanas_template(doc: dict[str, Any], reason: str) -> None:
    assert build_reason("R", "low", doc) == reason


def test_severity_and_risk_score_mappings() -> None:
    r = short_rule(
        severity_mapping=(
            {"field": "user.name", "operator": "equals", "value": "root", "severity": "critical"},
            {"field": "host.name", "operator": "equals", "value": "h1", "severity": "medium"},
        ),
        risk_score_mapping=({"field": "record_score", "operator": "equals", "value": ""},),
    )
    ident = RuleIdentity.for_rule(r)
    root = record(at(0), "root", 88, hosts=("h1",))
    bob = record(at(0), "bob", 64.25, hosts=("h1",))
    elsewhere = record(at(0), "carol", 40, hosts=("h9",))
    a_root = build_alert(root, root.doc_id, r, ident, at(15))
    a_bob = build_alert(bob, bob.doc_id, r, ident, at(15))
    a_else = build_alert(elsewhere, elsewhere.doc_id, r, ident, at(15))
    assert (a_root.severity, a_root.doc["kibana.alert.risk_score"]) == ("critical", 88)
    assert (a_bob.severity, a_bob.doc["kibana.alert.risk_score"]) == ("medium", 64.25)
    assert (a_else.severity, a_else.doc["kibana.alert.risk_score"]) == ("low", 40)
    assert a_root.doc["kibana.alert.rule.severity"] == "low"  # the rule's own value stays
    assert a_root.doc["kibana.alert.reason"].endswith("created critical alert Unusual Linux "
                                                      "Network Connection Discovery.")  # fmt: skip


# --- the table and the workflow -------------------------------------------------------------


@pytest.fixture
def stored(tmp_path: Path) -> Store:
    store = make_store(tmp_path)
    r = short_rule()
    ident = RuleIdentity.for_rule(r)
    recs = [
        record(at(0), "alice", 80, hosts=("web-1", "web-2")),
        record(at(15), "bob", 40, hosts=("db_1",)),
        record(at(30), "carol", 60, hosts=("dbx1",)),
    ]
    insert_alerts(store, [build_alert(x, x.doc_id, r, ident, x.timestamp + (at(30) - at(0))) for x in recs])  # fmt: skip
    yield store
    store.close()


def names(alerts: list[Any]) -> list[str]:
    return [a.values("user.name")[0] for a in alerts]


def test_insert_is_create_only(stored: Store) -> None:
    alerts = list_alerts(stored)
    assert insert_alerts(stored, alerts) == 0
    assert len(list_alerts(stored)) == 3


def test_list_filters(stored: Store) -> None:
    assert names(list_alerts(stored)) == ["carol", "bob", "alice"]  # newest anomaly first
    assert names(list_alerts(stored, AlertFilter(host="web-2"))) == ["alice"]
    assert names(list_alerts(stored, AlertFilter(host="db_1"))) == ["bob"]  # "_" is literal
    assert names(list_alerts(stored, AlertFilter(user="bob"))) == ["bob"]
    assert names(list_alerts(stored, AlertFilter(min_score=60))) == ["carol", "alice"]
    assert names(list_alerts(stored, AlertFilter(since=at(15), until=at(30)))) == ["bob"]
    assert names(list_alerts(stored, AlertFilter(limit=1))) == ["carol"]
    assert list_alerts(stored, AlertFilter(rule_id="other")) == []


def test_workflow_ack_close_reopen(stored: Store) -> None:
    alice = list_alerts(stored, AlertFilter(user="alice"))[0]
    acked = set_workflow_status(stored, [alice.id[:10]], "acknowledged", now=at(100), user="ann")
    assert acked[0].revision == 1
    got = get_alert(stored, alice.id)
    assert got.workflow_status == "acknowledged"
    assert got.doc["kibana.alert.workflow_status_updated_at"] == "2026-03-02T13:40:00.000Z"
    # a free-text name is rarebird's; Kibana's workflow_user holds a profile id or null
    assert got.doc["rarebird.workflow.analyst"] == "ann"
    assert got.doc["kibana.alert.workflow_user"] is None
    set_workflow_status(stored, [alice.id], "closed", now=at(110), reason="false_positive")
    got = get_alert(stored, alice.id)
    assert (got.workflow_status, got.doc["kibana.alert.workflow_reason"]) == (
        "closed",
        "false_positive",
    )
    assert names(list_alerts(stored, AlertFilter(statuses=("open",)))) == ["carol", "bob"]
    assert names(list_alerts(stored, AlertFilter(statuses=("closed",)))) == ["alice"]
    set_workflow_status(stored, [alice.id], "open", now=at(120))
    got = get_alert(stored, alice.id)
    assert got.workflow_status == "open"
    assert "kibana.alert.workflow_reason" not in got.doc
    assert got.revision == 3


def test_lookup_errors(stored: Store) -> None:
    with pytest.raises(AlertLookupError, match="no alert with id 'ffffffffff'"):
        get_alert(stored, "ffffffffff")
    with pytest.raises(AlertLookupError, match="give at least 6 characters"):
        get_alert(stored, "ab")
    with pytest.raises(AlertLookupError, match="unknown workflow status 'done'"):
        set_workflow_status(stored, [], "done", now=at(0))
