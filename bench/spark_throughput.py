"""``--engine spark`` (Spark local mode) against DuckDB on the same Parquet.

Uses the Parquet bench file of ``bench/parquet_throughput.py`` (1M rich Elastic Defend documents,
2 % netstat/ss/route/showmount starts). In the same run, each engine in its own child process:

- **end to end**: ``rarebird job run`` (DuckDB, the baseline) and ``rarebird job run --engine
  spark`` on ``local[1]`` and ``local[2]``, and both engines with ``--aggregate`` (the counting
  per user and bucket in the scan), as a user runs them: wall time, best of ``--repeat``;
- **inside one process** (``--child``): the engine started (Spark: the JVM and the session),
  then ``job run`` twice in a row into fresh stores, timing each run's wall time and CPU time --
  the Python process's own plus, for Spark, the JVM's (read from ``/proc``, as the JVM is not a
  child the process waits for) -- and the peak RSS of both. The second run is the steady state
  (the JVM's JIT warm): events per CPU second there is the per-core figure docs/SCALE.md plans
  with.

Every run must give the same anomaly records (checked). The machine is shared (2 vCPUs, other
work running): the load average is printed before and after.

    python bench/spark_throughput.py                  # 1M events
    python bench/spark_throughput.py --events 100000  # quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ecs_throughput import bench_file
from parquet_throughput import parquet_file

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(parquet: str, engine: str, master: str, out_dir: str) -> dict[str, Any]:
    """In this process: start the engine, then ``job run`` twice; wall and CPU of each."""
    from rarebird.cli import main as cli

    def cpu(jvm: int | None) -> float:
        me = resource.getrusage(resource.RUSAGE_SELF)
        return me.ru_utime + me.ru_stime + (proc_cpu(jvm) if jvm else 0.0)

    jvm = None
    t0, c0 = time.perf_counter(), cpu(None)
    if engine == "spark":
        from rarebird.sources.spark import spark_session

        session = spark_session(master)
        jvm = session.sparkContext._gateway.proc.pid
    else:
        import duckdb

        duckdb.connect().close()
    started = {"wall": time.perf_counter() - t0, "cpu": cpu(jvm) - c0}
    runs = []
    for i in range(2):
        store = os.path.join(out_dir, f"{engine}-{i}.db")
        flags = ["--engine", "spark"] if engine == "spark" else []
        t0, c0 = time.perf_counter(), cpu(jvm)
        cli(["job", "run", "--quiet", *flags, "--store", store, parquet], standalone_mode=False)
        runs.append({"wall": time.perf_counter() - t0, "cpu": cpu(jvm) - c0, "store": store})
    rss = proc_hwm_mb(os.getpid())  # ru_maxrss would keep the bench's own peak across exec
    return {"start": started, "runs": runs, "rss_python": rss,
            "rss_jvm": proc_hwm_mb(jvm) if jvm else 0.0}  # fmt: skip


def run_child(parquet: Path, engine: str, master: str, out_dir: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", engine, master, str(parquet), out_dir],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"child {engine} failed: {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def best_wall(cmd: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        best = min(best, time.perf_counter() - started)
    return best


def records(rarebird: str, store: str) -> str:
    out = subprocess.run([rarebird, "results", "--store", store, "--format", "ndjson"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return out.stdout


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        engine, master, parquet, out_dir = sys.argv[2:6]
        print(json.dumps(child(parquet, engine, master, out_dir)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    quick = os.environ.get("RAREBIRD_BENCH_QUICK") == "1"
    parser.add_argument("--events", type=int, default=100_000 if quick else 1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from rarebird.sources.spark import SparkUnavailable, check_spark

    try:
        check_spark()
    except SparkUnavailable as exc:
        print(f"skipped: {exc}")
        return 0
    n = args.events
    parquet = parquet_file(bench_file(n, args.seed))
    rarebird = str(Path(sys.executable).with_name("rarebird"))
    print(f"load average {os.getloadavg()[0]:.2f} (2 vCPUs, shared with other work); "
          f"{n:,} events, Parquet {parquet.stat().st_size / 1e6:,.0f} MB")  # fmt: skip
    found = set()
    with tempfile.TemporaryDirectory() as tmp:
        print("\nend to end (best wall time of a `rarebird job run` process):")
        walls = []
        for name, flags in (
            ("DuckDB (baseline)", []),
            ("Spark local[1]", ["--engine", "spark", "--spark-master", "local[1]"]),
            ("Spark local[2]", ["--engine", "spark", "--spark-master", "local[2]"]),
            ("DuckDB --aggregate", ["--aggregate"]),
            ("Spark[2] --aggregate", ["--aggregate", "--engine", "spark"]),
        ):
            store = os.path.join(tmp, f"e2e-{len(walls)}.db")
            cmd = [rarebird, "job", "run", "--quiet", *flags, "--store", store, str(parquet)]
            wall = best_wall(cmd, args.repeat)
            found.add(records(rarebird, store))
            os.unlink(store)
            walls.append(wall)
            print(f"  {name:18} {wall:7.2f} s  {n / wall:11,.0f} events/s  "
                  f"{wall / walls[0]:6.2f}x the baseline's time")  # fmt: skip
        print("\ninside one process (start, then job run twice; CPU = Python + JVM):")
        print(f"  {'engine':18} {'start s':>8} {'run 1 s':>8} {'run 2 s':>8} {'CPU 2 s':>8} "
              f"{'events/CPU s':>12} {'RSS MB (py+jvm)':>16}")  # fmt: skip
        steady = []
        for name, engine, master in (
            ("DuckDB (baseline)", "local", "-"),
            ("Spark local[1]", "spark", "local[1]"),
            ("Spark local[2]", "spark", "local[2]"),
        ):
            r = run_child(parquet, engine, master, tmp)
            for run in r["runs"]:
                found.add(records(rarebird, run["store"]))
            one, two = r["runs"]
            steady.append(n / two["cpu"])
            print(f"  {name:18} {r['start']['wall']:8.2f} {one['wall']:8.2f} {two['wall']:8.2f} "
                  f"{two['cpu']:8.2f} {n / two['cpu']:12,.0f} "
                  f"{r['rss_python']:7.0f}+{r['rss_jvm']:<8.0f}")  # fmt: skip
        for name, rate in zip(("Spark local[1]", "Spark local[2]"), steady[1:], strict=True):
            print(f"  {name}: {steady[0] / rate:.2f}x the CPU of DuckDB per event (steady state)")
    print(f"\nload average after {os.getloadavg()[0]:.2f}")
    print("records identical in every run:", "yes" if len(found) == 1 else "NO")
    return 0 if len(found) == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
