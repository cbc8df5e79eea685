"""What a durable acknowledgement costs on the serve path: the commit of a turn that holds an
HTTP batch (100 pending events, the service state) with ``synchronous=FULL`` (rarebird's choice
for turns whose batch is answered 200) against ``NORMAL`` (every other turn), measured in the
same run on the same file system.

    python bench/durable_ack.py          # 300 commits per mode (RAREBIRD_BENCH_QUICK: 60)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from rarebird.store import open_store
from rarebird.store.serve import add_pending, save_service_state


def commits(path: str, durable: bool, n: int) -> list[float]:
    store = open_store(path)
    doc = orjson.dumps({"@timestamp": "2026-03-01T00:00:00Z", "user": {"name": "x" * 20},
                        "process": {"name": "ss", "args": ["ss", "-tunap"]}}).decode()  # fmt: skip
    seq = 0
    out = []
    try:
        for i in range(n):
            rows = [(seq + k, 1_700_000_000_000 + k, "http", doc) for k in range(100)]
            seq += 100
            t0 = time.perf_counter()
            with store.durable(durable), store.transaction():
                add_pending(store, "bench", rows)
                save_service_state(store, "bench", f'{{"version": 1, "turn": {i}}}', "now")
            out.append(time.perf_counter() - t0)
    finally:
        store.close()
    return out


def main() -> None:
    n = 60 if os.environ.get("RAREBIRD_BENCH_QUICK") else 300
    with tempfile.TemporaryDirectory(dir=os.environ.get("RAREBIRD_BENCH_DIR")) as tmp:
        normal = commits(str(Path(tmp) / "normal.db"), False, n)
        full = commits(str(Path(tmp) / "full.db"), True, n)
    for name, times in (("NORMAL (baseline)", normal), ("FULL (acknowledged batch)", full)):
        ms = sorted(t * 1000 for t in times)
        print(
            f"{name:28} commit median {statistics.median(ms):7.3f} ms  "
            f"p95 {ms[int(len(ms) * 0.95) - 1]:7.3f} ms  ({n} commits of 100 events)"
        )
    ratio = statistics.median(full) / statistics.median(normal)
    print(f"FULL / NORMAL median: {ratio:.2f}x")


if __name__ == "__main__":
    main()
