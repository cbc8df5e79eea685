"""A record claiming a time no date can hold (``audit(99999999999999999999.000:1)``, an osquery
``time`` of 10^20) is a bad record of its file and line, not the end of the run: before, the
reader raised ``OverflowError`` from ``timedelta`` and ``job run`` stopped with a traceback,
losing every later event. Records dated within range but implausibly are another matter
(quarantined by the datafeed: ``tests/test_time_sanity.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from rarebird.definitions.datafeed import load_datafeed
from rarebird.sources import SourceOptions
from rarebird.sources.inputs import open_source

FEED = load_datafeed().query.prefilter
HUGE = "99999999999999999999"


def _audit(tmp: Path) -> Path:
    def event(stamp: str, pid: int) -> str:
        return (
            f"type=SYSCALL msg=audit({stamp}): arch=c000003e syscall=59 success=yes exit=0 "
            f'ppid=1 pid={pid} auid=0 uid=0 gid=0 euid=0 ses=1 tty=pts0 comm="ss" '
            f'exe="/usr/bin/ss"\ntype=EXECVE msg=audit({stamp}): argc=1 a0="ss"\n'
        )

    path = tmp / "audit.log"
    path.write_text(event(f"{HUGE}.000:1", 2) + event("1700000000.000:2", 3))
    return path


def _laurel(tmp: Path) -> Path:
    def line(ident: str) -> str:
        return json.dumps({"ID": ident, "SYSCALL": {"arch": "0xc000003e", "syscall": 59,
                           "success": "yes", "exe": "/usr/bin/ss", "uid": 0, "UID": "root"},
                           "EXECVE": {"argc": 1, "ARGV": ["ss"]}})  # fmt: skip

    path = tmp / "laurel.log"
    path.write_text(line(f"{HUGE}.000:1") + "\n" + line("1700000000.000:2") + "\n")
    return path


def _osquery(tmp: Path) -> Path:
    def line(when: str) -> str:
        return json.dumps({"name": "process_events", "hostIdentifier": "h", "unixTime": 1,
                           "action": "added", "columns": {"path": "/usr/bin/ss", "pid": "5",
                                                          "time": when, "uid": "0"}})  # fmt: skip

    path = tmp / "osquery.log"
    path.write_text(line(HUGE) + "\n" + line("-" + HUGE) + "\n" + line("1700000000") + "\n")
    return path


@pytest.mark.parametrize(
    ("make", "fmt", "extra", "issues"),
    [(_audit, "auditd", {}, []),  # the fast path steps over what is not a record
     (_audit, "auditd", {"scan": "full"}, [(1, "auditd: not an audit record"),
                                            (2, "auditd: not an audit record")]),
     (_laurel, "laurel", {}, [(1, "laurel: ID is not a time")]),
     (_osquery, "osquery", {}, [(1, "osquery: time out of range"),
                                (2, "osquery: time out of range")])],
    ids=["auditd", "auditd-full", "laurel", "osquery"],
)  # fmt: skip
def test_a_time_no_date_can_hold_is_a_bad_record(
    tmp_path: Path,
    make: Callable[[Path], Path],
    fmt: str,
    extra: dict[str, str],
    issues: list[tuple[int, str]],
) -> None:
    path = make(tmp_path)
    src = open_source(str(path), fmt, SourceOptions(prefilter=FEED, extra=extra))
    events = list(src)
    assert [e.timestamp.year for e in events] == [2023]  # the good record after it is read
    assert [(i.location.line, i.reason) for i in src.stats.issues] == issues


def test_job_run_reads_on_past_it(tmp_path: Path) -> None:
    path = _audit(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "rarebird", "job", "run", "--store", str(tmp_path / "s.db"),
         str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "kept    1 events" in proc.stderr
    assert "Traceback" not in proc.stderr
