"""Sysmon for Linux process creations from syslog, exported XML and JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from rarebird.definitions.datafeed import load_datafeed
from rarebird.events import ProcessEvent
from rarebird.sources import SourceOptions, open_source
from rarebird.sources.sysmon import SysmonSource, sniff_sysmon

FEED = SourceOptions(prefilter=load_datafeed().query.prefilter)


def event_xml(
    image: str = "/usr/bin/ss",
    command: str = "ss -tunap",
    user: str = "alice",
    event_id: int = 1,
    record: int = 77,
    logon: str = "1001",
    sep: str = "",
) -> str:
    data = {
        "RuleName": "-",
        "UtcTime": "2026-01-05 10:00:00.121",
        "ProcessGuid": "{3b1d2c4e-6f00-65a0-8d5e-000000000001}",
        "ProcessId": "4242",
        "Image": image,
        "FileVersion": "-",
        "Description": "-",
        "Product": "-",
        "Company": "-",
        "OriginalFileName": "-",
        "CommandLine": command,
        "CurrentDirectory": "/home/alice",
        "User": user,
        "LogonGuid": "{3b1d2c4e-0000-0000-e903-000000000000}",
        "LogonId": logon,
        "TerminalSessionId": "3",
        "IntegrityLevel": "no level",
        "Hashes": "-",
        "ParentProcessGuid": "{3b1d2c4e-6f00-65a0-8d5e-000000000000}",
        "ParentProcessId": "4200",
        "ParentImage": "/usr/bin/bash",
        "ParentCommandLine": "-bash",
        "ParentUser": user,
    }
    items = sep.join(
        f'<Data Name="{k}">{v.replace("&", "&amp;").replace("<", "&lt;")}</Data>'
        for k, v in data.items()
    )
    return (
        f'<Event><System><Provider Name="Linux-Sysmon" Guid="{{ff032593-a8d3-4f13-b0d6-01fc615a0f97}}"/>{sep}'
        f"<EventID>{event_id}</EventID><Version>5</Version><Level>4</Level><Task>1</Task>"
        f'<Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords><TimeCreated SystemTime="2026-01-05T10:00:00.123456000Z"/>'
        f'<EventRecordID>{record}</EventRecordID><Correlation/><Execution ProcessID="912" ThreadID="912"/>'
        f'<Channel>Linux-Sysmon/Operational</Channel><Computer>web-01</Computer><Security UserId="0"/></System>{sep}'
        f"<EventData>{sep}{items}{sep}</EventData></Event>"
    )


def syslog(xml: str) -> str:
    return f"Jan  5 10:00:00 web-01 sysmon: {xml}"


def check_ss(ev: ProcessEvent) -> None:
    assert ev.timestamp == datetime(2026, 1, 5, 10, 0, 0, 121000, tzinfo=UTC)
    assert (ev.event_category, ev.event_type) == (("process",), ("start",))
    assert (ev.process_name, ev.process_executable) == ("ss", "/usr/bin/ss")
    assert (ev.process_args, ev.process_command_line) == (("ss", "-tunap"), "ss -tunap")
    assert (ev.process_pid, ev.process_entity_id) == (
        4242,
        "{3b1d2c4e-6f00-65a0-8d5e-000000000001}",
    )
    assert ev.process_working_directory == "/home/alice"
    assert (ev.process_parent_pid, ev.process_parent_name, ev.process_parent_args) == (
        4200,
        "bash",
        ("-bash",),
    )
    assert (ev.user_name, ev.user_audit_id, ev.host_name, ev.host_os_type) == (
        "alice",
        "1001",
        "web-01",
        "linux",
    )


def test_syslog_lines(tmp_path: Path) -> None:
    path = tmp_path / "syslog"
    path.write_text(
        "Jan  5 09:59:59 web-01 systemd[1]: Started Session 3 of user alice.\n"
        + syslog(event_xml(event_id=5, record=76))
        + "\n"
        + syslog(event_xml())
        + "\n"
        + syslog(event_xml("/usr/sbin/sshd", "/usr/sbin/sshd -D", "root", record=78))
        + "\n"
    )
    src = SysmonSource(str(path), SourceOptions())
    events = list(src)
    assert [e.process_name for e in events] == ["ss", "sshd"]
    check_ss(events[0])
    assert events[0].origin is not None
    assert events[0].origin.line == 3
    assert [(i.location.line, i.reason) for i in src.stats.issues] == []
    fast = SysmonSource(str(path), FEED)
    assert [e.process_name for e in fast] == ["ss"]
    assert fast.stats.prefiltered == 2  # the systemd line and sshd's event are not decoded


def test_exported_xml_pretty_printed_over_many_lines(tmp_path: Path) -> None:
    path = tmp_path / "export.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<Events>\n'
        + event_xml(sep="\n  ")
        + "\n"
        + event_xml("/usr/sbin/route", "route -n &  echo <done>", "bob", record=80, sep="\n")
        + "\n</Events>\n"
    )
    events = list(SysmonSource(str(path), FEED))
    check_ss(events[0])
    assert (events[1].process_name, events[1].process_command_line, events[1].user_name) == (
        "route",
        "route -n &  echo <done>",
        "bob",
    )
    assert events[1].origin is not None
    assert events[1].origin.line == 30  # the line of its <Event>


def test_json_shapes(tmp_path: Path) -> None:
    data = {
        "UtcTime": "2026-01-05 10:00:00.121",
        "ProcessGuid": "{3b1d2c4e-6f00-65a0-8d5e-000000000001}",
        "ProcessId": "4242",
        "Image": "/usr/bin/ss",
        "CommandLine": "ss -tunap",
        "CurrentDirectory": "/home/alice",
        "User": "alice",
        "LogonId": "1001",
        "ParentProcessId": "4200",
        "ParentImage": "/usr/bin/bash",
        "ParentCommandLine": "-bash",
    }
    lines = [
        {
            "winlog": {
                "event_id": "1",
                "computer_name": "web-01",
                "event_data": data,
                "provider_name": "Linux-Sysmon",
            }
        },
        {"EventID": 1, "Computer": "web-01", **data},
        {
            "Event": {
                "System": {"EventID": "1", "Computer": "web-01"},
                "EventData": {"Data": [{"@Name": k, "#text": v} for k, v in data.items()]},
            }
        },
        {"winlog": {"event_id": "3", "computer_name": "web-01", "event_data": data}},
    ]
    path = tmp_path / "sysmon.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n")
    events = list(SysmonSource(str(path), FEED))
    assert len(events) == 3
    for ev in events:
        check_ss(ev)


def test_identity_login_uses_the_logon_id(tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text("alice:x:1001:1001::/home/alice:/bin/sh\n")
    path = tmp_path / "syslog"
    path.write_text(syslog(event_xml(user="root")) + "\n")
    options = SourceOptions(identity="login", passwd=str(tmp_path / "passwd"))
    [ev] = open_source(str(path), "sysmon", options)
    assert (ev.user_name, ev.user_id, ev.user_audit_name) == ("alice", "1001", "alice")
    assert ev.get("process.real_user.name") == ("root",)


def test_damaged_events_are_reported(tmp_path: Path) -> None:
    good = syslog(event_xml())
    path = tmp_path / "syslog"
    path.write_text(
        good.replace("<EventID>1</EventID>", "")
        + "\n"
        + good.replace("2026-01-05", "yesterday")
        + "\n"
        '{"winlog": {"event_id": "1", "event_data": 5}}\n' + good + "\n" + event_xml()[:300] + "\n"
    )
    src = SysmonSource(str(path), SourceOptions())
    assert [e.origin.line for e in src if e.origin] == [4]
    assert [(i.location.line, i.reason) for i in src.stats.issues] == [
        (1, "sysmon: no EventID"),
        (2, "sysmon: no valid UtcTime"),
        (3, "sysmon: event data is not an object"),
        (5, "sysmon: event cut short"),
    ]


def test_auto_detects_sysmon(tmp_path: Path) -> None:
    path = tmp_path / "syslog"
    path.write_text(syslog(event_xml()) + "\n")
    opened = open_source(str(path), "auto", FEED)
    assert opened.describe() == f"{path}: sysmon (auto)"
    assert sniff_sysmon(b"type=EOE msg=audit(1.000:1):\n") == 0.0
