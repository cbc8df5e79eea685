"""Detector cost at scale: 100,000 distinct users over a year of 15-minute buckets.

Feeds the anomaly job directly (no parsing, no store) with a synthetic fleet in which 100,000
users appear over the first months and keep coming back (each within the 16,000-bucket prune
window, so all of them stay modelled), with ~20 users present per bucket. Prints buckets per
second as the number of known users grows, the per-bucket cost ratio against the first segment
(the named baseline: a model of ~1,000 users), and the model's memory: rarebird's own
``model_bytes`` figure and the Python heap the model really holds, against the job's 64 MB
``model_memory_limit``. The heap is measured with tracemalloc while the final state is restored
into a fresh job (the same structures the job held), so tracing does not slow the timed run.

    python bench/detector_scale.py [--users 100000] [--days 365] [--present 20]
    RAREBIRD_BENCH_QUICK=1 python bench/detector_scale.py   # 10,000 users over 30 days
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import random
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from rarebird.definitions import load_job
from rarebird.events import ProcessEvent
from rarebird.job import AnomalyJob

START = datetime(2026, 1, 5, tzinfo=UTC)
SPAN = 900
PROCESSES = ("ss", "netstat", "route", "showmount")
ARGS = {"ss": ("ss", "-tunap"), "netstat": ("netstat", "-rn"), "route": ("route", "-n"),
        "showmount": ("showmount", "-e")}  # fmt: skip


def fleet(users: int, buckets: int, present: int, seed: int) -> list[list[str]]:
    """Per bucket, the users present: a Zipf-ish core of regulars plus the long tail cycling."""
    rng = random.Random(seed)
    intro = max(1, min(buckets // 3, 12000))  # everyone has appeared within ~4 months
    per_bucket_new = math.ceil(users / intro)
    order = [f"user{i:06d}" for i in range(users)]
    regulars = order[:200]
    plan: list[list[str]] = []
    introduced = 0
    tail_cursor = 0
    for _ in range(buckets):
        seen: list[str] = []
        for _ in range(present // 2):
            seen.append(regulars[min(int(rng.paretovariate(1.2)) - 1, len(regulars) - 1)])
        if introduced < users:
            new = order[introduced : introduced + per_bucket_new]
            introduced += len(new)
            seen.extend(new)
        else:
            # revisit the tail so every user is seen again within the prune window
            for _ in range(present - len(seen)):
                seen.append(order[200 + tail_cursor % (users - 200)])
                tail_cursor += 1
        plan.append(list(dict.fromkeys(seen)))
    return plan


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    quick = os.environ.get("RAREBIRD_BENCH_QUICK") == "1"
    ap.add_argument("--users", type=int, default=10_000 if quick else 100_000)
    ap.add_argument("--days", type=int, default=30 if quick else 365)
    ap.add_argument("--present", type=int, default=20, help="users present per bucket")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    buckets = args.days * 96
    plan = fleet(args.users, buckets, args.present, args.seed)
    job_cfg = load_job()
    job = AnomalyJob(job_cfg, keep_events=False)
    segments = [int(buckets * f) for f in (0.02, 0.1, 0.25, 0.5, 0.75, 1.0)]
    seg_start_b = 0
    seg_start_t = time.perf_counter()
    rows = []
    total_start = seg_start_t
    for b, users in enumerate(plan):
        t = START + timedelta(seconds=b * SPAN + 1)
        for i, user in enumerate(users):
            proc = PROCESSES[i % 4]
            job.feed(ProcessEvent(timestamp=t + timedelta(milliseconds=i), user_name=user,
                                  process_name=proc, process_args=ARGS[proc],
                                  host_name=f"host-{i % 50:02d}", event_type=("start",),
                                  host_os_type="linux"))  # fmt: skip
        if b + 1 in segments:
            now = time.perf_counter()
            done = b + 1 - seg_start_b
            rows.append((b + 1, len(job.model), done / (now - seg_start_t)))
            print(f"  bucket {b + 1:>6,}  users known {len(job.model):>7,}  "
                  f"{done / (now - seg_start_t):8.1f} buckets/s", file=sys.stderr)  # fmt: skip
            seg_start_b, seg_start_t = b + 1, now
    job.finish()
    elapsed = time.perf_counter() - total_start
    state = job.to_state()
    del plan
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    restored = AnomalyJob.restore(job_cfg, state, keep_events=False)
    del state
    gc.collect()
    heap = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(restored.model) == len(job.model)
    limit = job_cfg.model_memory_limit
    baseline = rows[0][2]
    print()
    print("Detector cost at scale (rare by user.name, 15-minute buckets)")
    print(f"{'buckets done':>14} {'users known':>12} {'buckets/s':>10} {'cost vs baseline':>17}")
    for b, known, rate in rows:
        print(f"{b:>14,} {known:>12,} {rate:>10.1f} {baseline / rate:>16.2f}x")
    print(f"baseline: the first segment (~{rows[0][1]:,} users known)")
    growth = math.log(rows[-1][1]) / math.log(max(rows[0][1], 2))
    print(f"users known grew {rows[-1][1] / max(rows[0][1], 1):,.0f}x; "
          f"log(users) grew {growth:.2f}x; per-bucket cost grew {baseline / rows[-1][2]:.2f}x")  # fmt: skip
    print(f"total: {buckets:,} buckets in {elapsed:,.1f} s ({buckets / elapsed:,.1f} buckets/s), "
          f"{job.stats.record_count:,} records")  # fmt: skip
    print(f"model memory: model_bytes {job.stats.model_bytes / 2**20:.1f} MiB "
          f"({job.stats.memory_status}); Python heap held {heap / 2**20:.1f} MiB; "
          f"limit {limit / 2**20:.0f} MiB -> {'inside' if heap < limit else 'OVER'}")  # fmt: skip
    return 0 if heap < limit else 1


if __name__ == "__main__":
    sys.exit(main())
