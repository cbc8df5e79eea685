"""Definitions as data: Elastic's files load as published; bad ones name the file and key."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from rarebird.definitions import (
    EA_DATAFEED_FILE,
    EA_JOB_FILE,
    EA_RULE_FILE,
    load_datafeed,
    load_job,
    load_rule,
    packaged_path,
)
from rarebird.errors import DefinitionError
from tests.conftest import shared_path


def test_packaged_defaults_are_elastics_job_datafeed_and_rule() -> None:
    job = load_job()
    assert job.job_id == "v3_linux_network_connection_discovery"
    assert job.bucket_span == timedelta(minutes=15)
    assert job.detector.function == "rare"
    assert job.detector.by_field_name == "user.name"
    assert job.influencers == ("process.name", "host.name", "process.args", "user.name")
    assert job.model_memory_limit == 64 * 2**20
    datafeed = load_datafeed()
    cond = datafeed.query.prefilter.condition_for("process.name")
    assert cond is not None
    assert cond.values == {"netstat", "ss", "route", "showmount"}
    rule = load_rule()
    assert rule.rule_id == "c28c4d8c-f014-40ef-88b6-79a1d67cd499"
    assert rule.anomaly_threshold == 25
    assert rule.interval == timedelta(minutes=15)
    assert rule.lookback == timedelta(minutes=45)
    assert rule.max_signals == 100
    assert (rule.severity, rule.risk_score) == ("low", 21)
    assert rule.machine_learning_job_id == ("v3_linux_network_connection_discovery",)
    assert rule.threat[0]["technique"][0]["id"] == "T1049"
    assert rule.threat[0]["tactic"]["id"] == "TA0007"
    assert "Triage and analysis" in rule.note


def test_ea_revision_ships_beside_the_default() -> None:
    job = load_job(packaged_path(EA_JOB_FILE))
    assert job.job_id == "v3_linux_network_connection_discovery_ea"
    assert "event.module" in job.influencers
    datafeed = load_datafeed(packaged_path(EA_DATAFEED_FILE))
    assert (
        datafeed.query.source["bool"]["must_not"]["terms"]["process.name"][0] == "elastic-agent.exe"
    )
    assert load_rule(packaged_path(EA_RULE_FILE)).machine_learning_job_id == (
        "v3_linux_network_connection_discovery_ea",
    )


def test_spec_files_load_as_published() -> None:
    folder = shared_path("spec", "elastic")
    for job in (
        "v3_linux_network_connection_discovery.json",
        "v3_linux_network_connection_discovery_ea.json",
    ):
        assert load_job(str(folder / job)).bucket_span_s == 900
    for name in ("v3", "ea"):
        assert load_rule(
            str(folder / f"discovery_ml_linux_system_network_connection_discovery.{name}.toml")
        )


def write(tmp_path: Path, name: str, doc: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(path)


def job_doc(**analysis: object) -> dict:
    base = {"bucket_span": "15m", "detectors": [{"function": "rare", "by_field_name": "user.name"}]}
    base.update(analysis)
    return {"analysis_config": base}


@pytest.mark.parametrize(
    ("doc", "key", "message"),
    [
        ({**job_doc(), "bogus": 1}, "bogus", "unknown key"),
        ({**job_doc(), "analysis_limit": {}}, "analysis_limit", "did you mean 'analysis_limits'"),
        (job_doc(bucket_span="fifteen"), "analysis_config.bucket_span", "not a duration"),
        (
            job_doc(detectors=[{"function": "mean", "field_name": "x"}]),
            "analysis_config.detectors[0].field_name",
            "no field_name",
        ),
        (
            job_doc(detectors=[{"function": "count", "by_field_name": "u"}]),
            "analysis_config.detectors[0].function",
            "unsupported function 'count'",
        ),
        (
            job_doc(detectors=[{"function": "rare"}]),
            "analysis_config.detectors[0].by_field_name",
            "needs a by_field_name",
        ),
        (
            {**job_doc(), "analysis_limits": {"model_memory_limit": "lots"}},
            "analysis_limits.model_memory_limit",
            "byte size",
        ),
    ],
)
def test_bad_job_definitions_name_file_and_key(
    tmp_path: Path, doc: dict, key: str, message: str
) -> None:
    path = write(tmp_path, "job.json", doc)
    with pytest.raises(DefinitionError) as err:
        load_job(path)
    assert err.value.path == path
    assert err.value.key == key
    assert message in str(err.value)
    assert str(err.value).startswith(f"{path}: {key}: ")


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "job.json", '{"analysis_config": {\n  "bucket_span": "15m",,\n}}')
    with pytest.raises(DefinitionError, match=r"job.json: invalid JSON at line 2 column 24"):
        load_job(path)


def test_datafeed_with_unsupported_query_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "df.json", {"query": {"bool": {"filter": [{"geo_shape": {}}]}}})
    with pytest.raises(DefinitionError, match=r"df.json: query: .*geo_shape.* not supported"):
        load_datafeed(path)
    path = write(tmp_path, "df2.json", {"query": {"match_all": {}}, "aggregations": {}})
    with pytest.raises(
        DefinitionError, match="df2.json: aggregations: datafeeds with aggregations"
    ):
        load_datafeed(path)


def test_rule_errors_name_the_key(tmp_path: Path) -> None:
    good = Path(
        packaged_path("discovery_ml_linux_system_network_connection_discovery.toml")
    ).read_text()
    path = write(tmp_path, "r.toml", good.replace('severity = "low"', 'severity = "meh"'))
    with pytest.raises(DefinitionError, match=r"r.toml: rule.severity: must be one of"):
        load_rule(path)
    path = write(
        tmp_path, "r2.toml", good.replace("anomaly_threshold = 25", "anomaly_threshold = 250")
    )
    with pytest.raises(DefinitionError, match=r"rule.anomaly_threshold: must be between 0 and 100"):
        load_rule(path)
    path = write(tmp_path, "r3.toml", good.replace('from = "now-45m"', 'from = "yesterday"'))
    with pytest.raises(DefinitionError, match=r"rule.from: not a relative date"):
        load_rule(path)


def test_kibana_rule_export_json_loads(tmp_path: Path) -> None:
    doc = {"rule_id": "x", "name": "n", "type": "machine_learning", "anomaly_threshold": 50,
           "machine_learning_job_id": "myjob", "interval": "5m", "from": "now-15m",
           "max_signals": 10}  # fmt: skip
    rule = load_rule(write(tmp_path, "rule.ndjson", json.dumps(doc) + "\n"))
    assert rule.machine_learning_job_id == ("myjob",)
    assert rule.lookback == timedelta(minutes=15)
    assert rule.max_signals == 10
