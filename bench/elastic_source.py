"""The Elasticsearch source against its baseline: ``rarebird job run`` over the same documents
read from an NDJSON file and searched from an index.

The index is the stand-in Elasticsearch of the tests (``tests/es_fake.py``, a Python HTTP server
on loopback answering with Elasticsearch's documented response shapes), so the figure is the
client side's cost -- the official client, the point in time, ``search_after`` pages of
``scroll_size`` hits, JSON decoding, the ECS walker -- plus that little server's own; a real
cluster's search time is not in it. The documents are a generated fleet (``rarebird generate``)
kept to those the packaged datafeed's query matches, since a cluster would return only those.

    python bench/elastic_source.py            # 7 days of fleet telemetry (quick: 1)
    python bench/elastic_source.py --days 14

``--events`` (passed by ``bench/run_all.py`` to every script) is accepted and ignored.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def matching(path: Path) -> list[dict[str, object]]:
    from rarebird.definitions import load_datafeed
    from rarebird.sources.ecs import event_from_document

    query = load_datafeed().query
    out = []
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        if query.matches(event_from_document(doc)):
            out.append(doc)
    out.sort(key=lambda d: str(d["@timestamp"]))
    return out


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rarebird", *args], check=True, env=env,
                   capture_output=True)  # fmt: skip
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--events", default=None, help="ignored")
    opts = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.es_fake import FakeElasticsearch  # the stand-in server of the tests

    if os.environ.get("RAREBIRD_BENCH_QUICK"):
        opts.days = 1
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "RAREBIRD_ES_API_KEY": "YmVuY2g6YmVuY2g="}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fleet = work / "fleet.ndjson"
        subprocess.run([sys.executable, "-m", "rarebird", "generate", "--days", str(opts.days),
                        "--seed", "7", "--output", str(fleet)], check=True, env=env,
                       capture_output=True)  # fmt: skip
        docs = matching(fleet)
        kept = work / "kept.ndjson"
        kept.write_text("".join(json.dumps(d) + "\n" for d in docs))
        first = str(docs[0]["@timestamp"])
        base = timed(["job", "run", "--store", str(work / "file.db"), "--quiet", str(kept)], env)
        with FakeElasticsearch() as es:
            es.cluster.events = docs
            spec = es.spec("logs-*", query=f"start={first}&end=now")
            took = timed(["job", "run", "--store", str(work / "es.db"), "--quiet", spec], env)
            searches = len(es.cluster.requests_to("/_search"))
        n = len(docs)
        print(f"documents the datafeed matches: {n:,} ({opts.days} day(s) of generated fleet)")
        print(f"baseline  job run over an NDJSON file : {base:6.2f} s  {n / base:10,.0f} docs/s")
        print(f"elastic   job run over an index       : {took:6.2f} s  {n / took:10,.0f} docs/s"
              f"  ({searches} searches; stand-in server on loopback, not a cluster)")  # fmt: skip
        print(f"ratio elastic / baseline: {took / base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
