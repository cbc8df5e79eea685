"""``job run --aggregate``: DuckDB counts each user's events per bucket, and the job fed those
counts gives the records, bucket and influencer results and the model state of the per-event
replay -- on the labelled fleet, on every oracle scenario, and on inputs built to break it (ties
across files, missing users, list-valued and numeric fields, rows with no or implausible times).
Spark's counting is tested beside the other Spark tests (tests/test_spark.py)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rarebird.cli import main
from tests.columnar_support import day, doc, labelled_fleet, tie_files, to_parquet, write_parquet
from tests.conftest import shared_path
from tests.test_oracle import SCENARIOS
from tests.test_spark import results


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def cli(*args: str) -> str:
    res = invoke(*args)
    assert res.exit_code == 0, (res.output, res.exception)
    return str(res.stderr)


def state(store: Path) -> dict[str, Any]:
    """The job's saved state (model, normalisers, counts, the bucket being built)."""
    con = sqlite3.connect(store)
    (text,) = con.execute("SELECT state FROM job_state").fetchone()
    con.close()
    return dict(json.loads(text))


def both(inputs: list[Path], tmp_path: Path, *extra: str) -> tuple[Path, Path]:
    """The same inputs replayed per event and counted by DuckDB, into two stores."""
    one, two = tmp_path / "events.db", tmp_path / "groups.db"
    for store, flags in ((one, ()), (two, ("--aggregate",))):
        cli("job", "run", "--quiet", "--store", str(store), *extra, *flags, *map(str, inputs))
    return one, two


def assert_same(one: Path, two: Path) -> None:
    assert results(two) == results(one)  # every field of every record, bucket, influencer
    assert state(two) == state(one)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return labelled_fleet(tmp_path_factory.mktemp("labelled"))


@pytest.mark.parametrize("shape", ["nested", "flat"])
def test_the_labelled_fleet_counted_by_duckdb_gives_the_per_event_results(
    labelled: Path, shape: str, tmp_path: Path
) -> None:
    one, two = both([labelled / f"{shape}.parquet"], tmp_path)
    assert_same(one, two)
    records = results(two)["record"]
    assert len(records) == 38
    assert {r["by_field_value"] for r in records} >= {"www-data"}
    # the events behind the records are not kept, and triage says so (not "no history")
    con = sqlite3.connect(two)
    assert con.execute("SELECT count(*) FROM events").fetchone() == (0,)
    con.close()
    top = max(records, key=lambda r: r["record_score"])
    ident = f"{top['by_field_value']}@{top['timestamp']}"
    note = "1 run(s) of this job counted their events in the scan (job run --aggregate)"
    res = invoke("triage", "--store", str(two), ident)
    assert res.exit_code == 0, res.output
    assert note in res.stdout
    assert "the history and the commands shown miss those events" in res.stdout
    res = invoke("triage", "--store", str(one), ident)
    assert res.exit_code == 0, res.output
    assert note not in res.stdout


@pytest.mark.corpora
@pytest.mark.parametrize("name", SCENARIOS)
def test_every_oracle_scenario_counted_by_duckdb(name: str, tmp_path: Path) -> None:
    oracle = shared_path("oracle")
    parquet = to_parquet(oracle / "inputs" / f"{name}.ndjson", tmp_path / f"{name}.parquet")
    one, two = both([parquet], tmp_path, "--job", str(oracle / "job_config.json"))
    assert results(one)["bucket"]
    assert_same(one, two)


def test_ties_missing_users_and_stray_times_as_the_per_event_replay(tmp_path: Path) -> None:
    """Two files whose events tie to the microsecond (the order is input, then row: the user
    who appears first gets the first person id), users missing, hosts as lists with nulls,
    login users in several orders, rows without a time and from 1970 and 3000 (quarantined):
    the same records, state, skipped and quarantined counts."""
    files = tie_files(tmp_path)
    one, two = both(files, tmp_path)
    assert_same(one, two)
    job = state(two)["stats"]
    assert job["missing_field_count"] == 19 * 8
    records = results(two)["record"]
    assert {"mallory", "trent"} <= {r["by_field_value"] for r in records}
    out = [invoke("job", "run", "--store", str(tmp_path / f"s{i}.db"), *flag, *map(str, files))
           for i, flag in enumerate(((), ("--aggregate",)))]  # fmt: skip
    for res in out:
        assert res.exit_code == 0, res.output
        assert "kept    613 events matched the datafeed (1 lines skipped unparsed" in res.stderr
        assert "skipped 1 lines: 1 missing @timestamp" in res.stderr
        assert "b.parquet:307: missing @timestamp" in res.stderr
        assert "time    1 event(s) dated before 1990-01-01T00:00:00.000Z were" in res.stderr
        assert "a.parquet:308: 3000-01-01T00:00:00.000Z (dated in the future)" in res.stderr
        assert "\\x1b" not in res.stderr
    assert "counted by DuckDB" in out[1].stderr
    # a host.name that is text in one file and a list in the other: not one table to count
    files.append(write_parquet(tmp_path / "c.parquet", [doc(day(20, 11, 0), "zed", "db-9")]))
    res = invoke("job", "run", "--aggregate", "--store", str(tmp_path / "c.db"), *map(str, files))
    assert res.exit_code == 2, res.output
    assert "DuckDB cannot count these files as one table" in res.stderr


def test_what_aggregate_refuses_it_says_in_one_line(labelled: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "x.db")
    res = invoke("job", "run", "--aggregate", "--store", store, str(labelled / "fleet.ndjson"))
    assert res.exit_code == 2
    assert "--aggregate reads Parquet inputs; this one is ecs" in res.stderr
    parquet = str(labelled / "nested.parquet")
    res = invoke("job", "run", "--aggregate", "--profile", "quiet", "--store", store, parquet)
    assert res.exit_code == 2
    assert "--profile quiet needs every event: not with --aggregate" in res.stderr
    res = invoke("job", "run", "--aggregate", "--identity", "login", "--store", store, parquet)
    assert res.exit_code == 2
    assert "--aggregate models user.name as it is: not with --identity login" in res.stderr
    text = to_parquet(labelled / "fleet.ndjson", tmp_path / "text.parquet", text_time=True)
    res = invoke("job", "run", "--aggregate", "--store", store, str(text))
    assert res.exit_code == 2
    assert "--aggregate needs a typed time column" in res.stderr
