"""Parquet input (ECS nested / flat, OCSF) with the datafeed pushed down to DuckDB, and OCSF NDJSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from rarebird.datafeed.query import compile_query
from rarebird.datafeed.sql import compile_sql
from rarebird.events import ProcessEvent
from rarebird.sources import SourceOptions, open_source
from rarebird.sources.base import SqlColumn
from rarebird.sources.parquet import leaf_columns, quote


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rarebird", *args], capture_output=True,
                          text=True, check=False)  # fmt: skip


def to_parquet(ndjson: Path, out: Path, *, flat: bool = False) -> None:
    """NDJSON → Parquet as DuckDB writes it from JSON (structs), or with dotted column names."""
    con = duckdb.connect()
    scan = f"read_json_auto('{ndjson}', sample_size = -1)"
    if flat:
        rel = con.sql(f"SELECT * FROM {scan} LIMIT 0")
        leaves = leaf_columns(list(rel.columns), list(rel.types))
        select = ", ".join(f"{col.expr} AS {quote(name)}" for name, (col, _) in leaves.items())
        scan = f"(SELECT {select} FROM {scan})"
    con.execute(f"COPY (SELECT * FROM {scan}) TO '{out}' (FORMAT parquet)")
    con.close()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fleet")
    path = folder / "fleet.ndjson"
    proc = run("generate", "--days", "14", "--file", str(path))
    assert proc.returncode == 0, proc.stderr
    to_parquet(path, folder / "nested.parquet")
    to_parquet(path, folder / "flat.parquet", flat=True)
    return folder


def records(store: Path, inputs: str, *extra: str) -> list[dict[str, Any]]:
    proc = run("job", "run", "--quiet", "--store", str(store), *extra, inputs)
    assert proc.returncode == 0, proc.stderr
    out = run("results", "--store", str(store), "--format", "ndjson")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_parquet_both_shapes_give_the_records_of_ndjson(fleet: Path, tmp_path: Path) -> None:
    want = records(tmp_path / "nd.db", str(fleet / "fleet.ndjson"))
    assert len(want) == 12
    assert any(r.get("by_field_value") == "www-data" for r in want)
    for shape in ("nested", "flat"):
        got = records(tmp_path / f"{shape}.db", str(fleet / f"{shape}.parquet"))
        assert got == want, shape  # times, users, probabilities, scores: every field


def test_the_schema_shapes_seen(fleet: Path) -> None:
    con = duckdb.connect()
    nested = con.sql(f"SELECT * FROM read_parquet('{fleet / 'nested.parquet'}') LIMIT 0")
    flat = con.sql(f"SELECT * FROM read_parquet('{fleet / 'flat.parquet'}') LIMIT 0")
    assert "process" in nested.columns
    assert "process.name" not in nested.columns
    assert {"process.name", "process.args"} <= set(flat.columns)
    source = open_source(str(fleet / "flat.parquet"), "auto", SourceOptions())
    assert source.describe().endswith("flat.parquet: parquet (auto)")


#: A datafeed mixing what SQL says exactly with what it cannot (range, text match, a wildcard
#: under must_not, a case-insensitive term).
LOOSE_QUERY: dict[str, Any] = {
    "bool": {
        "filter": [{"term": {"event.type": "start"}},
                   {"range": {"@timestamp": {"gte": "2026-01-08T00:00:00Z"}}}],
        "must": [{"bool": {"should": [{"term": {"process.name": {"value": "SS", "case_insensitive": True}}},
                                      {"prefix": {"process.name": "netst"}}]}}],
        "must_not": [{"wildcard": {"user.name": "www-*"}}, {"terms": {"host.name": ["db-01"]}}],
    }
}  # fmt: skip


def test_a_query_sql_cannot_fully_say_still_gives_the_right_events(fleet: Path) -> None:
    query = compile_query(LOOSE_QUERY)
    options = SourceOptions(pushdown=compile_sql(LOOSE_QUERY))

    def matching(path: Path) -> list[ProcessEvent]:
        return [e for e in open_source(str(path), "auto", options) if query.matches(e)]

    want = matching(fleet / "fleet.ndjson")
    assert len(want) > 100
    source = open_source(str(fleet / "nested.parquet"), "auto", options)
    got = [e for e in source if query.matches(e)]
    strip = [(e.timestamp, e.user_name, e.process_name, e.host_name, e.process_args) for e in want]
    assert [(e.timestamp, e.user_name, e.process_name, e.host_name, e.process_args)
            for e in got] == strip  # fmt: skip
    assert source.stats.prefiltered > 0  # the exact parts still narrowed the scan


def test_sql_is_exact_where_it_can_be_and_a_superset_elsewhere() -> None:
    cols = {"process.name": SqlColumn('"process.name"'), "user.name": SqlColumn('"user.name"'),
            "event.type": SqlColumn('"event.type"', is_list=True)}  # fmt: skip
    exact = compile_sql({"bool": {"must_not": [{"term": {"user.name": "root"}}],
                                  "filter": [{"terms": {"process.name": ["ss", "netstat"]}}]}})  # fmt: skip
    assert exact.exact(cols)
    assert exact.render(cols) == (
        '(coalesce("process.name" IN (?, ?), FALSE) AND NOT coalesce("user.name" IN (?), FALSE))',
        ["ss", "netstat", "root"],
    )
    loose = compile_sql(LOOSE_QUERY)
    assert not loose.exact(cols)
    where, params = loose.render(cols)
    assert "user.name" not in where  # a must_not over a LIKE is dropped, never inverted
    # a field the input lacks matches nothing (and its negation everything)
    assert compile_sql({"term": {"nope": "x"}}).render(cols) == ("FALSE", [])
    assert compile_sql({"bool": {"must_not": {"term": {"nope": "x"}}}}).render(cols) == ("TRUE", [])
    con = duckdb.connect()
    rows = con.execute(
        "SELECT n FROM (VALUES ('ss', 'alice'), ('netstat', 'root'), ('ls', 'bob'), "
        '(\'ss\', NULL)) t("process.name", "user.name"), (SELECT 1 AS n) '
        f"WHERE {exact.render(cols)[0]}".replace("SELECT n", 'SELECT "process.name"'),
        exact.render(cols)[1],
    ).fetchall()
    assert sorted(rows) == [("ss",), ("ss",)]


# --- OCSF Process Activity (fixtures built from ocsf-schema's process_activity, process, actor,
# --- session, device and os objects) -------------------------------------------------------------

OCSF_EVENTS = [
    {"class_uid": 1007, "category_uid": 1, "activity_id": 1, "activity_name": "Launch",
     "type_uid": 100701, "time": 1767571800123, "severity_id": 1,
     "actor": {"user": {"name": "alice", "uid": "1000"}, "session": {"uid": "s-42"},
               "process": {"pid": 900, "name": "sudo"}},
     "process": {"pid": 4242, "name": "ss", "cmd_line": "ss -tunap",
                 "file": {"name": "ss", "path": "/usr/bin/ss"},
                 "user": {"name": "root", "uid": "0"},
                 "parent_process": {"pid": 900, "file": {"name": "sudo", "path": "/usr/bin/sudo"}}},
     "device": {"hostname": "web-01", "uid": "d-1", "os": {"name": "Ubuntu", "type": "Linux", "type_id": 200}},
     "metadata": {"version": "1.3.0", "product": {"name": "constructed"}}},
    {"class_uid": 1007, "category_uid": 1, "activity_id": 1, "activity_name": "Launch",
     "type_uid": 100701, "time": 1767571860000,
     "actor": {"user": {"name": "www-data", "uid": "33"}},
     "process": {"pid": 4300, "file": {"name": "netstat", "path": "/bin/netstat"},
                 "cmd_line": "netstat -an", "parent_process": {"pid": 1, "name": "php-fpm"}},
     "device": {"name": "web-02", "os": {"name": "Debian", "type_id": 200}},
     "metadata": {"version": "1.3.0", "product": {"name": "constructed"}}},
    {"class_uid": 1007, "category_uid": 1, "activity_id": 2, "activity_name": "Terminate",
     "type_uid": 100702, "time": 1767571870000,
     "process": {"pid": 4242, "name": "ss", "user": {"name": "root", "uid": "0"}},
     "device": {"hostname": "web-01", "os": {"name": "Ubuntu", "type_id": 200}},
     "metadata": {"version": "1.3.0", "product": {"name": "constructed"}}},
    {"class_uid": 4001, "category_uid": 4, "activity_id": 6, "time": 1767571880000,
     "metadata": {"version": "1.3.0", "product": {"name": "constructed"}}},
]  # fmt: skip


@pytest.fixture
def ocsf(tmp_path: Path) -> Path:
    path = tmp_path / "ocsf.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in OCSF_EVENTS))
    return path


def test_ocsf_process_activity_maps_to_the_jobs_ecs_fields(ocsf: Path) -> None:
    source = open_source(str(ocsf), "auto", SourceOptions())
    assert source.describe().endswith("ocsf (auto)")
    events = list(source)
    assert len(events) == 3
    first, second, end = events
    assert first.to_ecs() == {
        "@timestamp": "2026-01-05T00:10:00.123Z",
        "event": {"kind": "event", "category": ["process"], "type": ["start"], "action": "Launch"},
        "user": {"name": "root", "id": "0", "audit": {"name": "alice", "id": "1000"}},
        "process": {"name": "ss", "executable": "/usr/bin/ss", "args": ["ss", "-tunap"],
                    "command_line": "ss -tunap", "pid": 4242,
                    "parent": {"pid": 900, "name": "sudo", "executable": "/usr/bin/sudo"},
                    "session_leader": {"entity_id": "s-42"}},
        "host": {"name": "web-01", "hostname": "web-01", "id": "d-1",
                 "os": {"type": "linux", "name": "Ubuntu"}},
    }  # fmt: skip
    assert (second.user_name, second.user_audit_name, second.process_name, second.host_name) == (
        "www-data", "www-data", "netstat", "web-02")  # fmt: skip
    assert end.event_type == ("end",)
    assert [str(i).split(": {")[0] for i in source.stats.issues] == [
        f"{ocsf}:4: not OCSF Process Activity (class_uid 4001)"
    ]
    login = list(open_source(str(ocsf), "ocsf", SourceOptions(identity="login")))
    assert login[0].user_name == "alice"


def test_ocsf_parquet_gives_the_events_of_ocsf_ndjson(ocsf: Path, tmp_path: Path) -> None:
    out = tmp_path / "ocsf.parquet"
    to_parquet(ocsf, out)
    want = [(e.timestamp, e.to_ecs()) for e in open_source(str(ocsf), "ocsf", SourceOptions())]
    source = open_source(str(out), "auto", SourceOptions())
    got = [(e.timestamp, e.to_ecs()) for e in source]
    assert got == want
    datafeed = json.loads(
        (Path(__file__).parents[1] / "src/rarebird/definitions/data"
         / "datafeed_v3_linux_network_connection_discovery.json").read_text())["query"]  # fmt: skip
    pushed = open_source(str(out), "parquet", SourceOptions(pushdown=compile_sql(datafeed)))
    assert [e.user_name for e in pushed] == ["root", "www-data"]  # the datafeed in SQL
    assert pushed.stats.prefiltered == 2


def test_export_parquet_by_day_round_trips_through_job_run(fleet: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    proc = run("export", "parquet", str(fleet / "fleet.ndjson"), "-o", str(lake))
    assert proc.returncode == 0, proc.stderr
    days = sorted(p.parent.name for p in lake.glob("day=*/part-0.parquet"))
    assert days == [f"day=2026-01-{d:02d}" for d in range(5, 19)]
    assert "rarebird: 67,717 events written to 14 file(s), 0 input line(s) skipped" in proc.stderr
    assert records(tmp_path / "lake.db", str(lake)) == records(
        tmp_path / "nd.db", str(fleet / "fleet.ndjson")
    )


def test_export_counts_skipped_lines(ocsf: Path, tmp_path: Path) -> None:
    proc = run("export", "parquet", str(ocsf), "-o", str(tmp_path / "lake"))
    assert proc.returncode == 0, proc.stderr
    assert "3 events written to 1 file(s), 1 input line(s) skipped" in proc.stderr
    assert "skipped 1: not OCSF Process Activity (class_uid 4001)" in proc.stderr
