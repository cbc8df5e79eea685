"""What issue 10's targets leave to the reader: the parts of `job run` no reader can avoid.

For each input (the realistic 1,000,000-event files of ``realistic_inputs.py``), in rounds that
interleave the baselines with rarebird: ``grep -c -E`` (and ``ausearch --format csv -if`` for
auditd, when installed), ``rarebird job run --workers 1`` and ``rarebird job run`` (the default, ``--workers auto``)
whole, ``python -c pass`` (the
interpreter's start), and ``_floor_parts.py`` (one process timing each part of the command
alone: imports, reading the bytes, reading them with the reader's search and nothing else, the
reader whole, the job on its events, the store, and the reader and the job together as
``job run`` feeds them). Medians of ``--repeat`` rounds (3), after one
read of the file to warm the page cache.

From the parts, two floors:

- **serial**: interpreter start + imports + job + store: what the process that runs the job
  does whatever the number of ``--workers`` (the job, its scores and the store are one process's
  work), so no reader, however fast or parallel, makes a run shorter than this;
- **one core, a reader that costs only its search**: serial + the bytes read and searched, as
  if every line after the search (line walk, parsing, events) were free.

Each is set beside the targets of issue 10 (ECS: at most 1.0x grep on one core, 0.6x with 2
workers; auditd: at most 2x grep and ausearch / 6 on one core).

    python bench/floor.py                                   # ecs and auditd-no-eoe
    python bench/floor.py --only ecs --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from realistic_inputs import GREPS, INPUTS, OUT, generate, run

PARTS = Path(__file__).resolve().parent / "_floor_parts.py"
#: part -> what it is, in the table
LABELS = {
    "start": "interpreter start (`python -c pass`)",
    "imports": "imports (the command, the reader, NumPy, SciPy)",
    "read": "reading the bytes (`readinto`, the reader's buffer size)",
    "search": "reading + the reader's search, nothing else",
    "reader": "the reader, all of it (as `job run --workers 1`)",
    "job": "the job on the reader's events",
    "store": "the store (results, kept events, state)",
    "together": "the reader and the job, each event fed as read",
}


def measure(name: str, events: int, repeat: int) -> dict[str, object]:
    path, written = generate(name, events)
    fmt = INPUTS[name][0]
    py = sys.executable
    with open(path, "rb") as f:  # warm the page cache once, outside the rounds
        while f.read(16 * 2**20):
            pass
    wholes: dict[str, list[float]] = {"grep": [], "job run --workers 1": [], "job run": []}
    if fmt == "auditd" and shutil.which("ausearch"):
        wholes["ausearch"] = []
    parts: dict[str, list[float]] = {key: [] for key in LABELS}
    with tempfile.TemporaryDirectory(prefix="rarebird-floor-") as tmp:
        store = Path(tmp) / "bench.db"
        for _ in range(repeat):
            wholes["grep"].append(run(["grep", "-c", "-E", GREPS[fmt], str(path)]).seconds)
            if store.exists():
                store.unlink()
            job = [py, "-m", "rarebird", "job", "run", "--workers", "1", "--store", str(store)]
            wholes["job run --workers 1"].append(run([*job, str(path)]).seconds)
            store.unlink()
            default = [*job[:5], *job[7:], str(path)]  # --workers auto: 2 processes here
            wholes["job run"].append(run(default).seconds)
            if "ausearch" in wholes:
                cmd = ["ausearch", "--format", "csv", "-if", str(path)]
                wholes["ausearch"].append(run(cmd).seconds)
            parts["start"].append(run([py, "-c", "pass"]).seconds)
            proc = subprocess.run(
                [py, str(PARTS), fmt, str(path)], capture_output=True, text=True, check=True
            )
            timed = json.loads(proc.stdout)
            for key in LABELS:
                if key != "start":
                    parts[key].append(timed[key])
    med = {k: statistics.median(v) for k, v in {**wholes, **parts}.items()}
    return {
        "input": name,
        "format": fmt,
        "written": {"events": written.events, "bytes": written.bytes},
        "median_s": med,
        "runs_s": {k: [round(x, 3) for x in v] for k, v in {**wholes, **parts}.items()},
    }


def report(result: dict[str, object]) -> None:
    med = result["median_s"]
    runs = result["runs_s"]
    written = result["written"]
    assert isinstance(med, dict)
    assert isinstance(runs, dict)
    assert isinstance(written, dict)
    grep = med["grep"]
    print(f"\n{result['input']}: {written['events']:,} events, {written['bytes'] / 1e6:,.0f} MB")
    print("| part | median s | runs | vs grep |")
    print("|---|---:|---|---:|")

    def row(label: str, seconds: float, each: list[float] | None = None) -> None:
        shown = ", ".join(f"{x:.2f}" for x in each) if each else ""
        print(f"| {label} | {seconds:.2f} | {shown} | {seconds / grep:.2f}x |")

    row("`grep -c -E` (baseline)", grep, runs["grep"])
    if "ausearch" in med:
        row("`ausearch --format csv -if`", med["ausearch"], runs["ausearch"])
    row("**`rarebird job run --workers 1`**", med["job run --workers 1"],
        runs["job run --workers 1"])  # fmt: skip
    row("`rarebird job run` (default: `--workers auto`)", med["job run"], runs["job run"])
    for key, label in LABELS.items():
        row(label, med[key], runs[key])
    serial = med["start"] + med["imports"] + med["job"] + med["store"]
    row("**serial floor**: start + imports + job + store", serial)
    row("**one-core floor**: serial + reading and search", serial + med["search"])
    row("sum of today's parts: serial + the reader", serial + med["reader"])
    row("the same, the reader and the job together", serial - med["job"] + med["together"])
    if result["format"] == "ecs":
        print(f"\ntargets: one core <= {grep:.2f} s (1.0x grep), 2 workers <= {0.6 * grep:.2f} s")
    else:
        goals = [f"one core <= {2 * grep:.2f} s (2x grep)"]
        if "ausearch" in med:
            goals.append(f"<= {med['ausearch'] / 6:.2f} s (ausearch / 6)")
        print(f"\ntargets: {', '.join(goals)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    quick = os.environ.get("RAREBIRD_BENCH_QUICK") == "1"
    ap.add_argument("--events", type=int, default=50_000 if quick else 1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*", choices=["ecs", "auditd-no-eoe", "auditd-eoe"])
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} at the start")
    started = time.perf_counter()
    results = []
    for name in args.only or ["ecs", "auditd-no-eoe"]:
        result = measure(name, args.events, args.repeat)
        report(result)
        results.append(result)
    print(
        f"\nload average {os.getloadavg()[0]:.2f} at the end, "
        f"{time.perf_counter() - started:.0f} s in all"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"floor-results-{args.events}.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
