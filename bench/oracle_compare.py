"""Compare rarebird's scores with Elastic's engine on every shared oracle scenario.

Runs each ``../shared/oracle`` scenario through :class:`rarebird.job.AnomalyJob` in-process and
prints, per scenario, how many records / buckets / bucket influencers / influencers differ from
the engine's and the largest |Δscore| of each kind. ``--detail`` lists every difference above
the tolerance.

    python bench/oracle_compare.py [--detail] [--tolerance 1.0] [scenario ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from rarebird.definitions import load_datafeed, load_job
from rarebird.job import AnomalyJob
from rarebird.pipeline import replay
from rarebird.results import BucketResults

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("RAREBIRD_SHARED", ROOT.parent / "shared"))
ORACLE = SHARED / "oracle"

Key = tuple[Any, ...]


def scenarios() -> list[str]:
    return sorted(p.name.removesuffix(".json") for p in (ORACLE / "outputs").glob("*.json")
                  if not p.name.endswith(".meta.json"))  # fmt: skip


def run(name: str) -> list[BucketResults]:
    job = AnomalyJob(load_job(str(ORACLE / "job_config.json")), load_datafeed(None))
    out: list[BucketResults] = []
    replay(job, load_datafeed(None), [str(ORACLE / "inputs" / f"{name}.ndjson")],
           on_results=out.append)  # fmt: skip
    return out


def engine(name: str) -> dict[str, dict[Key, float]]:
    """The engine's scores: records, buckets, bucket influencers, influencers."""
    raw = json.loads((ORACLE / "outputs" / f"{name}.json").read_text())
    out: dict[str, dict[Key, float]] = {"record": {}, "bucket": {}, "bucket_influencer": {},
                                        "influencer": {}}  # fmt: skip
    for doc in raw:
        if "records" in doc:
            for r in doc["records"]:
                out["record"][(r["timestamp"] // 1000, r["by_field_value"])] = r["record_score"]
        elif "bucket" in doc:
            b = doc["bucket"]
            out["bucket"][(b["timestamp"] // 1000,)] = b["anomaly_score"]
            for bi in b.get("bucket_influencers", []):
                key = (b["timestamp"] // 1000, bi["influencer_field_name"])
                out["bucket_influencer"][key] = bi["anomaly_score"]
        elif "influencers" in doc:
            for i in doc["influencers"]:
                key = (i["timestamp"] // 1000, i["influencer_field_name"],
                       i["influencer_field_value"])  # fmt: skip
                out["influencer"][key] = i["influencer_score"]
    return out


def mine(results: list[BucketResults]) -> dict[str, dict[Key, float]]:
    out: dict[str, dict[Key, float]] = {"record": {}, "bucket": {}, "bucket_influencer": {},
                                        "influencer": {}}  # fmt: skip
    for res in results:
        ts = int(res.bucket.timestamp.timestamp())
        out["bucket"][(ts,)] = res.bucket.anomaly_score
        for bi in res.bucket.bucket_influencers:
            out["bucket_influencer"][(ts, bi.influencer_field_name)] = bi.anomaly_score
        for r in res.records:
            out["record"][(ts, r.by_field_value)] = r.record_score
        for i in res.influencers:
            out["influencer"][(ts, i.influencer_field_name, i.influencer_field_value)] = (
                i.influencer_score
            )
    return out


def compare(name: str, tolerance: float, detail: bool) -> dict[str, float]:
    t0 = time.monotonic()
    got = mine(run(name))
    want = engine(name)
    worst: dict[str, float] = {}
    for kind, expected in want.items():
        mine_k = got[kind]
        missing = set(expected) ^ set(mine_k)
        diffs = sorted(((abs(mine_k[k] - v), k, v, mine_k[k]) for k, v in expected.items()
                        if k in mine_k), reverse=True)  # fmt: skip
        worst[kind] = diffs[0][0] if diffs else 0.0
        over = [d for d in diffs if d[0] > tolerance]
        print(f"  {kind:18s} n={len(expected):4d} max|Δ|={worst[kind]:6.3f} "
              f">{tolerance}: {len(over):3d}  set differs: {len(missing)}")  # fmt: skip
        if detail:
            for _d, key, v, m in over:
                print(f"      {key} engine {v:.3f} rarebird {m:.3f} Δ {m - v:+.3f}")
            for key in sorted(missing, key=str)[:20]:
                print(f"      only in {'engine' if key in expected else 'rarebird'}: {key}")
    print(f"  ({time.monotonic() - t0:.1f} s)")
    return worst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*")
    parser.add_argument("--detail", action="store_true")
    parser.add_argument("--tolerance", type=float, default=1.0)
    args = parser.parse_args(argv)
    if not ORACLE.exists():
        sys.exit(f"{ORACLE} not present")
    for name in args.names or scenarios():
        print(name)
        compare(name, args.tolerance, args.detail)


if __name__ == "__main__":
    main()
