"""After a run, each input's line says how it was read: the search that found the candidate
lines (as ``auto`` chose it, or as forced), every line parsed, and the processes that read it.
A user whose run is slow can see which search ran (issue 10's ``auto`` rule picks per machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rarebird.definitions.datafeed import load_datafeed
from rarebird.sources import SourceOptions
from rarebird.sources.auditd import parallel as auditd_parallel
from rarebird.sources.auditd import source as auditd_source
from rarebird.sources.inputs import open_source
from rarebird.sources.multipattern import load_hyperscan

FEED = load_datafeed().query.prefilter


def _audit_log(path: Path, events: int) -> Path:
    """Exec events as auditd writes them (records of one stamp, EOE last), every fifth an ss."""
    out = []
    for i in range(events):
        stamp = f"msg=audit(1700000000.{i % 1000:03d}:{100 + i}):"
        exe, comm = ("/usr/bin/ss", "ss") if i % 5 == 0 else ("/usr/bin/ls", "ls")
        out += [
            f"type=SYSCALL {stamp} arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid={i + 2}"
            f' auid=1000 uid=1000 gid=1000 euid=1000 ses=1 tty=pts0 comm="{comm}" exe="{exe}"',
            f'type=EXECVE {stamp} argc=2 a0="{comm}" a1="-t"',
            f"type=EOE {stamp}",
        ]
    path.write_text("\n".join(out) + "\n")
    return path


def _ecs(path: Path, lines: int) -> Path:
    docs = [
        {"@timestamp": f"2026-01-05T10:{i % 60:02d}:00Z", "event": {"type": ["start"]},
         "host": {"name": "h", "os": {"type": "linux"}}, "user": {"name": f"u{i % 7}"},
         "process": {"name": "ss" if i % 5 == 0 else "ls", "args": ["x"]}}
        for i in range(lines)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def _read(path: Path, **extra: str) -> str:
    opened = open_source(str(path), "auto", SourceOptions(prefilter=FEED, extra=extra))
    assert opened.describe() == f"{path}: {opened.format} (auto)"  # nothing said before reading
    kept = list(opened)
    assert kept
    return opened.describe()


HS = pytest.mark.skipif(load_hyperscan() is None, reason="hyperscan cannot run here")


@pytest.mark.parametrize(
    ("env", "search", "said"),
    [("RAREBIRD_AUDITD_SEARCH", "re", "auditd (auto); exe= fields found by the regular expression"),
     pytest.param("RAREBIRD_AUDITD_SEARCH", "hyperscan", "auditd (auto); exe= fields found by "
                  "Hyperscan", marks=HS),
     ("RAREBIRD_ECS_SEARCH", "libc", "ecs (auto); literals found by libc strstr"),
     ("RAREBIRD_ECS_SEARCH", "python", "ecs (auto); literals found by bytes.find"),
     pytest.param("RAREBIRD_ECS_SEARCH", "hyperscan", "ecs (auto); literals found by Hyperscan",
                  marks=HS)],
)  # fmt: skip
def test_the_search_that_ran_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, search: str, said: str
) -> None:
    monkeypatch.setenv(env, search)
    if "AUDITD" in env:
        path = _audit_log(tmp_path / "audit.log", 50)
    else:
        path = _ecs(tmp_path / "events.ndjson", 40)
    assert _read(path) == f"{path}: {said}"


def test_pretty_printed_documents_are_said_to_be_read_record_by_record(tmp_path: Path) -> None:
    ndjson = _ecs(tmp_path / "events.ndjson", 10)
    pretty = tmp_path / "events.json"
    pretty.write_text("".join(json.dumps(json.loads(d), indent=2) + "\n" for d in
                              ndjson.read_text().splitlines()))  # fmt: skip
    assert _read(pretty) == f"{pretty}: ecs (auto); pretty-printed documents, record by record"


def test_the_processes_that_read_a_log_are_counted_and_a_full_parse_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAREBIRD_AUDITD_SEARCH", "re")
    monkeypatch.setattr(auditd_source, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(auditd_parallel, "MIN_PIECE", 20_000)
    log = _audit_log(tmp_path / "audit.log", 2000)
    said = "exe= fields found by the regular expression"
    assert _read(log, workers="2") == f"{log}: auditd (auto); {said}, 2 processes"
    assert _read(log, workers="1") == f"{log}: auditd (auto); {said}"
    assert _read(log, scan="full") == f"{log}: auditd (auto); every line parsed"


def test_job_run_prints_how_each_input_was_read(tmp_path: Path) -> None:
    log = _audit_log(tmp_path / "audit.log", 50)
    proc = subprocess.run(
        [sys.executable, "-m", "rarebird", "job", "run", "--store", str(tmp_path / "s.db"),
         str(log)],
        capture_output=True, text=True, check=True,
        env={**os.environ, "RAREBIRD_AUDITD_SEARCH": "re"},
    )  # fmt: skip
    assert f"input   {log}: auditd (auto); exe= fields found by the regular expression\n" in (
        proc.stderr
    )
