"""CSV / TSV input with ECS column names (``--input-format csv``, sniffed by ``auto``)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rarebird.sources import SourceOptions, open_source
from tests.conftest import shared_path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rarebird", *args], capture_output=True,
                          text=True, check=False)  # fmt: skip


def test_rows_become_events_and_bad_rows_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "@timestamp,user.name,process.name,host.name,process.args,process.pid,event.type\n"
        '1767571805,svc,netstat,h1,"netstat,-tulpn",42,start\n'
        "2026-01-05T00:11:00Z,alice,ss,h2,ss,,start\n"
        "not-a-time,bob,ss,h3,ss,1,start\n"
        "1767571999000,carol,route,h4,route\n"
        '1767572000000,dave,route,h4,"route,-n",7,start\n'
    )
    source = open_source(str(path), "auto", SourceOptions())
    assert source.describe() == f"{path}: csv (auto)"
    events = list(source)
    assert [e.user_name for e in events] == ["svc", "alice", "dave"]
    first = events[0]
    assert first.timestamp == datetime(2026, 1, 5, 0, 10, 5, tzinfo=UTC)
    assert first.process_args == ("netstat", "-tulpn")
    assert first.value("process.args") == "netstat,-tulpn"
    assert first.process_pid == 42
    assert first.event_type == ("start",)
    assert events[1].process_pid is None
    assert events[2].timestamp == datetime(2026, 1, 5, 0, 13, 20, tzinfo=UTC)
    issues = [str(i) for i in source.stats.issues]
    assert issues == [
        f"{path}:4: bad @timestamp: 'not-a-time'",
        f"{path}:5: wrong number of columns: 5 cells for 7 columns",
    ]


@pytest.mark.corpora
def test_the_oracles_autodetect_csv_gives_the_same_results_as_its_ndjson(tmp_path: Path) -> None:
    oracle = shared_path("oracle")
    everything = tmp_path / "all.json"
    everything.write_text(json.dumps({"query": {"match_all": {}}}))
    job = str(oracle / "job_config.json")
    out = {}
    for kind, args in (("csv", ["--datafeed", str(everything)]), ("ndjson", [])):
        store = tmp_path / f"{kind}.db"
        proc = run("job", "run", "--quiet", "--store", str(store), "--job", job, *args,
                   str(oracle / "inputs" / f"e_two_new_users_same_bucket.{kind}"))  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        out[kind] = json.loads(run("results", "--store", str(store), "--format", "json",
                                   "--sort", "time").stdout)  # fmt: skip
    assert out["csv"] == out["ndjson"]
    assert sorted(r["by_field_value"] for r in out["csv"]) == ["mallory", "trudy"]
