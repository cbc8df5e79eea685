"""Our ECS mapping against Elastic's own: go-libaudit's golden files and Elastic's sample documents.

Every test case of every ``aucoalesce/testdata/*.yaml`` (raw records) is parsed and compared
with its ``.json.golden`` (go-libaudit's normalised event, what Auditbeat and Auditd Manager
turn into ECS): timestamp, sequence, result, session, tags, pid, ppid, title, exe, cwd, args
and the user ids, for every event that has a SYSCALL record; exec events must come out as
process starts and nothing else may. Documented exceptions:

- ``process.name``: go-libaudit takes ``comm``; the issue (and Elastic Defend) want the
  basename of ``exe``. They differ where the program was started through a symlink
  (``iptables`` -> ``xtables-multi``, ``vim`` -> ``vim.basic``), where ``comm`` is truncated to
  15 bytes or changed by the program (``google_ip_forwa`` for ``python3.5``) and where the
  binary was replaced (``systemd-logind;58f98c85 (deleted)``). Listed below, case by case.
- ``tags`` of ENRICHED records whose 0x1d separator was stripped: go-libaudit reads
  ``key=(null)ARCH=x86_64`` as the key ``(null)ARCH=x86_64`` and tags the event ``x86_64``;
  we split the glued field off and see no key (``key=(null)``).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from rarebird.events import ProcessEvent
from rarebird.sources import SourceOptions
from rarebird.sources.auditd import AuditdSource
from rarebird.sources.auditd.events import RawRecord, build_event
from rarebird.sources.auditd.records import parse_header
from tests.conftest import shared_path

pytestmark = pytest.mark.corpora

#: (file, case) -> (golden process.name = comm, ours = basename of exe)
NAME_EXCEPTIONS = {
    ("rhel-7-linux-3.10.0", "make-device"): ("systemd-logind", "systemd-logind;58f98c85 (deleted)"),
    ("rhel-7-linux-3.10.0", "mount syscall"): (
        "systemd-logind",
        "systemd-logind;58f98c85 (deleted)",
    ),
    ("ubuntu-16.10-linux-4.8.0", "NETFILTER_CFG"): ("iptables", "xtables-multi"),
    ("ubuntu-16.10-linux-4.8.0", "connect syscall"): ("google_ip_forwa", "python3.5"),
    ("ubuntu-17.04-linux-4.10.0", "getsockname syscall"): ("google_accounts", "python3.5"),
    ("ubuntu-17.04-linux-4.10.0", "rename syscall"): ("vim", "vim.basic"),
    ("ubuntu-17.04-linux-4.10.0", "unlink syscall"): ("vim", "vim.basic"),
}
GLUED_TAG_CASES = {
    ("ubuntu-21.10-linux-5.13", name)
    for name in (
        "AUDIT_TIME_ADJNTPVAL chronyd status",
        "AUDIT_TIME_ADJNTPVAL chronyd freq",
        "AUDIT_TIME_ADJNTPVAL freq/tick",
    )
}


def yaml_cases(path: Path) -> dict[str, str]:
    """The ``tests:`` mapping of a go-libaudit test yaml: case name -> block of raw records."""
    cases: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^  (?!\s)(.+?):\s*[|>]-?\s*$", line)
        if m:
            current = cases.setdefault(m.group(1).strip("'\""), [])
        elif current is not None and (line.startswith("    ") or not line.strip()):
            current.append(line[4:])
    return {name: "\n".join(lines).strip("\n") + "\n" for name, lines in cases.items()}


def golden_files() -> list[Path]:
    return sorted(shared_path("corpora", "go-libaudit", "aucoalesce", "testdata").glob("*.yaml"))


def records(text: str) -> list[RawRecord]:
    out = []
    for i, line in enumerate(text.encode().splitlines(), 1):
        header = parse_header(line)
        if header is not None:
            out.append(RawRecord(i, header, line))
    return out


def ours_as_golden(ev: ProcessEvent) -> dict[str, Any]:
    return {
        "@timestamp": ev.timestamp,
        "sequence": int(ev.get("auditd.sequence")[0]),
        "result": ev.get("auditd.result")[0],
        "session": (ev.get("auditd.session") or ("unset",))[0],
        "tags": list(ev.tags) or None,
        "pid": str(ev.process_pid) if ev.process_pid is not None else None,
        "ppid": str(ev.process_parent_pid) if ev.process_parent_pid is not None else None,
        "title": ev.process_title,
        "exe": ev.process_executable,
        "cwd": ev.process_working_directory,
        "args": list(ev.process_args) or None,
        "uid": ev.user_id,
        "auid": ev.user_audit_id or "unset",
        "euid": ev.user_effective_id,
        "gid": ev.group_id,
    }


def golden_fields(g: dict[str, Any]) -> dict[str, Any]:
    p, ids = g.get("process", {}), g["user"].get("ids", {})
    return {
        "@timestamp": datetime.fromisoformat(g["@timestamp"].replace("Z", "+00:00")),
        "sequence": g["sequence"],
        "result": g["result"],
        "session": g["session"],
        "tags": g.get("tags"),
        "pid": p.get("pid"),
        "ppid": p.get("ppid"),
        "title": p.get("title"),
        "exe": p.get("exe"),
        "cwd": p.get("cwd"),
        "args": p.get("args"),
        "uid": ids.get("uid"),
        "auid": ids.get("auid"),
        "euid": ids.get("euid"),
        "gid": ids.get("gid"),
    }


def test_every_golden_event_agrees_with_elastics_normaliser(tmp_path: Path) -> None:
    src = AuditdSource(str(tmp_path / "x"), SourceOptions())
    compared = execs = 0
    seen_names: dict[tuple[str, str], tuple[str, str]] = {}
    glued: set[tuple[str, str]] = set()
    for yaml in golden_files():
        golden = {
            d["test_name"]: d["event"]
            for d in json.loads(yaml.with_suffix(".json.golden").read_text())
        }
        cases = yaml_cases(yaml)
        assert set(cases) == set(golden), yaml.name
        for name, text in cases.items():
            key = (yaml.stem, name)
            g = golden[name]
            event = build_event(records(text), src.context(), exec_only=False)
            has_syscall = any(r.header.type == b"SYSCALL" for r in records(text))
            assert (event is not None) == has_syscall, key
            if event is None:
                continue
            compared += 1
            ours, theirs = ours_as_golden(event), golden_fields(g)
            if key in GLUED_TAG_CASES:
                assert (ours.pop("tags"), theirs.pop("tags")) == (None, ["x86_64"])
                glued.add(key)
            assert ours == theirs, key
            is_exec = g.get("data", {}).get("syscall") in ("execve", "execveat")
            assert (event.event_type, event.event_category) == (
                (("start",), ("process",)) if is_exec else ((), ())
            ), key
            assert g["ecs"]["event"].get("type") == (
                ["start"] if is_exec else g["ecs"]["event"].get("type")
            )
            execs += is_exec
            if event.process_name != g["process"].get("name"):
                seen_names[key] = (g["process"]["name"], event.process_name or "")
            assert event.process_name == g["process"]["exe"].rsplit("/", 1)[-1]
            # the source itself yields exactly the exec events
            path = tmp_path / "case.log"
            path.write_text(text)
            produced = list(AuditdSource(str(path), SourceOptions()))
            assert len(produced) == is_exec, key
            if is_exec:
                assert produced[0].event_action == "executed"
                assert produced[0].event_outcome == (
                    "success" if g["result"] == "success" else "failure"
                )
    assert seen_names == NAME_EXCEPTIONS
    assert glued == GLUED_TAG_CASES
    assert (compared, execs) == (23, 3)


def test_events_without_a_syscall_record_are_not_produced(tmp_path: Path) -> None:
    for yaml in golden_files():
        for name, text in yaml_cases(yaml).items():
            if b"type=SYSCALL" in text.encode():
                continue
            path = tmp_path / "case.log"
            path.write_text(text)
            assert list(AuditdSource(str(path), SourceOptions())) == [], name


def test_elastic_integrations_coalesced_execve_event(tmp_path: Path) -> None:
    """Auditbeat's document for an ``auditctl`` run by alice as root: our ECS fields agree."""
    doc_path = shared_path(
        "corpora",
        "elastic-integrations",
        "packages/auditd/data_stream/log/_dev/test/pipeline/test-coalesced-syscall-execve-events.json",
    )
    [doc] = json.loads(doc_path.read_text())["events"]
    log = tmp_path / "audit.log"
    log.write_text("\n".join(doc["auditd"]["messages"]) + "\n")
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n")
    group = tmp_path / "group"
    group.write_text("root:x:0:\n")
    [ev] = AuditdSource(str(log), SourceOptions(passwd=str(passwd), group=str(group)))
    p, u, e = doc["process"], doc["user"], doc["event"]
    assert ev.to_ecs()["@timestamp"] == doc["@timestamp"]
    assert (ev.event_action, ev.event_outcome, ev.event_kind) == (
        e["action"],
        e["outcome"],
        e["kind"],
    )
    assert (list(ev.event_category), list(ev.event_type)) == (e["category"], e["type"])
    assert (ev.process_name, ev.process_executable, list(ev.process_args)) == (
        p["name"],
        p["executable"],
        p["args"],
    )
    assert (ev.process_pid, ev.process_parent_pid, ev.process_working_directory) == (
        p["pid"],
        p["parent"]["pid"],
        p["working_directory"],
    )
    assert (ev.user_name, ev.user_id) == (u["name"], u["id"])
    assert (ev.user_audit_name, ev.user_audit_id) == (u["audit"]["name"], u["audit"]["id"])
    assert (ev.user_effective_name, ev.user_effective_id) == (
        u["effective"]["name"],
        u["effective"]["id"],
    )
    assert (ev.get("user.group.id"), ev.get("user.group.name")) == (
        (u["group"]["id"],),
        (u["group"]["name"],),
    )
    assert list(ev.tags) == doc["tags"]
    assert ev.get("auditd.session") == (doc["auditd"]["session"],)
    assert ev.get("auditd.sequence") == (str(doc["auditd"]["sequence"]),)


