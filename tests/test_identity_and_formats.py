"""The same fleet read as ECS and as raw auditd gives the same anomalies; who is behind sudo."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rarebird", *args], capture_output=True,
                          text=True, check=False)  # fmt: skip


def records(store: Path) -> list[dict]:
    out = run(
        "results", "--store", str(store), "--format", "json", "--limit", "0", "--sort", "time"
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_ecs_and_raw_auditd_of_one_fleet_agree(tmp_path: Path) -> None:
    found = {}
    for fmt in ("ecs", "auditd"):
        events = tmp_path / f"fleet.{fmt}"
        gen = run(
            "generate", "--days", "12", "--seed", "3", "--format", fmt, "--output", str(events)
        )
        assert gen.returncode == 0, gen.stderr
        store = tmp_path / f"{fmt}.db"
        proc = run("job", "run", "--store", str(store), str(events))
        assert proc.returncode == 0, proc.stderr
        assert f"{events}: {fmt} (auto)" in proc.stderr
        found[fmt] = records(store)
    assert found["ecs"]
    assert found["ecs"] == found["auditd"]
    assert "www-data" in {r["by_field_value"] for r in found["ecs"]}


T0 = datetime(2026, 3, 2, tzinfo=UTC)


def sudo_doc(minutes: float, account: str, login: str | None, process: str = "ss") -> str:
    user: dict = {"name": account, "id": "0" if account == "root" else "1000"}
    if login is not None:
        user["audit"] = {"name": login, "id": "1001"}
    return json.dumps({
        "@timestamp": (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        "event": {"type": ["start"]},
        "host": {"name": "db-1", "os": {"type": "linux"}},
        "process": {"name": process, "args": [process, "-tan"]},
        "user": user,
    })  # fmt: skip


def test_login_identity_models_the_person_behind_sudo_and_results_show_both(tmp_path: Path) -> None:
    lines = []
    for b in range(12 * 96):
        lines.append(sudo_doc(b * 15 + 1, "root", "ops"))  # an admin's scheduled sudo
        if b % 2:
            lines.append(sudo_doc(b * 15 + 2, "nagios", None))
    lines.append(sudo_doc(12 * 96 * 15 + 3, "root", "mallory"))  # a new person, via sudo
    lines.append(sudo_doc(12 * 96 * 15 + 20, "nagios", None))
    events = tmp_path / "sudo.ndjson"
    events.write_text("\n".join(lines) + "\n")

    # Elastic's by-field: root every time, nothing unusual
    plain = tmp_path / "user.db"
    assert run("job", "run", "--quiet", "--store", str(plain), str(events)).returncode == 0
    assert records(plain) == []

    # the login identity: mallory behind sudo is new; the table names the account too
    login = tmp_path / "login.db"
    proc = run("job", "run", "--quiet", "--identity", "login", "--store", str(login), str(events))
    assert proc.returncode == 0, proc.stderr
    (rec,) = records(login)
    assert rec["by_field_value"] == "mallory"
    table = run("results", "--store", str(login)).stdout
    assert "also as" in table
    assert "process.real_user.name=root" in table
    why = run("triage", "--store", str(login), "mallory@2026-03-14T00:05:00Z").stdout
    assert "also as: process.real_user.name root" in why


# --- the login identity is applied by the sources layer, the same on every path ---------------

SUDO_ECS = (
    b'{"@timestamp": "2026-03-02T10:00:00Z", "event": {"category": ["process"], '
    b'"type": ["start"]}, "process": {"name": "ss", "args": ["ss", "-tunap"]}, '
    b'"user": {"name": "root", "id": "0", "audit": {"name": "mallory", "id": "1001"}}, '
    b'"host": {"name": "web-1", "os": {"type": "linux"}}}\n'
)
_AUDIT = "audit(1772445600.000:42):"
SUDO_AUDIT = (
    f"type=SYSCALL msg={_AUDIT} arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=2 "
    'auid=1001 uid=0 gid=0 euid=0 ses=3 tty=pts0 comm="ss" exe="/usr/bin/ss" key=(null)'
    '\x1dARCH=x86_64 SYSCALL=execve AUID="mallory" UID="root" GID="root" EUID="root"\n'
    f'type=EXECVE msg={_AUDIT} argc=2 a0="ss" a1="-tunap"\n'
    f"type=EOE msg={_AUDIT} \n"
).encode()


@dataclass(frozen=True)
class _Chunk:
    path: str
    data: bytes
    first_line: int = 1


@pytest.mark.parametrize(("fmt", "data"), [("ecs", SUDO_ECS), ("auditd", SUDO_AUDIT)])
def test_file_reading_and_the_chunk_parser_give_the_same_login_identity(
    tmp_path: Path, fmt: str, data: bytes
) -> None:
    from rarebird.definitions.datafeed import load_datafeed
    from rarebird.sources import ChunkParser, SourceOptions, open_source

    path = tmp_path / "events.log"
    path.write_bytes(data)
    prefilter = load_datafeed().query.prefilter
    for identity, user, real in (("user", "root", ()), ("login", "mallory", ("root",))):
        options = SourceOptions(prefilter=prefilter, identity=identity)
        [read] = open_source(str(path), "auto", options)
        parser = ChunkParser("auto", "events.log", options)
        [parsed] = parser.parse(_Chunk(str(path), data)).events
        assert parser.format == fmt
        assert read == parsed
        assert (read.user_name, read.user_audit_name) == (user, "mallory")
        assert read.get("process.real_user.name") == real
    # `job run --identity login` models (and keeps, for triage) the same person
    store = tmp_path / "login.db"
    proc = run("job", "run", "--quiet", "--identity", "login", "--store", str(store), str(path))
    assert proc.returncode == 0, proc.stderr
    with closing(sqlite3.connect(store)) as conn:
        assert conn.execute("SELECT user_name FROM events").fetchall() == [("mallory",)]


def test_a_prefilter_on_user_name_keeps_the_person_behind_sudo(tmp_path: Path) -> None:
    from rarebird.sources import FieldCondition, Prefilter, SourceOptions, open_source

    path = tmp_path / "events.ndjson"
    path.write_bytes(SUDO_ECS)
    wanted = Prefilter((FieldCondition("user.name", frozenset({"mallory"})),))
    assert list(open_source(str(path), "ecs", SourceOptions(prefilter=wanted))) == []
    [ev] = open_source(str(path), "ecs", SourceOptions(prefilter=wanted, identity="login"))
    assert ev.user_name == "mallory"


def test_a_log_without_names_says_how_to_name_its_users(tmp_path: Path) -> None:
    """auditd's RAW format carries ids only: uid 1001's `ss` cannot be modelled without the
    host's passwd file, and both `job run` and `detect` say so, and how; with --passwd it is."""
    log = tmp_path / "audit.log"
    log.write_text(
        "type=SYSCALL msg=audit(1772442000.100:501): arch=c000003e syscall=59 success=yes exit=0 "
        'items=2 ppid=1 pid=4242 auid=1001 uid=1001 gid=1001 euid=1001 comm="ss" '
        'exe="/usr/bin/ss" key=(null)\n'
        'type=EXECVE msg=audit(1772442000.100:501): argc=2 a0="ss" a1="-tn"\n'
    )
    hint = "1 matched event(s) had no user.name and were not modelled"
    for command in (["job", "run"], ["detect"]):
        res = subprocess.run([sys.executable, "-m", "rarebird", *command, "--store",
                              str(tmp_path / f"{command[0]}.db"), str(log)],
                             capture_output=True, text=True, check=False)  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert hint in res.stderr
        assert "--passwd FILE" in res.stderr
    (tmp_path / "passwd").write_text("carol:x:1001:1001::/home/carol:/bin/sh\n")
    res = subprocess.run([sys.executable, "-m", "rarebird", "job", "run", "--store",
                          str(tmp_path / "named.db"), "--passwd", str(tmp_path / "passwd"),
                          str(log)], capture_output=True, text=True, check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert hint not in res.stderr
    assert "without user.name" not in res.stderr
