"""The sample-data generator: deterministic, realistic, and the demo's story is in it."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from rarebird.definitions.datafeed import load_datafeed
from rarebird.generate.ecs import write_ecs
from rarebird.generate.fleet import attack_window
from rarebird.generate.options import GeneratorOptions
from rarebird.generate.scenarios import generate_documents, generate_events
from rarebird.sources import KEEP_ALL, SourceOptions
from rarebird.sources.ecs import EcsSource

ROOT = Path(__file__).resolve().parent.parent
DISCOVERY = {"netstat", "ss", "route", "showmount"}


def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    code = "import sys; from rarebird.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, "generate", *args], capture_output=True, check=False, cwd=ROOT
    )


def ndjson(options: GeneratorOptions) -> bytes:
    out = io.BytesIO()
    write_ecs(generate_documents(options), out)
    return out.getvalue()


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    options = GeneratorOptions(days=2, seed=3)
    first = ndjson(options)
    assert first == ndjson(GeneratorOptions(days=2, seed=3))
    assert first != ndjson(GeneratorOptions(days=2, seed=4))
    bench = GeneratorOptions(profile="bench", events=500, seed=3)
    assert ndjson(bench) == ndjson(bench)


def test_cli_writes_files_stdout_and_gzip_identically(tmp_path: Path) -> None:
    a, b, gz = tmp_path / "a.ndjson", tmp_path / "b.ndjson", tmp_path / "c.ndjson.gz"
    for target in (a, b, gz):
        proc = run_cli("--days", "2", "--seed", "5", "--output", str(target))
        assert proc.returncode == 0, proc.stderr
    assert a.read_bytes() == b.read_bytes()
    assert gzip.decompress(gz.read_bytes()) == a.read_bytes()
    first_gz = gz.read_bytes()
    assert run_cli("--days", "2", "--seed", "5", "--output", str(gz)).returncode == 0
    assert gz.read_bytes() == first_gz  # no timestamp in the gzip header
    proc = run_cli("--days", "2", "--seed", "5", "--output", "-")
    assert proc.stdout == a.read_bytes()
    lines = a.read_bytes().count(b"\n")
    assert proc.stderr.decode().startswith(f"wrote {lines:,} ecs events")
    assert b"constructed attack: www-data discovery burst" in proc.stderr


def test_cli_usage_errors(tmp_path: Path) -> None:
    proc = run_cli("--events", "10", "--output", str(tmp_path / "x"))
    assert proc.returncode == 1
    assert b"--events applies to --profile bench" in proc.stderr
    proc = run_cli("--start", "yesterday", "--output", str(tmp_path / "x"))
    assert proc.returncode == 1
    assert b"not a date" in proc.stderr
    assert not (tmp_path / "x").exists()


def test_bench_profile_shape(tmp_path: Path) -> None:
    path = tmp_path / "bench.ndjson"
    proc = run_cli("--profile", "bench", "--events", "4000", "--seed", "1", "--output", str(path))
    assert proc.returncode == 0, proc.stderr
    data = path.read_bytes()
    docs = [orjson.loads(x) for x in data.splitlines()]
    assert len(docs) == 4000
    assert 1300 <= len(data) / len(docs) <= 1500  # about 1.4 KB each, like Elastic Defend's
    ends = sum(d["event"]["type"] == ["end"] for d in docs)
    assert 300 <= ends <= 500  # about 10 %
    discovery = sum(d["process"]["name"] in DISCOVERY for d in docs)
    assert 40 <= discovery <= 120  # about 2 %
    stamps = [d["@timestamp"] for d in docs]
    assert stamps == sorted(stamps)
    assert {d["agent"]["type"] for d in docs} == {"endpoint"}


def test_fleet_documents_are_ecs_and_in_time_order() -> None:
    docs = list(generate_documents(GeneratorOptions(days=2, seed=7)))
    stamps = [d["@timestamp"] for d in docs]
    assert stamps == sorted(stamps)
    assert stamps[0].startswith("2026-01-05T")
    assert stamps[-1] < "2026-01-07T00:00:05"
    for doc in docs[:200]:
        assert doc["ecs"]["version"] == "8.11.0"
        assert doc["event"]["kind"] == "event"
        assert doc["event"]["category"] == ["process"]
        assert doc["event"]["type"] in (["start"], ["end"])
        assert doc["event"]["module"] in ("endpoint", "auditd")
        assert doc["host"]["os"]["type"] == "linux"
        assert doc["host"]["os"]["family"] in ("debian", "redhat")
        assert doc["agent"]["type"] in ("endpoint", "auditbeat")
        process = doc["process"]
        assert process["name"] == process["executable"].rsplit("/", 1)[-1]
        assert process["args"][0] in (process["name"], process["executable"])
        assert isinstance(process["pid"], int)
        assert isinstance(process["parent"]["pid"], int)
        assert doc["user"]["name"]
        assert doc["user"]["id"] == doc["group"]["id"]
    names = Counter(d["process"]["name"] for d in docs)
    for decoy in ("sshd", "sss_cache", "ip"):
        assert names[decoy] > 0


def test_fleet_schedules() -> None:
    docs = list(generate_documents(GeneratorOptions(days=1, hosts=4, seed=11)))
    starts = [d for d in docs if d["event"]["type"] == ["start"]]
    monitor = Counter(d["host"]["name"] for d in starts if d["user"]["name"] == "monitor")
    assert monitor == {"web-01": 288, "web-02": 288, "db-01": 288, "bastion-01": 288}
    assert {d["process"]["name"] for d in starts if d["user"]["name"] == "monitor"} == {"ss"}
    nagios = Counter(d["host"]["name"] for d in starts if d["user"]["name"] == "nagios")
    assert nagios == {"web-01": 144, "web-02": 144, "db-01": 144}
    assert {tuple(d["process"]["args"]) for d in starts if d["user"]["name"] == "nagios"} == {
        ("netstat", "-tlnp")
    }


def test_the_constructed_attack_comes_late_from_an_account_new_to_discovery() -> None:
    options = GeneratorOptions()  # the demo: 14 days, seed 7
    begin, end = attack_window(options)
    assert begin == datetime(2026, 1, 16, 2, 41, 7, tzinfo=UTC)
    assert begin - options.start > timedelta(days=10)
    feed = load_datafeed().query
    discovery_users: dict[str, list[datetime]] = {}
    for event in generate_events(options):
        if feed.matches(event):
            discovery_users.setdefault(event.user_name or "", []).append(event.timestamp)
    www = discovery_users["www-data"]
    assert len(www) == 5  # ss x2, netstat x2, showmount: of the T1049/T1016/T1135 lines
    assert all(begin <= t <= end for t in www)
    assert set(discovery_users) == {"monitor", "nagios", "alice", "bob", "www-data"}


def test_events_api_equals_reading_the_file_back(tmp_path: Path) -> None:
    options = GeneratorOptions(days=1, hosts=3, seed=2)
    path = tmp_path / "fleet.ndjson"
    path.write_bytes(ndjson(options))
    source = EcsSource(str(path), SourceOptions(prefilter=KEEP_ALL))
    read = [replace(e, origin=None) for e in source]
    assert read == list(generate_events(options))


def test_invalid_options() -> None:
    with pytest.raises(ValueError, match="profile"):
        GeneratorOptions(profile="huge")
    with pytest.raises(ValueError, match="UTC-aware"):
        GeneratorOptions(start=datetime(2026, 1, 5))  # noqa: DTZ001
    with pytest.raises(ValueError, match="discovery fraction"):
        GeneratorOptions(discovery_fraction=0)
