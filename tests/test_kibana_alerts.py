"""Alerts Kibana treats as its own: the rule's metadata from a Kibana export or the packaged
prebuilt rule, the space's alias, Kibana's own alert ids (--rule-uuid, --space, --anomaly-index)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from rarebird.alerts import RuleIdentity, build_alert
from rarebird.cli import main
from rarebird.definitions.rule import load_rule
from tests.rule_support import at, record, scenario_events, write_ndjson

EXPORT: dict[str, Any] = {
    "id": "8f2c7a10-1c4e-11f0-9b7e-4b1e3c2a7f01",
    "rule_id": "c28c4d8c-f014-40ef-88b6-79a1d67cd499",
    "name": "Unusual Linux Network Connection Discovery",
    "type": "machine_learning",
    "anomaly_threshold": 25,
    "machine_learning_job_id": ["v3_linux_network_connection_discovery"],
    "interval": "15m",
    "from": "now-45m",
    "risk_score": 21,
    "severity": "low",
    "description": "Looks for commands related to system network connection discovery.",
    "version": 105,
    "immutable": True,
    "rule_source": {"type": "external", "is_customized": True},
    "related_integrations": [{"package": "endpoint", "version": "^8.2.0"}],
    "required_fields": [{"name": "user.name", "type": "keyword", "ecs": True}],
    "created_at": "2025-02-11T09:30:12.345Z",
    "updated_at": "2025-06-02T14:01:00.000Z",
    "created_by": "elastic",
    "updated_by": "soc_lead",
    "revision": 3,
}


def export_file(tmp_path: Path, **changes: Any) -> str:
    path = tmp_path / "rules_export.ndjson"
    doc = {**EXPORT, **changes}
    path.write_text(json.dumps(doc) + "\n" + json.dumps({"exported_count": 1}) + "\n")
    return str(path)


def test_a_kibana_exports_metadata_travels_with_the_alert(tmp_path: Path) -> None:
    r = load_rule(export_file(tmp_path))
    rec = record(at(0), "alice", 72.5)
    doc = build_alert(rec, rec.doc_id, r, RuleIdentity.for_rule(r), at(30)).doc
    assert {k: doc[k] for k in (
        "kibana.alert.rule.version", "kibana.alert.rule.immutable",
        "kibana.alert.rule.created_at", "kibana.alert.rule.updated_at",
        "kibana.alert.rule.created_by", "kibana.alert.rule.updated_by",
        "kibana.alert.rule.revision",
    )} == {
        "kibana.alert.rule.version": 105, "kibana.alert.rule.immutable": True,
        "kibana.alert.rule.created_at": "2025-02-11T09:30:12.345Z",
        "kibana.alert.rule.updated_at": "2025-06-02T14:01:00.000Z",
        "kibana.alert.rule.created_by": "elastic", "kibana.alert.rule.updated_by": "soc_lead",
        "kibana.alert.rule.revision": 3,
    }  # fmt: skip
    params = doc["kibana.alert.rule.parameters"]
    assert params["rule_source"] == {"type": "external", "is_customized": True}
    assert params["related_integrations"] == [{"package": "endpoint", "version": "^8.2.0"}]
    assert params["required_fields"] == [{"name": "user.name", "type": "keyword", "ecs": True}]


def test_an_export_without_dates_writes_no_empty_date(tmp_path: Path) -> None:
    r = load_rule(export_file(tmp_path, created_at="", updated_at=None))
    rec = record(at(0), "alice", 72.5)
    doc = build_alert(rec, rec.doc_id, r, RuleIdentity.for_rule(r), at(30)).doc
    assert "kibana.alert.rule.created_at" not in doc
    assert "kibana.alert.rule.updated_at" not in doc


def test_an_older_export_and_a_custom_rule(tmp_path: Path) -> None:
    older = {k: v for k, v in EXPORT.items() if k != "rule_source"}
    path = tmp_path / "old.json"
    path.write_text(json.dumps({**older, "immutable": False, "version": 4}))
    r = load_rule(str(path))
    assert (r.immutable, r.rule_source(), r.version) == (False, {"type": "internal"}, 4)
    toml = tmp_path / "mine.toml"
    toml.write_text(
        '[metadata]\ncreation_date = "2025/01/02"\nupdated_date = "not a date"\n'
        '[rule]\nrule_id = "my-own-rule"\nname = "Mine"\ntype = "machine_learning"\n'
        'anomaly_threshold = 50\nmachine_learning_job_id = ["v3_linux_network_connection_discovery"]\n'
    )
    mine = load_rule(str(toml))
    assert (mine.immutable, mine.rule_source(), mine.version) == (False, {"type": "internal"}, 1)
    assert (mine.related_integrations, mine.created_at, mine.updated_at) == (
        (), "2025-01-02T00:00:00.000Z", None,
    )  # fmt: skip


def test_detect_with_kibanas_rule_uuid_space_and_anomaly_index_gives_kibanas_ids(
    tmp_path: Path,
) -> None:
    events = write_ndjson(tmp_path / "events.ndjson", scenario_events())
    bulk = tmp_path / "bulk.ndjson"
    res = CliRunner().invoke(main, [
        "detect", "--store", str(tmp_path / "s.db"), "--format", "ndjson", "-q",
        "--rule-uuid", EXPORT["id"], "--space", "secops",
        "--anomaly-index", ".ml-anomalies-shared-000001", "--kibana-version", "8.18.2",
        "--output", f"es-bulk:{bulk}", str(events),
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    (doc,) = [json.loads(x) for x in res.stdout.splitlines()]
    record_id = doc["kibana.alert.ancestors"][0]["id"]
    expected = hashlib.sha256(
        f".ml-anomalies-shared-000001{record_id}undefinedsecops:{EXPORT['id']}".encode()
    ).hexdigest()
    assert doc["kibana.alert.uuid"] == expected
    assert doc["kibana.alert.ancestors"] == [
        {"id": record_id, "type": "event", "index": ".ml-anomalies-shared-000001", "depth": 0}
    ]
    assert (doc["kibana.space_ids"], doc["kibana.version"]) == (["secops"], "8.18.2")
    action = json.loads(bulk.read_text().splitlines()[0])
    assert action == {"create": {"_index": ".alerts-security.alerts-secops", "_id": expected,
                                 "require_alias": True}}  # fmt: skip
