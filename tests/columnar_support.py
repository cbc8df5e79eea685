"""Parquet inputs built for the columnar tests from ECS documents (not from rarebird's writer):
DuckDB writes them as it writes JSON, with a typed ``@timestamp``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
from click.testing import CliRunner

from rarebird.cli import main
from rarebird.sources.parquet import leaf_columns, portable_select, quote


def doc(
    ts: str | None, user: Any, host: Any, name: str = "ss", login: Any = None
) -> dict[str, Any]:
    """A process start of ``name`` on a Linux host, as Elastic Defend writes one."""
    out: dict[str, Any] = {
        "event": {"type": ["start"], "category": ["process"]},
        "process": {"name": name, "args": [name, "-t"]},
        "host": {"name": host, "os": {"type": "linux"}},
        "user": {"name": user, "audit": {"name": login}},
    }
    if ts is not None:
        out["@timestamp"] = ts
    return out


def write_parquet(path: Path, docs: list[dict[str, Any]]) -> Path:
    """Documents as Parquet with a typed timestamp column (what DuckDB writes from JSON)."""
    ndjson = path.with_suffix(".ndjson")
    ndjson.write_text("".join(json.dumps(d) + "\n" for d in docs))
    con = duckdb.connect()
    con.execute(
        f'COPY (SELECT * REPLACE (CAST("@timestamp" AS TIMESTAMPTZ) AS "@timestamp") '
        f"FROM read_json_auto('{ndjson}', sample_size = -1)) TO '{path}' (FORMAT parquet)"
    )
    con.close()
    return path


def day(d: int, hh: int, mm: int, ss: int = 0) -> str:
    return f"2026-03-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}.000Z"


def tie_files(folder: Path) -> list[Path]:
    """Two files whose events tie to the microsecond, users missing, hosts as lists with nulls
    (one of nulls only),
    login users in several orders, a row without a time, rows from 1970 and 3000, a decoy."""
    a, b = [], []
    for d in range(1, 20):
        for hour in range(0, 24, 3):
            a.append(doc(day(d, hour, 5), "alice", ["web-1", None, "web-2"], login="al"))
            b.append(doc(day(d, hour, 5), "bob", ["db-1"]))
            a.append(doc(day(d, hour, 7), "carol", ["web-1"], "netstat"))
            b.append(doc(day(d, hour, 7), None, ["db-1"]))
    a.append(doc(day(20, 10, 0), "mallory", [None], "route"))  # a host list of nulls only
    a.append(doc(day(20, 10, 1), "mallory", ["web-2", "web-1"], "route"))
    b.append(doc(day(20, 10, 1), "trent", ["db-1"], "showmount"))
    a.append(doc(day(20, 10, 2), "mallory", ["db-1"], "route", login="root"))
    b.append(doc(day(20, 10, 2), "mallory", ["db-2", "db-1"], "route", login="mal"))
    b.append(doc(None, "nobody", ["db-1"]))
    b.append(doc("1970-01-02T00:00:00Z", "eve", ["db-1"]))
    a.append(doc("3000-01-01T00:00:00Z", "eve", ["db-1"]))
    a.append(doc(day(20, 10, 3), "alice", ["web-3"], "sshd"))  # not a discovery tool
    return [write_parquet(folder / "a.parquet", a), write_parquet(folder / "b.parquet", b)]


def to_parquet(ndjson: Path, out: Path, *, flat: bool = False, text_time: bool = False) -> Path:
    """NDJSON → Parquet as DuckDB writes it from JSON: structs, or dotted column names (UUIDs as
    text, as ``rarebird export parquet`` writes them: Spark has no UUID type); ``text_time``:
    ``@timestamp`` as ISO-8601 text, as Spark writes it from JSON."""
    con = duckdb.connect()
    scan = f"read_json_auto('{ndjson}', sample_size = -1)"
    rel = con.sql(f"SELECT * FROM {scan} LIMIT 0")
    if flat:
        leaves = leaf_columns(list(rel.columns), list(rel.types))
        select = ", ".join(f"{col.expr} AS {quote(name)}" for name, (col, _) in leaves.items())
        scan = f"(SELECT {select} FROM {scan})"
        rel = con.sql(f"SELECT * FROM {scan} LIMIT 0")
    portable = portable_select(list(rel.columns), list(rel.types))
    if text_time:
        iso = """strftime("@timestamp" AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%gZ')"""
        portable = portable.replace('"@timestamp"', f'{iso} AS "@timestamp"', 1)
    con.execute(f"COPY (SELECT {portable} FROM {scan}) TO '{out}' (FORMAT parquet)")
    con.close()
    return out


def labelled_fleet(folder: Path) -> Path:
    """A small labelled fleet (8 hosts, 21 days: its smallest) as NDJSON and both Parquet
    shapes, in ``folder``."""
    ndjson = folder / "fleet.ndjson"
    res = CliRunner().invoke(main, ["generate", "--profile", "labelled", "--hosts", "8", "--days",
                                    "21", "--file", str(ndjson), "--labels",
                                    str(folder / "labels.csv")])  # fmt: skip
    assert res.exit_code == 0, res.output
    to_parquet(ndjson, folder / "nested.parquet")
    to_parquet(ndjson, folder / "flat.parquet", flat=True)
    return folder
