"""`rarebird detect` and `evaluate`: the replay with the rule, beside the tree of another revision.

A replay with the rule makes a rule run every 15 minutes of event time (96 a day), so its cost
grows with the days covered and the users modelled more than with the events: the labelled fleet
(8 hosts, 24 days, 18,532 events, 2,304 runs) spends most of its time in the runs, and the
90-day fleet (8,640 runs) shows how the store's cost grows with the length. The inputs
are rarebird's own generator, which is fair here: the reader's share of the time is small and
measured elsewhere (realistic_inputs.py); what is measured is the job, the rule and the store.
``--big FILE`` adds a large input (the realistic 1 M-event ECS file of realistic_inputs.py:
few runs for many events, the case where the runs matter least).

Each command is a whole process on a fresh store; the trees run interleaved (before, now,
before, ...) ``--repeat`` times (3) and the median is reported, with peak RSS.

    python bench/detect_replay.py --before HEAD~3
    python bench/detect_replay.py --before 44a230a --big bench/out/realistic-ecs-1000000-*.ndjson
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from realistic_inputs import export_tree, run

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", required=True, help="git revision to compare with")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--big", help="a large ECS file to detect on as well")
    args, _ = ap.parse_known_args()
    work = Path(tempfile.mkdtemp(prefix="rarebird-detect-bench-"))
    trees = {"before": export_tree(args.before), "now": ROOT / "src"}
    py = [sys.executable, "-m", "rarebird"]
    env_now = {**os.environ, "PYTHONPATH": str(trees["now"])}
    labelled, labels = work / "labelled.ndjson", work / "labels.csv"
    fleet, long = work / "fleet.ndjson", work / "fleet-90d.ndjson"
    for cmd in (
        [*py, "generate", "--profile", "labelled", "--hosts", "8", "--days", "24",
         "--file", str(labelled), "--labels", str(labels)],
        [*py, "generate", "--days", "14", "--file", str(fleet)],
        [*py, "generate", "--days", "90", "--file", str(long)],
    ):  # fmt: skip
        subprocess.run(cmd, env=env_now, check=True, capture_output=True)
    cases: dict[str, list[str]] = {
        "detect, 14-day fleet": ["detect", "--store", "{store}", str(fleet)],
        "detect, 90-day fleet": ["detect", "--store", "{store}", str(long)],
        "detect, labelled fleet": ["detect", "--store", "{store}", str(labelled)],
        "detect --profile quiet --identity login, labelled": [
            "detect", "--store", "{store}", "--profile", "quiet", "--identity", "login",
            str(labelled)],
        "evaluate --profile quiet --identity login, labelled": [
            "evaluate", str(labelled), "--labels", str(labels), "--profile", "quiet",
            "--identity", "login"],
    }  # fmt: skip
    if args.big:
        cases[f"detect, {Path(args.big).name}"] = ["detect", "--store", "{store}", args.big]
    print(f"before = {args.before}, medians of {args.repeat}, whole processes, fresh stores")
    print(f"{'case':55} {'before':>9} {'now':>9} {'ratio':>6} {'RSS now':>8}")
    for name, argv in cases.items():
        times: dict[str, list[float]] = {"before": [], "now": []}
        rss: list[float] = []
        for _ in range(args.repeat):
            for tree, src in trees.items():
                store = work / f"{tree}.db"
                for leftover in work.glob(f"{tree}.db*"):
                    leftover.unlink()
                cmd = [*py, *(a.replace("{store}", str(store)) for a in argv)]
                result = run(cmd, {**os.environ, "PYTHONPATH": str(src)})
                times[tree].append(result.seconds)
                if tree == "now" and result.rss_mb is not None:
                    rss.append(result.rss_mb)
        before, now = statistics.median(times["before"]), statistics.median(times["now"])
        peak = f"{max(rss):.0f} MB" if rss else "-"
        print(f"{name:55} {before:8.2f}s {now:8.2f}s {now / before:6.2f} {peak:>8}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
