"""The job's ``model_memory_limit`` enforced as Elastic's job does at ``hard_limit``: new users
are refused and counted, and it shows -- in ``job run``'s and ``detect``'s summaries, in
``rarebird status``, in ``/metrics`` and in one log line per change. A flood of 200,000 new user
names, 100,000 of them inside one bucket, in a child process with a 1 MB limit, keeps its peak
RSS within a few megabytes of a run with 2,000 names (both measured in the same test)."""

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

#: runs the CLI, then prints its exit code and the process's peak RSS (VmHWM: ru_maxrss would
#: carry the parent's peak across fork and exec)
DRIVER = """
import json, sys
from rarebird.cli import main
code = 0
try:
    main(sys.argv[1:], standalone_mode=False)
except SystemExit as exc:
    code = exc.code or 0
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:")][0].split()[1]
print(json.dumps({"code": code, "maxrss_kb": int(hwm)}))
"""


def small_job(tmp_path: Path, limit: str) -> Path:
    doc = json.loads(Path(packaged_path("v3_linux_network_connection_discovery.json")).read_text())
    doc.setdefault("analysis_limits", {})["model_memory_limit"] = limit
    path = tmp_path / "job.json"
    path.write_text(json.dumps(doc))
    return path


def flood(path: Path, names: int, events: int = 100_000) -> Path:
    """``events`` events in two 15-minute buckets (a flood inside one bucket is what the model's
    size, measured at each bucket's end, cannot see), by ``names`` distinct users."""
    per_bucket = events // 2
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
    many, summary = run(tmp_path, job, flood(tmp_path / "many.ndjson", 100_000), "many.db")
    assert few["code"] == many["code"] == 0
    assert many["maxrss_kb"] < few["maxrss_kb"] + 30_000, (few, many)
    refused = int(summary.split(" new user.name values refused at the memory limit")[0]
                  .rsplit(" ", 1)[1].replace(",", ""))  # fmt: skip
    assert refused > 95_000
    status = subprocess.run(
        [sys.executable, "-m", "rarebird", "status", "--store", str(tmp_path / "many.db"),
         "--format", "json"],
        capture_output=True, text=True, env=serve_env(), timeout=60, check=True,
    )  # fmt: skip
    sizes = json.loads(status.stdout)["model_size_stats"]
    assert sizes["new_values_refused"] == refused
    assert sizes["memory_status"] == "hard_limit"
    assert sizes["model_bytes"] <= 1024 * 1024 + 200_000  # a bucket's worth past the limit


def test_serve_logs_the_memory_status_once_per_change_and_counts_refusals(
    tmp_path: Path,
) -> None:
    from rarebird.clock import FixedClock
    from tests.serve_support import in_process, turn, write_definitions

    defs = write_definitions(tmp_path / "defs")
    doc = json.loads(defs.job.read_text())
    doc.setdefault("analysis_limits", {})["model_memory_limit"] = "1mb"
    defs.job.write_text(json.dumps(doc))
    t0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    clock = FixedClock(t0)
    live = tmp_path / "events.ndjson"
    # 40 buckets of 5 s, 150 new users each: far more than 1 MB of model
    write_lines(live, [event(t0 - timedelta(seconds=200) + timedelta(seconds=5 * b, milliseconds=i),
                             f"b{b}u{i}") for b in range(40) for i in range(150)], "w")  # fmt: skip
    service, log = in_process(tmp_path, clock, [live], defs)
    try:
        turn(service, clock, seconds=5, times=3)
        changes = log.events("memory_status")
        assert [c["status"] for c in changes] == ["hard_limit"] or [
            c["status"] for c in changes
        ] == ["soft_limit", "hard_limit"]
        refused = service.engine.job.stats.new_values_refused
        assert refused > 1000
        assert changes[-1]["limit"] == 1024 * 1024
        metrics = service.render_metrics()
        assert f'rarebird_job_data_count{{name="new_values_refused"}} {refused}' in metrics
        assert 'rarebird_job_memory_status{status="hard_limit"} 1' in metrics
        assert service.health()[1]["new_values_refused"] == refused
        turn(service, clock, seconds=5, times=2)
        assert len(log.events("memory_status")) == len(changes)  # not one line per event
    finally:
        service.close()
