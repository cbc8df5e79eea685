"""The job's ``model_memory_limit`` enforced as Elastic's job does at ``hard_limit``: new users
are refused and counted, and it shows -- in ``job run``'s and ``detect``'s summaries, in
``rarebird status``, in ``/metrics`` and in one log line per change. A flood of 200,000 new user
names, in a child process with a 1 MB limit, keeps its peak RSS within a few megabytes of a run
with 2,000 names (both measured in the same test)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rarebird.definitions import packaged_path
from tests.serve_support import event, serve_env, write_lines

START = datetime(2026, 3, 1, tzinfo=UTC)

DRIVER = """
import json, resource, sys
from rarebird.cli import main
code = 0
try:
    main(sys.argv[1:], standalone_mode=False)
except SystemExit as exc:
    code = exc.code or 0
print(json.dumps({"code": code, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def small_job(tmp_path: Path, limit: str) -> Path:
    doc = json.loads(Path(packaged_path("v3_linux_network_connection_discovery.json")).read_text())
    doc.setdefault("analysis_limits", {})["model_memory_limit"] = limit
    path = tmp_path / "job.json"
    path.write_text(json.dumps(doc))
    return path


def flood(path: Path, names: int, events: int = 200_000) -> Path:
    """``events`` events over 200 buckets, by ``names`` distinct users."""
    per_bucket = events // 200
    docs = []
    for i in range(events):
        when = START + timedelta(minutes=15 * (i // per_bucket), seconds=i % 600)
        docs.append(event(when, f"u{i % names:06d}"))
    write_lines(path, docs, "w")
    return path


def run(tmp_path: Path, job: Path, events: Path, store: str) -> tuple[dict[str, int], str]:
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, "job", "run", "--store", str(tmp_path / store),
         "--job", str(job), str(events)],
        capture_output=True, text=True, env=serve_env(), timeout=300,
    )  # fmt: skip
    return json.loads(out.stdout.splitlines()[-1]), out.stderr


@pytest.mark.slow
def test_a_flood_of_new_names_is_refused_and_memory_stays_bounded(tmp_path: Path) -> None:
    job = small_job(tmp_path, "1mb")
    few, _ = run(tmp_path, job, flood(tmp_path / "few.ndjson", 2_000), "few.db")
    many, summary = run(tmp_path, job, flood(tmp_path / "many.ndjson", 200_000), "many.db")
    assert few["code"] == many["code"] == 0
    assert many["maxrss_kb"] < few["maxrss_kb"] + 30_000, (few, many)
    refused = int(summary.split(" new user.name values refused at the memory limit")[0]
                  .rsplit(" ", 1)[1].replace(",", ""))  # fmt: skip
    assert refused > 190_000
    status = subprocess.run(
        [sys.executable, "-m", "rarebird", "status", "--store", str(tmp_path / "many.db"),
         "--format", "json"],
        capture_output=True, text=True, env=serve_env(), timeout=60, check=True,
    )  # fmt: skip
    sizes = json.loads(status.stdout)["model_size_stats"]
    assert sizes["new_values_refused"] == refused
    assert sizes["memory_status"] == "hard_limit"
    assert sizes["model_bytes"] <= 1024 * 1024 + 200_000  # a bucket's worth past the limit
