"""Parquet end to end (DuckDB, the datafeed pushed down) against the same events read from NDJSON.

Uses the ECS bench file of ``bench/ecs_throughput.py`` (1M rich Elastic Defend documents, 2 %
netstat/ss/route/showmount starts, cached under ``bench/out/``), writes it once as Parquet
(nested structs, as DuckDB writes from JSON; not timed), then times in the same run, best of
``--repeat``, each as a child process with its peak RSS:

1. the baseline: ``rarebird job run`` on the NDJSON file;
2. ``rarebird job run`` on the Parquet file (DuckDB on one thread);
3. ``rarebird job run --aggregate`` on the Parquet file: DuckDB also counts each user's events
   per bucket and only the groups reach the job (the records are the same; checked here).

``--copies N`` measures a dense fleet instead: the Parquet file's rows N times, squeezed into one
day (96 buckets) with each copy's users renamed (4 N users), the way a large fleet's day reads;
the baseline is then the per-event Parquet run (the NDJSON would be N times 1.4 GB).
How much ``--aggregate`` saves depends on the events per (user, bucket): the 1 M file spreads
18,313 matching events over 14 days (5,187 groups, 3.5 events a group); the dense day has far
more events per group.

Targets (issue 12): Parquet >= 5,000,000 events/s on one core, peak RSS < 300 MB.

    python bench/parquet_throughput.py                  # 1M events
    python bench/parquet_throughput.py --events 100000  # quick
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ecs_throughput import OUT, bench_file, run_timed

TARGET_RATE = 5_000_000
TARGET_RSS_MB = 300.0


def parquet_file(ndjson: Path) -> Path:
    """The NDJSON as DuckDB writes it from JSON, UUIDs as text (as ``export parquet`` writes
    them, so that Spark reads the same file: bench/spark_throughput.py)."""
    import duckdb

    from rarebird.sources.parquet import portable_select

    path = OUT / (ndjson.stem + ".portable.parquet")
    if not path.exists():
        con = duckdb.connect()
        tmp = path.with_suffix(".tmp")
        scan = f"read_json_auto('{ndjson}', sample_size = -1)"
        rel = con.sql(f"SELECT * FROM {scan} LIMIT 0")
        select = portable_select(list(rel.columns), list(rel.types))
        con.execute(f"COPY (SELECT {select} FROM {scan}) TO '{tmp}' (FORMAT parquet)")
        con.close()
        tmp.rename(path)
    return path


def dense_file(parquet: Path, copies: int) -> Path:
    """The rows of ``parquet`` ``copies`` times over one day, each copy's users renamed."""
    import duckdb

    path = OUT / f"{parquet.stem}.dense{copies}.parquet"
    if not path.exists():
        con = duckdb.connect()
        tmp = path.with_suffix(".tmp")
        con.execute(f"""
            COPY (
              WITH src AS (SELECT * FROM read_parquet('{parquet}')),
                   b AS (SELECT epoch_us(min("@timestamp")) AS t0,
                                epoch_us(max("@timestamp")) - epoch_us(min("@timestamp")) + 1
                                  AS width FROM src)
              SELECT src.* REPLACE (
                to_timestamp(1767225600 + (epoch_us("@timestamp") - b.t0) * 86400.0 / b.width
                             / 1e6 + r.i * 0.000001) AS "@timestamp",
                struct_update("user", name := "user".name || '-' || r.i) AS "user")
              FROM src, b, range({copies}) AS r(i)
              ORDER BY "@timestamp"
            ) TO '{tmp}' (FORMAT parquet)""")
        con.close()
        tmp.rename(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--copies", type=int, default=0, help="a dense day of N copies")
    args = parser.parse_args()
    ndjson = bench_file(args.events, args.seed)
    parquet = parquet_file(ndjson)
    events = args.events
    if args.copies:
        parquet = dense_file(parquet, args.copies)
        events = args.events * args.copies
    rarebird = str(Path(sys.executable).with_name("rarebird"))
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores shared); {events:,} events")
    print(
        f"NDJSON {ndjson.stat().st_size / 1e6:,.0f} MB, Parquet {parquet.stat().st_size / 1e6:,.0f} MB"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs: tuple[tuple[str, Path, tuple[str, ...]], ...] = (
            ("job run, NDJSON (baseline)", ndjson, ()),
            ("job run, Parquet", parquet, ()),
            ("job run --aggregate, Parquet", parquet, ("--aggregate",)),
        )
        if args.copies:
            runs = (("job run, Parquet (baseline)", parquet, ()), runs[2])
        results = []
        for name, path, flags in runs:
            best: tuple[float, float | None] | None = None
            for i in range(args.repeat):
                # a fresh store each time: a second run into the same store continues the job,
                # drops every event as older than its bucket and measures nothing
                store = os.path.join(tmp, f"{len(rows)}-{i}.db")
                cmd = [rarebird, "job", "run", "--quiet", "--workers", "1", "--store", store, *flags,
                       str(path)]  # fmt: skip
                seconds, rss, _ = run_timed(cmd, 1)
                if i == 0:
                    results.append(stored_results(rarebird, store))
                os.unlink(store)
                if best is None or seconds < best[0]:
                    best = (seconds, rss)
            assert best is not None
            rows.append((name, *best))
        same = all(r == results[0] for r in results[1:])
        print(f"results identical in the {len(runs)} runs: {same}")
    base = rows[0][1]
    print(f"{'what':32} {'seconds':>8} {'events/s':>12} {'x baseline':>10} {'peak RSS MB':>11}")
    for name, seconds, rss in rows:
        rate = events / seconds
        print(f"{name:32} {seconds:8.2f} {rate:12,.0f} {base / seconds:10.2f} "
              f"{rss if rss is not None else float('nan'):11.0f}")  # fmt: skip
    for name, seconds, rss in rows[1:]:
        rate = events / seconds
        print(
            f"{name}: target {TARGET_RATE:,} events/s "
            f"{'met' if rate >= TARGET_RATE else 'NOT met'}; RSS < {TARGET_RSS_MB:.0f} MB: "
            f"{'met' if rss and rss < TARGET_RSS_MB else 'NOT met'}"
        )
    return 0 if same else 1


def stored_results(rarebird: str, store: str) -> str:
    """Every result document of a store (records, buckets, influencers), for comparing runs."""
    import subprocess

    docs = []
    for kind in ("record", "bucket", "influencer"):
        out = subprocess.run(
            [rarebird, "results", "--store", store, "--type", kind, "--format", "ndjson",
             "--sort", "time"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        docs.append(out.stdout)
    return "".join(docs)


if __name__ == "__main__":
    raise SystemExit(main())
