"""Compare rarebird's scores with Elastic's engine on every shared oracle scenario.

Runs each ``../shared/oracle`` scenario through :class:`rarebird.job.AnomalyJob` in-process and
prints, per scenario and result kind (records, buckets, bucket influencers, influencers), how
many results differ from the engine's by more than the tolerance and the largest |Δscore|.
With ``--renormalize`` the job renormalises as ``job run --renormalize`` does and is compared
with what Elasticsearch's renormaliser makes of the engine's results and quantiles documents.

    python bench/oracle_compare.py [--detail] [--renormalize] [--tolerance 1.0] [scenario ...]
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

from rarebird.definitions import load_datafeed, load_job
from rarebird.run.engine import Engine
from rarebird.run.replay import replay_inputs
from rarebird.store import open_store
from rarebird.store.results import search_results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
#: the engine-output readers the oracle tests use
oracle_support = importlib.import_module("tests.oracle_support")

SHARED = Path(os.environ.get("RAREBIRD_SHARED", ROOT.parent / "shared"))
ORACLE = SHARED / "oracle"


def run(name: str, renormalize: bool) -> dict[str, dict[oracle_support.Key, float]]:
    job_cfg = load_job(str(ORACLE / "job_config.json"))
    inputs = [str(ORACLE / "inputs" / f"{name}.ndjson")]
    with tempfile.TemporaryDirectory() as tmp, open_store(os.path.join(tmp, "rb.db")) as store:
        # job run: initial scores, or with --renormalize the lookback's renormalisation
        engine = Engine(store, job_cfg, load_datafeed(None), renormalize=renormalize)
        replay_inputs(engine, inputs)
        docs = {kind: [doc for _, doc in search_results(store, kind, order="time").hits]
                for kind in ("record", "bucket", "influencer")}  # fmt: skip
    return oracle_support.rarebird_scores(docs["record"], docs["bucket"], docs["influencer"])


def compare(name: str, tolerance: float, detail: bool, renormalize: bool) -> None:
    t0 = time.monotonic()
    got = run(name, renormalize)
    docs = oracle_support.raw_output(ORACLE, name)
    want = (oracle_support.elasticsearch_renormalised(docs) if renormalize
            else oracle_support.engine_scores(docs))  # fmt: skip
    for kind in oracle_support.KINDS:
        expected, mine = want[kind], got[kind]
        unmatched = set(expected) ^ set(mine)
        diffs = sorted(((abs(mine[k] - v), k, v, mine[k]) for k, v in expected.items()
                        if k in mine), key=lambda d: -d[0])  # fmt: skip
        over = [d for d in diffs if d[0] > tolerance]
        top = diffs[0][0] if diffs else 0.0
        print(f"  {kind:18s} n={len(expected):5d} max|Δ|={top:7.4f} >{tolerance}: {len(over):4d}"
              f"  unmatched: {len(unmatched)}")  # fmt: skip
        if detail:
            for _, key, v, m in over:
                print(f"      {key} engine {v:.3f} rarebird {m:.3f} Δ {m - v:+.3f}")
            for key in sorted(unmatched, key=str)[:20]:
                print(f"      only in {'engine' if key in expected else 'rarebird'}: {key}")
    print(f"  ({time.monotonic() - t0:.1f} s)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*")
    parser.add_argument("--detail", action="store_true")
    parser.add_argument("--renormalize", action="store_true")
    parser.add_argument("--tolerance", type=float, default=1.0)
    args = parser.parse_args(argv)
    if not ORACLE.exists():
        sys.exit(f"{ORACLE} not present")
    for name in args.names or oracle_support.scenarios(ORACLE):
        print(name + (" (renormalised)" if args.renormalize else ""))
        compare(name, args.tolerance, args.detail, args.renormalize)


if __name__ == "__main__":
    main()
