"""Laurel JSON lines: the same typed event as the raw audit records Laurel read."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from rarebird.definitions.datafeed import load_datafeed
from rarebird.events import SourceLocation
from rarebird.sources import SourceOptions, open_source
from rarebird.sources.auditd import AuditdSource
from rarebird.sources.laurel import LaurelSource, sniff_laurel
from tests.conftest import shared_path

FEED = SourceOptions(prefilter=load_datafeed().query.prefilter)

SUDO_SS = {
    "ID": "1767607200.123:4242",
    "NODE": "web-01",
    "SYSCALL": {
        "arch": "0xc000003e",
        "syscall": 59,
        "success": "yes",
        "exit": 0,
        "items": 2,
        "ppid": 3001,
        "pid": 3002,
        "auid": 1000,
        "uid": 0,
        "gid": 0,
        "euid": 0,
        "egid": 0,
        "tty": "pts1",
        "ses": 7,
        "comm": "ss",
        "exe": "/usr/bin/ss",
        "key": "netdisc",
        "ARCH": "x86_64",
        "SYSCALL": "execve",
        "AUID": "alice",
        "UID": "root",
        "GID": "root",
        "EUID": "root",
        "EGID": "root",
        "PPID": {
            "EVENT_ID": "1767607190.001:4100",
            "comm": "bash",
            "exe": "/usr/bin/bash",
            "ppid": 2990,
        },
    },
    "EXECVE": {"argc": 2, "ARGV": ["ss", "-tunap"]},
    "CWD": {"cwd": "/home/alice"},
    "PATH": [{"item": 0, "name": "/usr/bin/ss", "nametype": "NORMAL", "OUID": "root"}],
    "PROCTITLE": {"ARGV": ["ss", "-tunap"]},
}


def write(path: Path, docs: list[dict[str, object] | bytes]) -> Path:
    path.write_bytes(
        b"".join((d if isinstance(d, bytes) else orjson.dumps(d)) + b"\n" for d in docs)
    )
    return path


def test_an_exec_line_becomes_a_process_start(tmp_path: Path) -> None:
    path = write(tmp_path / "laurel.log", [SUDO_SS])
    [ev] = LaurelSource(str(path), SourceOptions())
    assert ev.timestamp == datetime(2026, 1, 5, 10, 0, 0, 123000, tzinfo=UTC)
    assert (ev.event_category, ev.event_type, ev.event_action, ev.event_outcome) == (
        ("process",),
        ("start",),
        "executed",
        "success",
    )
    assert (ev.process_name, ev.process_executable, ev.process_args) == (
        "ss",
        "/usr/bin/ss",
        ("ss", "-tunap"),
    )
    assert (ev.process_title, ev.process_working_directory) == ("ss -tunap", "/home/alice")
    assert (ev.process_pid, ev.process_parent_pid) == (3002, 3001)
    assert (ev.process_parent_executable, ev.process_parent_name) == ("/usr/bin/bash", "bash")
    assert (ev.user_name, ev.user_id, ev.user_audit_name, ev.user_audit_id) == (
        "root",
        "0",
        "alice",
        "1000",
    )
    assert (ev.user_effective_name, ev.group_name, ev.group_id) == ("root", "root", "0")
    assert (ev.host_name, ev.host_os_type, ev.tags) == ("web-01", "linux", ("netdisc",))
    assert ev.get("auditd.session") == ("7",)
    assert ev.origin == SourceLocation(str(path), 1)


def test_login_identity_and_names_from_a_passwd_file(tmp_path: Path) -> None:
    doc = orjson.loads(orjson.dumps(SUDO_SS))
    for key in ("AUID", "UID", "GID", "EUID", "EGID"):
        del doc["SYSCALL"][key]
    (tmp_path / "passwd").write_text(
        "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"
    )
    path = write(tmp_path / "laurel.log", [doc])
    [as_user] = LaurelSource(str(path), SourceOptions(passwd=str(tmp_path / "passwd")))
    [as_login] = open_source(
        str(path), "laurel", SourceOptions(passwd=str(tmp_path / "passwd"), identity="login")
    )
    [no_names] = LaurelSource(str(path), SourceOptions())
    assert (as_user.user_name, as_user.user_audit_name) == ("root", "alice")
    assert (as_login.user_name, as_login.user_id, as_login.get("process.real_user.name")) == (
        "alice",
        "1000",
        ("root",),
    )
    # without names: root is still root (uid 0), the login user 1000 has no name
    assert (no_names.user_name, no_names.user_id) == ("root", "0")
    assert (no_names.user_audit_name, no_names.user_audit_id) == (None, "1000")


def test_other_events_bad_lines_and_the_prefilter(tmp_path: Path) -> None:
    connect = orjson.loads(orjson.dumps(SUDO_SS))
    connect["SYSCALL"].update({"syscall": 42, "SYSCALL": "connect"})
    sshd = orjson.loads(orjson.dumps(SUDO_SS))
    sshd["SYSCALL"]["exe"] = "/usr/sbin/sshd"
    accented = orjson.loads(orjson.dumps(SUDO_SS))
    accented["SYSCALL"]["exe"] = "/opt/r\u00e9seau/netstat"
    escaped = (
        orjson.dumps(accented).replace("é".encode(), b"\\u00e9").replace(b"/netstat", b"\\/netstat")
    )
    path = write(
        tmp_path / "laurel.log", [connect, sshd, b"not json", b'{"no": "ID"}', SUDO_SS, escaped]
    )
    src = LaurelSource(str(path), FEED)
    assert [(e.process_executable, e.origin.line) for e in src if e.origin] == [
        ("/usr/bin/ss", 5),
        ("/opt/réseau/netstat", 6),
    ]
    # lines that cannot name a discovery command are not decoded (nor checked)
    assert src.stats.prefiltered == 2
    assert src.stats.issues == []
    everything = LaurelSource(str(path), SourceOptions())
    assert [e.process_name for e in everything] == ["sshd", "ss", "netstat"]
    assert [(i.location.line, i.reason) for i in everything.stats.issues] == [
        (3, "laurel: not JSON"),
        (4, "laurel: no ID"),
    ]


def test_auto_detects_laurel(tmp_path: Path) -> None:
    path = write(tmp_path / "audit.log", [SUDO_SS])
    opened = open_source(str(path), "auto", FEED)
    assert opened.describe() == f"{path}: laurel (auto)"
    assert sniff_laurel(orjson.dumps(SUDO_SS)) == 0.95
    assert sniff_laurel(b'{"@timestamp": "2026-01-05T00:00:00Z"}\n') == 0.0


@pytest.mark.corpora
def test_laurel_output_agrees_with_the_raw_records_it_came_from() -> None:
    """Laurel's own expected JSON for its raw test records: both readers give the same event."""
    folder = shared_path("corpora", "laurel", "src", "testdata")
    compared = 0
    for json_file in sorted(folder.glob("record-*.json")):
        raw = json_file.with_suffix(".txt")
        from_laurel = list(LaurelSource(str(json_file), SourceOptions()))
        from_raw = list(AuditdSource(str(raw), SourceOptions()))
        assert len(from_laurel) == len(from_raw), json_file.name
        for a, b in zip(from_laurel, from_raw, strict=True):
            for field in (
                "timestamp",
                "user_name",
                "user_id",
                "user_audit_name",
                "user_audit_id",
                "user_effective_id",
                "group_id",
                "process_name",
                "process_executable",
                "process_args",
                "process_title",
                "process_working_directory",
                "process_pid",
                "process_parent_pid",
                "host_name",
                "tags",
                "event_outcome",
                "event_type",
            ):
                assert getattr(a, field) == getattr(b, field), (json_file.name, field)
            compared += 1
    assert compared == 6
