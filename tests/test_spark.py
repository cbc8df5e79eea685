"""``--engine spark``: the Parquet scan in Apache Spark (local mode), the job and rule the local
engine's -- so the records, alerts and scores are identical.

One SparkSession for the module (local[2], small settings), shared by the in-process CLI runs
(``rarebird.sources.spark.spark_session`` takes the active session). Skipped, saying why, without
PySpark or Java; the error a user gets without them is tested without Spark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from rarebird.cli import main
from rarebird.datafeed.sql import compile_sql
from rarebird.sources.base import SqlColumn
from rarebird.sources.parquet import quote
from rarebird.sources.spark import SparkUnavailable, check_spark
from tests.columnar_support import labelled_fleet, tie_files, to_parquet
from tests.conftest import shared_path


def cli(*args: str) -> str:
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, (res.output, res.exception)
    return res.stdout


def results(store: Path) -> dict[str, list[dict[str, Any]]]:
    """Every stored result document, by type (records, buckets, influencers)."""
    return {
        kind: [json.loads(line) for line in cli("results", "--store", str(store), "--type", kind,
                                                "--format", "ndjson", "--sort", "time").splitlines()]
        for kind in ("record", "bucket", "influencer")
    }  # fmt: skip


# --- without Spark: a clear error (runs wherever the suite runs) ----------------------------------


def test_engine_spark_without_java_is_one_clear_line(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    parquet = tmp_path / "x.parquet"
    duckdb.sql(
        f"COPY (SELECT TIMESTAMPTZ '2026-01-05 00:00:00+00' AS \"@timestamp\") TO '{parquet}'"
    )
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"} | {"PATH": str(empty)}
    proc = subprocess.run(
        [sys.executable, "-m", "rarebird", "job", "run", "--quiet", "--engine", "spark",
         "--store", str(tmp_path / "s.db"), str(parquet)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 1  # as for the missing Elasticsearch client: rarebird cannot run it
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("rarebird: error: --engine spark needs ")
    assert ("Java 17" in proc.stderr) or ("pip install 'rarebird[spark]'" in proc.stderr)


def test_spark_master_without_engine_spark_is_a_usage_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["job", "run", "--spark-master", "local[1]", "--store",
                                    str(tmp_path / "s.db"), str(tmp_path)])  # fmt: skip
    assert res.exit_code == 2
    assert "--spark-master goes with --engine spark" in res.output


# --- with Spark -----------------------------------------------------------------------------------


def _spark_or_skip() -> None:
    try:
        check_spark()
    except SparkUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    _spark_or_skip()
    from rarebird.sources.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return labelled_fleet(tmp_path_factory.mktemp("labelled"))


def test_spark_gives_the_local_engines_results_for_both_shapes(
    spark: Any, labelled: Path, tmp_path: Path
) -> None:
    cli("job", "run", "--quiet", "--store", str(tmp_path / "local.db"),
        str(labelled / "fleet.ndjson"))  # fmt: skip
    want = results(tmp_path / "local.db")
    assert len(want["record"]) == 38
    assert {r["by_field_value"] for r in want["record"]} >= {"www-data"}
    for shape in ("nested", "flat"):
        store = tmp_path / f"{shape}.db"
        cli("job", "run", "--quiet", "--engine", "spark", "--store", str(store),
            str(labelled / f"{shape}.parquet"))  # fmt: skip
        # times, users, probabilities, scores, influencers: every field of every document
        assert results(store) == want, shape


def test_detect_with_spark_raises_the_local_engines_alerts(
    spark: Any, labelled: Path, tmp_path: Path
) -> None:
    def alerts(store: Path, *engine: str, path: Path) -> list[dict[str, Any]]:
        out = cli("detect", "--quiet", "--format", "ndjson", *engine, "--store", str(store),
                  str(path))  # fmt: skip
        return [json.loads(line) for line in out.splitlines()]

    want = alerts(tmp_path / "local.db", path=labelled / "nested.parquet")
    assert len(want) == 24
    got = alerts(tmp_path / "spark.db", "--engine", "spark", path=labelled / "nested.parquet")
    assert got == want


def test_spark_reads_what_export_parquet_writes_and_reports_the_scan(
    spark: Any, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"  # one Spark scan a file: three days keep it short
    cli("generate", "--days", "3", "--file", str(tmp_path / "fleet.ndjson"))
    cli("export", "parquet", str(tmp_path / "fleet.ndjson"), "-o", str(lake))
    cli("job", "run", "--quiet", "--store", str(tmp_path / "local.db"), str(lake))
    out = CliRunner().invoke(main, ["job", "run", "--engine", "spark", "--store",
                                    str(tmp_path / "spark.db"), str(lake)])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "read    14,474 lines" in out.stderr
    assert "kept    6,487 events matched the datafeed (7,987 lines skipped unparsed" in out.stderr
    assert results(tmp_path / "spark.db") == results(tmp_path / "local.db")


def test_a_folder_is_one_scan_and_ties_across_files_keep_the_local_order(
    spark: Any, tmp_path: Path
) -> None:
    """The same events in two files of a folder: every event has a twin at the same time in
    the other file, so the order of ties across files decides the users' order in buckets.
    Two nested files are one Spark query; a nested and a flat file (which one table cannot
    hold) are a query each, merged as the local engine merges them. And a file whose times are
    text (as Spark writes them from JSON), parsed in Python by both engines."""
    ndjson = tmp_path / "fleet.ndjson"
    cli("generate", "--days", "2", "--file", str(ndjson))
    for name, shapes in (("same", (False, False)), ("mixed", (False, True)), ("text", (False,))):
        folder = tmp_path / name
        folder.mkdir()
        for i, flat in enumerate(shapes):
            to_parquet(ndjson, folder / f"part-{i}.parquet", flat=flat, text_time=name == "text")
        kind = duckdb.sql(f"SELECT * FROM '{folder / 'part-0.parquet'}' LIMIT 0").types[0]
        assert str(kind) == ("VARCHAR" if name == "text" else "TIMESTAMP WITH TIME ZONE")
        runs = [CliRunner().invoke(main, ["job", "run", *engine, "--store",
                                          str(tmp_path / f"{name}-{len(engine)}.db"), str(folder)])
                for engine in ((), ("--engine", "spark"))]  # fmt: skip
        assert [r.exit_code for r in runs] == [0, 0], runs[1].output
        one = f"{folder / 'part-0.parquet'}: parquet (auto)" if len(shapes) == 1 else ""
        assert f"input   {one or '2 Parquet files: parquet'}\n" in runs[1].stderr

        def counts(text: str) -> list[str]:
            return [
                ln.split(" in ")[0] for ln in text.splitlines() if ln.startswith(("read", "kept"))
            ]

        assert counts(runs[1].stderr) == counts(runs[0].stderr)
        assert counts(runs[0].stderr)[0].startswith("read    ")
        want = results(tmp_path / f"{name}-0.db")
        assert want["record"], name
        assert results(tmp_path / f"{name}-2.db") == want, name


def test_engine_spark_refuses_a_line_format(spark: Any, labelled: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["job", "run", "--engine", "spark", "--store",
                                    str(tmp_path / "s.db"), str(labelled / "fleet.ndjson")])  # fmt: skip
    assert res.exit_code == 2
    assert res.stderr == (
        f"rarebird: error: {labelled / 'fleet.ndjson'}: --engine spark reads Parquet inputs; "
        "this one is ecs (use the local engine, or rarebird export parquet first)\n"
    )


@pytest.mark.corpora
def test_every_oracle_scenario_through_spark(spark: Any, tmp_path: Path) -> None:
    """Each of the oracle's scenarios: NDJSON through the local engine, then its Parquet
    through Spark with Spark's counting (``--aggregate``, whose stray rows go through Spark's
    per-event scan), and per event for one of them (the per-event scan has its own tests on
    the labelled fleet; the suite's time): the same results."""
    oracle = shared_path("oracle")
    job = str(oracle / "job_config.json")
    names = sorted(p.stem for p in (oracle / "inputs").glob("*.ndjson"))
    assert len(names) == 7
    for name in names:
        ndjson = oracle / "inputs" / f"{name}.ndjson"
        local = tmp_path / f"{name}-local.db"
        cli("job", "run", "--quiet", "--job", job, "--store", str(local), str(ndjson))
        want = results(local)
        assert want["bucket"], name
        parquet = to_parquet(ndjson, tmp_path / f"{name}.parquet")
        modes: list[tuple[str, tuple[str, ...]]] = [("counted", ("--aggregate",))]
        if name == "e_two_new_users_same_bucket":
            modes.append(("events", ()))
        for mode, flags in modes:
            store = tmp_path / f"{name}-{mode}.db"
            cli("job", "run", "--quiet", "--job", job, "--engine", "spark", *flags, "--store",
                str(store), str(parquet))  # fmt: skip
            assert results(store) == want, (name, mode)


def _state(store: Path) -> Any:
    import sqlite3

    con = sqlite3.connect(store)
    (text,) = con.execute("SELECT state FROM job_state").fetchone()
    con.close()
    return json.loads(text)


def test_spark_counts_each_users_bucket_and_gives_the_per_event_results(
    spark: Any, labelled: Path, tmp_path: Path
) -> None:
    """``--aggregate --engine spark``: Spark groups by (bucket, user) and collects the
    influencer and identity values in arrival order; only the groups reach the job."""
    cli("job", "run", "--quiet", "--store", str(tmp_path / "local.db"),
        str(labelled / "nested.parquet"))  # fmt: skip
    want = results(tmp_path / "local.db")
    assert len(want["record"]) == 38
    for shape in ("nested", "flat"):
        store = tmp_path / f"{shape}.db"
        cli("job", "run", "--quiet", "--aggregate", "--engine", "spark", "--store", str(store),
            str(labelled / f"{shape}.parquet"))  # fmt: skip
        assert results(store) == want, shape
        assert _state(store) == _state(tmp_path / "local.db"), shape
    files = tie_files(tmp_path)
    runs = {}
    for name, flags in (("events", ()), ("spark", ("--aggregate", "--engine", "spark"))):
        store = tmp_path / f"ties-{name}.db"
        runs[name] = CliRunner().invoke(main, ["job", "run", "--store", str(store), *flags,
                                               *map(str, files)])  # fmt: skip
        assert runs[name].exit_code == 0, runs[name].output
    assert results(tmp_path / "ties-spark.db") == results(tmp_path / "ties-events.db")
    assert _state(tmp_path / "ties-spark.db") == _state(tmp_path / "ties-events.db")
    assert "counted by Spark" in runs["spark"].stderr
    for needle in ("kept    613 events matched", "skipped 1 lines: 1 missing @timestamp",
                   "time    1 event(s) dated before 1990"):  # fmt: skip
        assert needle in runs["spark"].stderr
        assert needle in runs["events"].stderr


#: Values where DuckDB's and Spark's SQL could disagree: case, list elements and NULLs inside
#: them, quotes and backslashes, LIKE's own characters.
ROWS = [
    ("ss", ["start"], "alice"),
    ("SS", ["start"], "bob"),
    ("netstat", ["end", "start"], "it's"),
    ("route", [None, "start"], "back\\slash"),
    ("showmount", ["end"], "carol"),
    ("net_x", [None], "dave"),
    (None, ["start"], "eve"),
    ("netstat", None, "frank"),
    ("ss", ["start"], None),
]
QUERIES: list[dict[str, Any]] = [
    {"bool": {"filter": [{"terms": {"process.name": ["ss", "netstat", "route"]}},
                         {"term": {"event.type": "start"}}]}},
    {"bool": {"must_not": [{"term": {"event.type": "end"}}, {"terms": {"user.name": ["it's", "back\\slash"]}}]}},
    {"bool": {"should": [{"prefix": {"process.name": "net"}}, {"exists": {"field": "event.type"}}],
              "must_not": {"exists": {"field": "user.name"}}}},
    {"wildcard": {"process.name": "net?x"}},
    {"wildcard": {"process.name": "net\\_*"}},
    {"bool": {"must_not": {"term": {"process.name": "SS"}}}},
    {"bool": {"should": [{"term": {"process.name": "ss"}}], "must_not": [{"term": {"user.name": "bob"}}]}},
]  # fmt: skip


def test_spark_sql_selects_the_rows_duckdb_selects(spark: Any) -> None:
    from pyspark.sql.types import ArrayType, StringType, StructField, StructType

    schema = StructType([StructField("process.name", StringType()),
                         StructField("event.type", ArrayType(StringType())),
                         StructField("user.name", StringType())])  # fmt: skip
    frame = spark.createDataFrame(ROWS, schema)
    con = duckdb.connect()
    con.execute(
        'CREATE TABLE t ("process.name" VARCHAR, "event.type" VARCHAR[], "user.name" VARCHAR)'
    )
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", ROWS)
    duck = {
        n: SqlColumn(quote(n), is_list=n == "event.type")
        for n in ("process.name", "event.type", "user.name")
    }
    sparky = {n: SqlColumn(f"`{n}`", is_list=n == "event.type") for n in duck}  # fmt: skip
    picked = []
    for query in QUERIES:
        sql = compile_sql(query)
        where, params = sql.render(duck)
        want = sorted(
            r[2] or "" for r in con.execute(f"SELECT * FROM t WHERE {where}", params).fetchall()
        )
        spark_where, none = sql.render(sparky, "spark")
        assert none == []
        got = sorted(r[2] or "" for r in frame.where(spark_where).collect())
        assert got == want, (query, spark_where)
        picked.append(got)
    assert picked == [
        ["", "alice", "back\\slash", "it's"],  # a NULL beside "start" in the list still matches
        ["", "alice", "bob", "dave", "eve", "frank"],  # no list, or only NULL in it: not "end"
        [""],
        ["dave"],  # ? is one character, case kept
        ["dave"],  # an escaped _ is a literal _
        ["", "alice", "back\\slash", "carol", "dave", "eve", "frank", "it's"],
        ["", "alice"],  # must_not does not make should optional (Elasticsearch's default)
    ]


def test_the_spark_condition_as_written() -> None:
    cols = {"event.type": SqlColumn("`event`.`type`", is_list=True),
            "user.name": SqlColumn("`user`.`name`")}  # fmt: skip
    sql = compile_sql({"bool": {"filter": [{"term": {"event.type": "start"}}],
                                "must_not": [{"terms": {"user.name": ["it's"]}}]}})  # fmt: skip
    assert sql.render(cols, "spark") == (
        "(coalesce(exists(`event`.`type`, x -> x IN ('start')), FALSE) AND "
        "NOT coalesce(`user`.`name` IN ('it\\'s'), FALSE))",
        [],
    )


def test_a_spark_run_in_its_own_process_prints_only_rarebirds_lines(tmp_path: Path) -> None:
    """``--engine spark`` from a shell starts its own JVM: the analyst sees rarebird's summary,
    not Spark's start-up chatter (the JVM's incubator-modules notice, "Setting default log
    level", log4j's defaults), and the records are the local engine's."""
    _spark_or_skip()
    ndjson = tmp_path / "fleet.ndjson"
    cli("generate", "--days", "1", "--file", str(ndjson))
    parquet = to_parquet(ndjson, tmp_path / "fleet.parquet")
    cli("job", "run", "--quiet", "--store", str(tmp_path / "local.db"), str(parquet))
    proc = subprocess.run(
        [sys.executable, "-m", "rarebird", "job", "run", "--engine", "spark", "--store",
         str(tmp_path / "spark.db"), str(parquet)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    heads = [line.split(" ", 1)[0] for line in proc.stderr.splitlines()]
    assert heads == ["input", "read", "kept", "job", "store"], proc.stderr
    assert results(tmp_path / "spark.db") == results(tmp_path / "local.db")
