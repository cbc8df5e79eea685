"""``rarebird job run`` / ``results`` as a user meets them: exit codes, reports, formats."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

T0 = datetime(2026, 2, 2, tzinfo=UTC)


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rarebird", *args], capture_output=True,
                          text=True, input=stdin, check=False)  # fmt: skip


def doc(minutes: float, user: str, process: str = "ss", host: str = "h1") -> str:
    return json.dumps({
        "@timestamp": (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        "event": {"type": ["start"], "category": ["process"]},
        "host": {"name": host, "os": {"type": "linux"}},
        "process": {"name": process, "args": [process, "-tan"]},
        "user": {"name": user},
    })  # fmt: skip


def history(days: int = 15) -> list[str]:
    lines = []
    for b in range(days * 96):
        for i, user in enumerate(("root", "nagios", "svc_backup")):
            if (b + i) % 4:
                lines.append(doc(b * 15 + 1 + i, user))
    return lines


def test_help_reads_well() -> None:
    proc = run("job", "run", "--help")
    assert proc.returncode == 0
    for words in ("FILES...", "--store", "--job ID|JOB.json", "--jobs FAMILY", "--datafeed DATAFEED.json",
                  "--input-format", "standard input", "continues the same job"):  # fmt: skip
        assert words in proc.stdout


def test_end_to_end_from_an_ecs_file_to_stored_records(tmp_path: Path) -> None:
    lines = history()
    lines.append(doc(15 * 96 * 15 + 7, "mallory", "showmount", "nfs-client"))
    lines.append(doc(15 * 96 * 15 + 20, "root"))
    events = tmp_path / "events.ndjson.gz"
    events.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    store = tmp_path / "rb.db"
    proc = run("job", "run", "--store", str(store), str(events))
    assert proc.returncode == 0, proc.stderr
    assert f"{events}: ecs (auto)" in proc.stderr
    assert f"kept    {len(lines):,} events matched the datafeed" in proc.stderr
    assert "1 anomaly records" in proc.stderr
    out = json.loads(run("results", "--store", str(store), "--format", "json").stdout)
    (rec,) = out
    assert rec["by_field_value"] == "mallory"
    assert rec["host.name"] == ["nfs-client"]
    assert rec["record_score"] >= 25
    table = run("results", "--store", str(store)).stdout
    assert "mallory" in table
    assert "first time" in table  # rarebird.explain's summary, as triage and the web pages
    nd = run("results", "--store", str(store), "--type", "bucket", "--format", "ndjson",
             "--min-score", "1").stdout.splitlines()  # fmt: skip
    assert len(nd) == 1
    assert json.loads(nd[0])["result_type"] == "bucket"


def test_bad_lines_are_reported_by_file_and_line_and_cost_nothing_else(tmp_path: Path) -> None:
    lines = history(2)
    lines.insert(10, '{"@timestamp": "2026-02-02T00:10:00Z", "process": {"name": "ss"')  # cut short
    lines.insert(20, "garbage \x00 line")
    events = tmp_path / "events.ndjson"
    events.write_text("\n".join(lines) + "\n")
    store = tmp_path / "rb.db"
    proc = run("job", "run", "--store", str(store), str(events))
    assert proc.returncode == 0, proc.stderr
    assert "skipped 2 lines" in proc.stderr
    assert f"{events}:11:" in proc.stderr
    assert f"{events}:21:" in proc.stderr
    assert f"kept    {len(lines) - 2:,} events" in proc.stderr
    strict = run("job", "run", "--strict", "--store", str(tmp_path / "s.db"), str(events))
    assert strict.returncode == 2


def test_exit_codes(tmp_path: Path) -> None:
    missing = run("job", "run", "--store", str(tmp_path / "a.db"), str(tmp_path / "nope.ndjson"))
    assert missing.returncode == 2
    assert "nope.ndjson" in missing.stderr
    bad_job = tmp_path / "job.json"
    bad_job.write_text('{"analysis_config": {"bucket_span": "15m", "detectors": []}}')
    events = tmp_path / "e.ndjson"
    events.write_text(doc(1, "root") + "\n")
    proc = run("job", "run", "--job", str(bad_job), "--store", str(tmp_path / "b.db"), str(events))
    assert proc.returncode == 1
    assert "job.json: analysis_config.detectors: at least one detector is required" in proc.stderr
    usage = run("job", "run")
    assert usage.returncode == 2  # click's own usage error
    assert "Missing argument" in usage.stderr


def test_stdin_and_continuing_the_same_job(tmp_path: Path) -> None:
    lines = history(3)
    half = len(lines) // 2
    store = tmp_path / "rb.db"
    first = run("job", "run", "--store", str(store), "-", stdin="\n".join(lines[:half]) + "\n")
    assert first.returncode == 0, first.stderr
    second = run("job", "run", "--store", str(store), "-", stdin="\n".join(lines[half:]) + "\n")
    assert second.returncode == 0, second.stderr
    stats = json.loads(run("job", "stats", "--store", str(store)).stdout)
    assert stats["processed_record_count"] == len(lines)
    assert stats["bucket_count"] == 3 * 96 - 1


def test_progress_on_request(tmp_path: Path) -> None:
    events = tmp_path / "e.ndjson"
    events.write_text("\n".join(history(1)) + "\n")
    proc = run("job", "run", "--progress", "--store", str(tmp_path / "p.db"), str(events))
    assert proc.returncode == 0, proc.stderr
    # the bar (drawn because asked for, on a pipe) ends at the file's size
    size = events.stat().st_size / 1000
    assert f"{size:.1f}/{size:.1f} kB" in proc.stderr
    assert "216 lines, 216 kept" in proc.stderr
    quiet = run("job", "run", "--store", str(tmp_path / "q.db"), str(events))
    assert " kept" not in quiet.stderr  # not a terminal: no bar unless asked
