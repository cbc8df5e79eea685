"""The labelled sample fleet (``rarebird generate --profile labelled --labels``): seeded, labelled."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter
from pathlib import Path

from rarebird.generate.labelled import LabelledOptions, labelled_fleet


def _generate(tmp_path: Path, name: str, *extra: str) -> tuple[Path, Path]:
    events, labels = tmp_path / f"{name}.ndjson", tmp_path / f"{name}.csv"
    subprocess.run(
        [sys.executable, "-m", "rarebird", "generate", "--profile", "labelled", "--hosts", "10",
         "--file", str(events), "--labels", str(labels), *extra],
        check=True, capture_output=True,
    )  # fmt: skip
    return events, labels


def test_same_seed_same_bytes_and_labels_name_every_discovery_run(tmp_path: Path) -> None:
    a_events, a_labels = _generate(tmp_path, "a")
    b_events, b_labels = _generate(tmp_path, "b")
    assert a_events.read_bytes() == b_events.read_bytes()
    assert a_labels.read_bytes() == b_labels.read_bytes()
    with a_labels.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["@timestamp", "host.name", "user.name", "process.name", "label"]
    by_label = Counter(r["label"] for r in rows)
    assert by_label["attack_compromised_1"] == 4
    assert by_label["attack_compromised_2"] == 3
    assert by_label["attack_sudo"] == 3
    assert by_label["attack_host_first"] == 2
    assert by_label["new_hire"] == 3
    assert 25 <= by_label["admin_troubleshooting"] <= 60
    sudo = [r for r in rows if r["label"] == "attack_sudo"]
    assert {r["user.name"] for r in sudo} == {"root"}  # Elastic's identity: the real user
    first = [r for r in rows if r["label"] == "attack_host_first"]
    assert {r["host.name"] for r in first} == {"lab-01"}
    # nothing else ever ran a discovery tool on the lab host
    assert {r["label"] for r in rows if r["host.name"] == "lab-01"} == {"attack_host_first"}


def test_sudo_attacker_carries_the_login_user_and_frank_never_runs_the_tools() -> None:
    docs = [(d, lab) for d, lab in labelled_fleet(LabelledOptions(hosts=8)) if lab is not None]
    sudo = [d for d, lab in docs if lab == "attack_sudo"]
    assert {d["user"]["audit"]["name"] for d in sudo} == {"frank"}
    assert not [d for d, lab in docs if d["user"]["name"] == "frank"]
