"""``rarebird triage``: why an anomaly scored, the user's history, the commands around it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.test_cli_job import doc, history


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rarebird", *args], capture_output=True,
                          text=True, check=False)  # fmt: skip


def test_triage_of_a_new_user(tmp_path: Path) -> None:
    base = 15 * 96 * 15
    lines = history()
    lines += [doc(base + 7, "mallory", "ss", "web-9"), doc(base + 8, "mallory", "netstat", "web-9"),
              doc(base + 9, "root", "ss", "web-9"), doc(base + 20, "root")]  # fmt: skip
    events = tmp_path / "e.ndjson"
    events.write_text("\n".join(lines) + "\n")
    store = tmp_path / "rb.db"
    assert run("job", "run", "--quiet", "--store", str(store), str(events)).returncode == 0
    results = run("results", "--store", str(store))
    # the hint names the store, so pasting it works
    assert f"rarebird triage --store {store} mallory@2026-02-17T00:00:00.000Z" in results.stderr
    proc = run("triage", "--store", str(store), "mallory@2026-02-17T00:05:00Z")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # the plain words of rarebird.explain: what drove the score, not the normaliser's ceilings
    assert "First time mallory ran these commands." in out
    assert "users ran these commands in the" in out
    assert "ceiling" not in out
    assert "rarer than typical" not in out
    assert "no earlier discovery commands from this user" in out
    assert "Commands by mallory within 1h" in out
    assert "ss -tan" in out
    assert "netstat -tan" in out
    assert "root" in out.split("Other users on the same host")[1]
    as_json = json.loads(run("triage", "--store", str(store), "--format", "json",
                             "mallory@2026-02-17T00:05:00Z").stdout)  # fmt: skip
    assert as_json["details"]["bound_by"] == "cap"
    assert as_json["details"]["values_known"] == 4.0
    assert as_json["history"]["events"] == 0
    missing = run("triage", "--store", str(store), "nobody@2026-02-17T00:05:00Z")
    assert missing.returncode == 1
    assert "no anomaly record of 'nobody'" in missing.stderr