def test_auditbeat_execve_document_has_ids_but_no_user_name(tmp_path: Path) -> None:
    """Auditbeat's ``uname -a`` document (no name resolution): ours has the same ids and, like
    it, no ``user.name``, so the detector drops it as Elastic's does."""
    doc = json.loads(
        shared_path(
            "corpora", "elastic-beats", "auditbeat/module/auditd/_meta/execve.json"
        ).read_text()
    )
    cases = yaml_cases(
        shared_path(
            "corpora", "go-libaudit", "aucoalesce", "testdata", "ubuntu-16.10-linux-4.8.0.yaml"
        )
    )
    log = tmp_path / "audit.log"
    log.write_text(cases["EXECVE"])
    [ev] = AuditdSource(str(log), SourceOptions())
    ecs = ev.to_ecs()
    for key in ("args", "executable", "name", "pid", "title", "working_directory"):
        assert ecs["process"][key] == doc["process"][key], key
    assert ecs["process"]["parent"]["pid"] == doc["process"]["parent"]["pid"]
    assert ecs["user"]["id"] == doc["user"]["id"]
    assert ecs["user"]["audit"] == doc["user"]["audit"]
    assert ecs["user"]["effective"] == doc["user"]["effective"]
    assert ecs["user"]["group"] == doc["user"]["group"]
    assert "name" not in doc["user"]
    assert "name" not in ecs["user"]
    assert list(ev.tags) == doc["tags"]
    assert ev.event_action == doc["event"]["action"]


