"""osquery results logs: process_events rows in every layout osquery writes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from rarebird.definitions.datafeed import load_datafeed
from rarebird.sources import SourceOptions, open_source
from rarebird.sources.osquery import OsquerySource, sniff_osquery

FEED = SourceOptions(prefilter=load_datafeed().query.prefilter)


def row(path: str = "/usr/bin/ss", cmdline: str = "ss -tunap", **more: Any) -> dict[str, Any]:
    cols = {
        "pid": "4242",
        "path": path,
        "mode": "0100755",
        "cmdline": cmdline,
        "cmdline_size": str(len(cmdline)),
        "cwd": '"/home/alice"',
        "auid": "1000",
        "uid": "0",
        "euid": "0",
        "gid": "0",
        "egid": "0",
        "parent": "4200",
        "time": "1767607200",
        "uptime": "12345",
        "syscall": "execve",
    }
    cols.update(more)
    return cols


def line(
    columns: dict[str, Any], action: str = "added", name: str = "pack_linux_process_events"
) -> dict[str, Any]:
    return {
        "name": name,
        "hostIdentifier": "web-01",
        "calendarTime": "Mon Jan  5 10:00:01 2026 UTC",
        "unixTime": 1767607201,
        "epoch": 0,
        "counter": 3,
        "numerics": False,
        "decorations": {"host_uuid": "4f1c0c5e-0000-0000-0000-000000000001"},
        "columns": columns,
        "action": action,
    }


def write(path: Path, docs: list[dict[str, Any] | bytes]) -> Path:
    path.write_bytes(
        b"".join((d if isinstance(d, bytes) else orjson.dumps(d)) + b"\n" for d in docs)
    )
    return path


def test_event_format_rows(tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text(
        "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"
    )
    path = write(tmp_path / "osqueryd.results.log", [line(row())])
    [ev] = OsquerySource(str(path), SourceOptions(passwd=str(tmp_path / "passwd")))
    assert ev.timestamp == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert (ev.event_category, ev.event_type, ev.event_module) == (
        ("process",),
        ("start",),
        "osquery",
    )
    assert (ev.process_name, ev.process_executable) == ("ss", "/usr/bin/ss")
    assert (ev.process_args, ev.process_command_line) == (("ss", "-tunap"), "ss -tunap")
    assert (ev.process_pid, ev.process_parent_pid, ev.process_working_directory) == (
        4242,
        4200,
        "/home/alice",
    )
    assert (ev.user_id, ev.user_name, ev.user_audit_id, ev.user_audit_name) == (
        "0",
        "root",
        "1000",
        "alice",
    )
    assert (ev.group_id, ev.group_name, ev.host_name) == ("0", "root", "web-01")  # gid 0: root
    assert ev.get("osquery.name") == ("pack_linux_process_events",)


def test_batches_snapshots_removed_rows_and_other_syscalls(tmp_path: Path) -> None:
    batch = {
        "name": "process_events",
        "hostIdentifier": "db-01",
        "unixTime": 1767607300,
        "diffResults": {
            "added": [row("/usr/bin/netstat", "netstat -rn"), row("/usr/bin/ls", "ls")],
            "removed": [row("/usr/sbin/route", "route -n")],
        },
    }
    snapshot = {
        "name": "bpf_process_events",
        "hostIdentifier": "db-01",
        "unixTime": 1767607400,
        "action": "snapshot",
        "snapshot": [
            {
                "pid": "77",
                "parent": "1",
                "uid": "1001",
                "gid": "1001",
                "path": "/usr/sbin/route",
                "cwd": "/tmp/a b",
                "cmdline": "route -n",
                "json_cmdline": '["route", "-n x"]',
                "syscall": "exec",
                "time": "1767607399",
            },
            row("/usr/bin/ss", "ss", syscall="fork"),
        ],
    }
    path = write(
        tmp_path / "results.log", [batch, snapshot, line(row("/usr/sbin/route"), action="removed")]
    )
    events = list(OsquerySource(str(path), FEED))
    assert [(e.process_name, e.process_args, e.host_name) for e in events] == [
        ("netstat", ("netstat", "-rn"), "db-01"),
        ("route", ("route", "-n x"), "db-01"),
    ]
    assert events[1].process_working_directory == "/tmp/a b"
    assert events[1].timestamp == datetime(2026, 1, 5, 10, 3, 19, tzinfo=UTC)


def test_login_identity(tmp_path: Path) -> None:
    path = write(tmp_path / "r.log", [line(row())])
    [ev] = open_source(str(path), "osquery", SourceOptions(identity="login"))
    assert (ev.user_id, ev.user_name, ev.get("process.real_user.id")) == ("1000", None, ("0",))


def test_bad_lines_are_reported_and_the_prefilter_skips_the_rest(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.log",
        [
            b'{"name": "x", "hostIdentifier": "h", "columns": {"path": "/usr/bin/ss", "pid": "1"}}',
            b'garbage /ss"',
            line(row("/usr/bin/sshd", "sshd -D")),
            line(row()),
        ],
    )
    src = OsquerySource(str(path), FEED)
    assert [e.origin.line for e in src if e.origin] == [4]
    assert [(i.location.line, i.reason) for i in src.stats.issues] == [
        (1, "osquery: no time"),
        (2, "osquery: not JSON"),
    ]
    assert src.stats.prefiltered == 1


def test_auto_detects_osquery(tmp_path: Path) -> None:
    path = write(tmp_path / "osqueryd.results.log", [line(row())])
    assert open_source(str(path), "auto", FEED).describe() == f"{path}: osquery (auto)"
    assert sniff_osquery(orjson.dumps(line(row()))) == 0.95


def test_a_prefiltered_read_is_every_row_read_then_filtered(tmp_path: Path) -> None:
    """With the datafeed's prefilter, the events and the reported issues are those of reading
    every row and applying the prefilter afterwards: a batch's decoy rows (``sshd``, ``ssh``)
    are dropped, a removed row is not an event, and a decoy's bad time is still reported."""
    batch = {
        **line(row()),
        "diffResults": {
            "added": [
                row("/usr/sbin/sshd", "sshd -D"),
                row("/usr/bin/netstat", "netstat -an", pid="7"),
                row("/usr/bin/ssh", "ssh host", time="99999999999999999999"),
                row("/usr/bin/route", "route -n", pid="8"),
            ],
            "removed": [row("/usr/bin/ss")],
        },
    }
    del batch["columns"]
    path = write(tmp_path / "r.log", [line(row("/usr/bin/sshd", "sshd -D")), batch, line(row())])
    src = OsquerySource(str(path), FEED)
    events = [(e.process_name, e.process_pid, e.origin.line if e.origin else None) for e in src]
    every = OsquerySource(str(path), SourceOptions())
    kept = [
        (e.process_name, e.process_pid, e.origin.line if e.origin else None)
        for e in every
        if FEED.prefilter.holds(e)
    ]
    # the batch's ssh row has a time no date holds: the whole line is a bad line either way
    assert events == kept == [("ss", 4242, 3)]
    assert [(i.location.line, i.reason) for i in src.stats.issues] == [
        (2, "osquery: time out of range")
    ]
    assert [(i.location.line, i.reason) for i in every.stats.issues] == [
        (2, "osquery: time out of range")
    ]
