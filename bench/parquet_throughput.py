"""Parquet end to end (DuckDB, the datafeed pushed down) against the same events read from NDJSON.

Uses the ECS bench file of ``bench/ecs_throughput.py`` (1M rich Elastic Defend documents, 2 %
netstat/ss/route/showmount starts, cached under ``bench/out/``), writes it once as Parquet
(nested structs, as DuckDB writes from JSON; not timed), then times in the same run, best of
``--repeat``, each as a child process with its peak RSS:

1. the baseline: ``rarebird job run`` on the NDJSON file;
2. ``rarebird job run`` on the Parquet file (DuckDB on one thread).

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ndjson = bench_file(args.events, args.seed)
    parquet = parquet_file(ndjson)
    rarebird = str(Path(sys.executable).with_name("rarebird"))
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores shared); {args.events:,} events")
    print(
        f"NDJSON {ndjson.stat().st_size / 1e6:,.0f} MB, Parquet {parquet.stat().st_size / 1e6:,.0f} MB"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in (("job run, NDJSON (baseline)", ndjson), ("job run, Parquet", parquet)):
            best: tuple[float, float | None] | None = None
            for i in range(args.repeat):
                # a fresh store each time: a second run into the same store continues the job,
                # drops every event as older than its bucket and measures nothing
                store = os.path.join(tmp, f"{len(rows)}-{i}.db")
                cmd = [rarebird, "job", "run", "--quiet", "--store", store, str(path)]
                seconds, rss, _ = run_timed(cmd, 1)
                os.unlink(store)
                if best is None or seconds < best[0]:
                    best = (seconds, rss)
            assert best is not None
            rows.append((name, *best))
    base = rows[0][1]
    print(f"{'what':32} {'seconds':>8} {'events/s':>12} {'x baseline':>10} {'peak RSS MB':>11}")
    for name, seconds, rss in rows:
        rate = args.events / seconds
        print(f"{name:32} {seconds:8.2f} {rate:12,.0f} {base / seconds:10.2f} "
              f"{rss if rss is not None else float('nan'):11.0f}")  # fmt: skip
    _, seconds, rss = rows[1]
    rate = args.events / seconds
    print(
        f"target {TARGET_RATE:,} events/s: {'met' if rate >= TARGET_RATE else 'NOT met'}; "
        f"RSS < {TARGET_RSS_MB:.0f} MB: {'met' if rss and rss < TARGET_RSS_MB else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
