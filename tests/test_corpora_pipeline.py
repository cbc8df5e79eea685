"""Real public documents through ``rarebird job run``: what the datafeed and the job drop."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared_path

pytestmark = pytest.mark.corpora

KIBANA = "corpora/elastic-kibana/x-pack/test/functional/es_archives/auditbeat/uncommon_processes/data.json"
BEATS = "corpora/elastic-beats/auditbeat/module/auditd/_meta/execve.json"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rarebird", *args], capture_output=True,
                          text=True, check=False)  # fmt: skip


def stats(store: Path) -> dict:
    proc = run("job", "stats", "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_ecs_1_0_documents_without_event_type_are_dropped_by_the_datafeed(tmp_path: Path) -> None:
    archive = shared_path(KIBANA)
    store = tmp_path / "rb.db"
    proc = run("job", "run", "--store", str(store), str(archive))
    assert proc.returncode == 0, proc.stderr
    assert "ecs (auto)" in proc.stderr
    assert "kept    0 events matched the datafeed" in proc.stderr
    assert stats(store)["processed_record_count"] == 0


def test_auditbeat_document_without_user_name_is_counted_not_modelled(tmp_path: Path) -> None:
    sample = json.loads(shared_path(BEATS).read_text())
    # Beats' _meta samples document the fields and leave out @timestamp, which every indexed
    # document has; give it one so the document can reach the job.
    sample["@timestamp"] = "2026-01-05T10:00:00.000Z"
    events = tmp_path / "auditbeat.ndjson"
    events.write_text(json.dumps(sample) + "\n")
    store = tmp_path / "rb.db"

    # Elastic's datafeed drops it: no event.type: start (and uname is no discovery command)
    proc = run("job", "run", "--store", str(store), str(events))
    assert proc.returncode == 0, proc.stderr
    assert "kept    0 events matched the datafeed" in proc.stderr

    # a datafeed that lets every execution through: the job counts the missing user.name
    datafeed = tmp_path / "all_executions.json"
    datafeed.write_text(json.dumps({"query": {"term": {"event.action": "executed"}}}))
    store2 = tmp_path / "rb2.db"
    proc = run("job", "run", "--store", str(store2), "--datafeed", str(datafeed), str(events))
    assert proc.returncode == 0, proc.stderr
    assert "1 without user.name (not modelled)" in proc.stderr
    counts = stats(store2)
    assert counts["processed_record_count"] == 1
    assert counts["missing_field_count"] == 1
    assert counts["total_by_field_count"] == 0