def test_auditd_manager_sample_event(tmp_path: Path) -> None:
    """Auditd Manager's sample (a CONFIG_CHANGE with its SYSCALL): not a process start, and its
    process and user fields map as Auditd Manager mapped them."""
    doc = json.loads(
        shared_path(
            "corpora",
            "elastic-integrations",
            "packages/auditd_manager/data_stream/auditd/sample_event.json",
        ).read_text()
    )
    text = doc["event"]["original"] + "\n"
    log = tmp_path / "audit.log"
    log.write_text(text)
    assert list(AuditdSource(str(log), SourceOptions())) == []
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    group = tmp_path / "group"
    group.write_text("root:x:0:\n")
    src = AuditdSource(str(log), SourceOptions(passwd=str(passwd), group=str(group)))
    ev = build_event(records(text), src.context(), exec_only=False)
    assert ev is not None
    ecs = ev.to_ecs()
    for key in ("executable", "name", "pid", "title"):
        assert ecs["process"][key] == doc["process"][key], key
    assert ecs["process"]["parent"] == doc["process"]["parent"]
    assert (ecs["user"]["id"], ecs["user"]["name"]) == (doc["user"]["id"], doc["user"]["name"])
    assert (ecs["group"]["id"], ecs["group"]["name"]) == (
        doc["user"]["group"]["id"],
        doc["user"]["group"]["name"],
    )
    assert ev.to_ecs()["@timestamp"] == doc["@timestamp"]
    assert ev.get("auditd.sequence") == (str(doc["event"]["sequence"]),)
    assert "audit" not in ecs["user"]  # auid unset: no user.audit.*


def test_go_libaudit_streams_with_lost_out_of_order_and_rolled_over_messages() -> None:
    """go-libaudit's reassembler test streams: the same exec events whatever the disorder;
    the 9 serials missing from ``lost_messages.log`` are counted where the gap shows."""
    folder = shared_path("corpora", "go-libaudit", "testdata")

    def read(name: str) -> tuple[list[tuple[str, tuple[str, ...], str | None]], AuditdSource]:
        src = AuditdSource(str(folder / name), SourceOptions(extra={"scan": "full"}))
        return [
            (e.get("auditd.sequence")[0], e.process_args, e.process_working_directory) for e in src
        ], src

    normal, _ = read("normal.log")
    assert normal == [
        ("59", ("grep", "--color=auto", "mapping"), "/home/andrew_kroh"),
        ("60", ("cat", "securitybeat"), "/home/andrew_kroh"),
    ]
    assert read("out_of_order.log")[0] == normal
    lost, src = read("lost_messages.log")
    assert lost == normal
    assert [str(i).split(": ", 1)[1] for i in src.stats.issues] == [
        "auditd: events missing from the log (serial gap): 9 serial(s) from 50"
    ]
    assert src.stats.issues[0].location.line == 3
    rolled, src = read("rollover.log")
    assert [seq for seq, _args, _cwd in rolled] == ["4294967295"]
    assert src.stats.skipped_total == 0
