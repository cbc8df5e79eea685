"""Raw auditd logs: records to exec events, the ECS mapping, names, identity, files and formats."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rarebird.definitions.datafeed import load_datafeed
from rarebird.errors import InputError
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.generate.auditd import AuditLogOptions, write_audit_log, write_group, write_passwd
from rarebird.sources import FieldCondition, Prefilter, SourceOptions, open_source
from rarebird.sources.auditd import AuditdSource, sniff_auditd

FEED = load_datafeed().query.prefilter
T = "audit(1767607200.123:4242):"

# One exec as a kernel logs it, RAW format: uid 0 after sudo by auid 1000.
SUDO_SS = [
    f"type=SYSCALL msg={T} arch=c000003e syscall=59 success=yes exit=0 a0=55d1 a1=55d2 a2=55d3 "
    "a3=8 items=2 ppid=3001 pid=3002 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 "
    'fsgid=0 tty=pts1 ses=7 comm="ss" exe="/usr/bin/ss" subj=unconfined key="netdisc"',
    f'type=EXECVE msg={T} argc=2 a0="ss" a1="-tunap"',
    f'type=CWD msg={T} cwd="/home/alice"',
    f'type=PATH msg={T} item=0 name="/usr/bin/ss" inode=2211 dev=08:01 mode=0100755 ouid=0 '
    "ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0",
    f'type=PATH msg={T} item=1 name="/lib64/ld-linux-x86-64.so.2" inode=2290 dev=08:01 '
    "mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL",
    f"type=PROCTITLE msg={T} proctitle=7373002D74756E6170",
    f"type=EOE msg={T} ",
]
ENRICHMENT = (
    'ARCH=x86_64 SYSCALL=execve AUID="alice" UID="root" GID="root" EUID="root" SUID="root" '
    'FSUID="root" EGID="root" SGID="root" FSGID="root"'
)


def write(path: Path, lines: list[str] | list[bytes], end: str = "\n") -> Path:
    data = b"".join((x if isinstance(x, bytes) else x.encode()) + end.encode() for x in lines)
    path.write_bytes(data)
    return path


def read(
    path: Path, options: SourceOptions | None = None
) -> tuple[list[ProcessEvent], AuditdSource]:
    src = AuditdSource(str(path), options or SourceOptions(extra={"scan": "full"}))
    return list(src), src


def test_an_exec_event_becomes_a_process_start_as_elastic_maps_it(tmp_path: Path) -> None:
    [ev], src = read(write(tmp_path / "audit.log", SUDO_SS))
    assert ev.timestamp == datetime(2026, 1, 5, 10, 0, 0, 123000, tzinfo=UTC)
    assert (ev.event_kind, ev.event_category, ev.event_type) == ("event", ("process",), ("start",))
    assert (ev.event_action, ev.event_outcome, ev.event_module) == ("executed", "success", "auditd")
    assert ev.process_name == "ss"
    assert ev.process_executable == "/usr/bin/ss"
    assert ev.process_args == ("ss", "-tunap")
    assert ev.process_title == "ss -tunap"
    assert (ev.process_pid, ev.process_parent_pid) == (3002, 3001)
    assert ev.process_working_directory == "/home/alice"
    assert (ev.user_id, ev.user_audit_id, ev.user_effective_id, ev.group_id) == (
        "0",
        "1000",
        "0",
        "0",
    )
    # RAW format and no passwd file: no names but root's (uid 0 is root on every Linux system);
    # the login user 1000 stays unnamed
    assert (ev.user_name, ev.user_audit_name) == ("root", None)
    assert ev.host_os_type == "linux"
    assert ev.host_name is None
    assert ev.tags == ("netdisc",)
    assert ev.get("auditd.session") == ("7",)
    assert ev.get("auditd.sequence") == ("4242",)
    assert ev.get("auditd.data.syscall") == ("execve",)
    assert ev.origin == SourceLocation(str(tmp_path / "audit.log"), 1)
    assert (src.stats.lines, src.stats.events, src.stats.skipped_total) == (7, 1, 0)


@pytest.mark.parametrize(
    ("style", "joiner"),
    [("separator", "\x1d"), ("glued", ""), ("space", " ")],
    ids=["0x1d", "separator-stripped", "separator-as-space"],
)
def test_enriched_names_are_used_with_or_without_the_separator(
    tmp_path: Path, style: str, joiner: str
) -> None:
    lines = list(SUDO_SS)
    lines[0] += joiner + ENRICHMENT
    lines[3] += joiner + 'OUID="root" OGID="root"'
    [ev], _ = read(write(tmp_path / f"{style}.log", lines))
    assert (ev.user_name, ev.user_id) == ("root", "0")
    assert (ev.user_audit_name, ev.user_audit_id) == ("alice", "1000")
    assert (ev.user_effective_name, ev.group_name) == ("root", "root")
    assert ev.tags == ("netdisc",)  # the glued ARCH= is not taken into the rule key
    assert ev.process_name == "ss"


def test_raw_logs_take_names_from_the_passwd_and_group_files_given(tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n"
    )
    (tmp_path / "group").write_text("root:x:0:\nwheel:x:10:alice\n")
    opts = SourceOptions(
        passwd=str(tmp_path / "passwd"), group=str(tmp_path / "group"), extra={"scan": "full"}
    )
    [ev], _ = read(write(tmp_path / "audit.log", SUDO_SS), opts)
    assert (ev.user_name, ev.user_audit_name, ev.user_effective_name) == ("root", "alice", "root")
    assert (ev.group_id, ev.group_name) == ("0", "root")
    assert ev.get("user.group.name") == ("root",)


def test_enriched_unknown_names_fall_back_to_the_passwd_file(tmp_path: Path) -> None:
    lines = list(SUDO_SS)
    lines[0] += "\x1d" + ENRICHMENT.replace('AUID="alice"', 'AUID="unknown(1000)"')
    (tmp_path / "passwd").write_text("carol:x:1000:1000::/home/carol:/bin/sh\n")
    [ev], _ = read(write(tmp_path / "a.log", lines), SourceOptions(passwd=str(tmp_path / "passwd")))
    assert (ev.user_name, ev.user_audit_name) == ("root", "carol")


def test_login_identity_models_the_person_behind_sudo_and_keeps_both(tmp_path: Path) -> None:
    lines = list(SUDO_SS)
    lines[0] += "\x1d" + ENRICHMENT
    path = write(tmp_path / "a.log", lines)
    # the login identity is applied by the sources layer (open_source), to every format alike
    [as_user] = open_source(str(path), "auditd", SourceOptions(identity="user"))
    [as_login] = open_source(str(path), "auditd", SourceOptions(identity="login"))
    assert (as_user.user_name, as_user.user_id, as_user.user_audit_name) == ("root", "0", "alice")
    assert (as_login.user_name, as_login.user_id, as_login.user_audit_name) == (
        "alice",
        "1000",
        "alice",
    )
    assert as_login.get("process.real_user.name") == ("root",)
    assert as_login.get("process.real_user.id") == ("0",)


def test_login_identity_keeps_the_real_user_when_there_is_no_login_session(tmp_path: Path) -> None:
    lines = [
        x.replace("auid=1000", "auid=4294967295").replace("ses=7", "ses=4294967295")
        for x in SUDO_SS
    ]
    lines[0] += "\x1d" + ENRICHMENT.replace('AUID="alice"', 'AUID="unset"')
    [ev] = open_source(
        str(write(tmp_path / "a.log", lines)), "auditd", SourceOptions(identity="login")
    )
    assert (ev.user_name, ev.user_id, ev.user_audit_id, ev.user_audit_name) == (
        "root",
        "0",
        None,
        None,
    )
    assert ev.get("auditd.session") == ()


def test_unknown_identity_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="identity"):
        AuditdSource(str(write(tmp_path / "a.log", SUDO_SS)), SourceOptions(identity="effective"))


def test_host_name_comes_from_node_or_the_configured_host(tmp_path: Path) -> None:
    path = write(tmp_path / "a.log", SUDO_SS)
    [ev], _ = read(path, SourceOptions(host_name="db-01"))
    assert ev.host_name == "db-01"
    noded = write(tmp_path / "n.log", ["node=web-07 " + x for x in SUDO_SS])
    [ev], _ = read(noded, SourceOptions(host_name="db-01"))
    assert ev.host_name == "web-07"


def test_same_serial_on_two_nodes_is_two_events(tmp_path: Path) -> None:
    lines = ["node=a " + x for x in SUDO_SS] + ["node=b " + x for x in SUDO_SS]
    events, _ = read(write(tmp_path / "a.log", lines))
    assert [e.host_name for e in events] == ["a", "b"]


def test_hex_encoded_exe_arguments_directory_and_title(tmp_path: Path) -> None:
    exe = "/opt/net tools/ss"
    title = b"ss\x00-t n\x00caf\xc3\xa9".hex().upper()
    lines = [
        SUDO_SS[0].replace('exe="/usr/bin/ss"', "exe=" + exe.encode().hex().upper()),
        f'type=EXECVE msg={T} argc=3 a0="ss" a1={b"-t n".hex().upper()} a2={"café".encode().hex().upper()}',
        f"type=CWD msg={T} cwd={b'/home/al ice'.hex().upper()}",
        f"type=PROCTITLE msg={T} proctitle={title}",
        f"type=EOE msg={T}",
    ]
    [ev], src = read(write(tmp_path / "a.log", lines))
    assert (ev.process_executable, ev.process_name) == (exe, "ss")
    assert ev.process_args == ("ss", "-t n", "café")
    assert ev.process_working_directory == "/home/al ice"
    assert ev.process_title == "ss -t n café"
    assert src.stats.skipped_total == 0


def test_invalid_hex_keeps_the_value_as_written_and_reports_the_line(tmp_path: Path) -> None:
    lines = list(SUDO_SS)
    lines[1] = f'type=EXECVE msg={T} argc=2 a0="ss" a1=2D7Z'
    [ev], src = read(write(tmp_path / "a.log", lines))
    assert ev.process_args == ("ss", "2D7Z")
    [issue] = src.stats.issues
    assert (issue.location.line, issue.reason) == (2, "auditd: value neither quoted nor valid hex")
    assert str(issue).startswith(
        f"{tmp_path / 'a.log'}:2: auditd: value neither quoted nor valid hex"
    )


def test_a_one_megabyte_argument_split_over_records_is_put_back_together(tmp_path: Path) -> None:
    big = "x" * 700_000 + "é" + "y" * 300_000
    event = ProcessEvent(
        timestamp=datetime(2026, 1, 5, tzinfo=UTC),
        user_id="1001",
        user_name="bob",
        process_executable="/usr/bin/printf",
        process_args=("printf", big, "end"),
    )
    with open(tmp_path / "a.log", "wb") as f:
        written = write_audit_log([event], f, AuditLogOptions())
    assert written.records > 200  # EXECVE records of at most 7500 bytes each
    printf = Prefilter((FieldCondition("process.name", frozenset({"printf"})),))
    for scan in ("full", "fast"):
        [ev], src = read(tmp_path / "a.log", SourceOptions(prefilter=printf, extra={"scan": scan}))
        assert src.fast == (scan == "fast")
        assert ev.process_args == ("printf", big, "end")
        assert src.stats.skipped_total == 0


def test_execve_with_argc_larger_than_the_arguments_reports_the_missing_one(tmp_path: Path) -> None:
    lines = list(SUDO_SS)
    lines[1] = f'type=EXECVE msg={T} argc=3 a0="ss" a1="-t"'
    [ev], src = read(write(tmp_path / "a.log", lines))
    assert ev.process_args == ("ss", "-t")
    assert [(i.location.line, i.reason) for i in src.stats.issues] == [
        (2, "auditd: EXECVE argument missing")
    ]


def test_rule_keys_become_tags(tmp_path: Path) -> None:
    cases = {
        'key="key=net"': ("net",),
        "key=" + b"exec\x0164bit".hex().upper(): ("exec", "64bit"),
        "key=(null)": (),
    }
    for key, tags in cases.items():
        lines = [SUDO_SS[0].replace('key="netdisc"', key), *SUDO_SS[1:]]
        [ev], _ = read(write(tmp_path / "a.log", lines))
        assert ev.tags == tags


def test_a_failed_exec_is_a_start_with_outcome_failure(tmp_path: Path) -> None:
    lines = [SUDO_SS[0].replace("success=yes exit=0", "success=no exit=-13"), *SUDO_SS[1:]]
    [ev], _ = read(write(tmp_path / "a.log", lines))
    assert (ev.event_type, ev.event_outcome) == (("start",), "failure")


def test_other_syscalls_and_user_messages_are_not_process_starts(tmp_path: Path) -> None:
    t = "audit(1767607300.000:5000):"
    lines = [
        SUDO_SS[0].replace(T, t).replace("syscall=59", "syscall=42"),  # connect
        f"type=SOCKADDR msg={t} saddr=0200003510000001",
        f"type=EOE msg={t}",
        "type=USER_START msg=audit(1767607301.000:5001): pid=1 uid=0 auid=1000 ses=3 "
        'msg=\'op=PAM:session_open acct="alice" exe="/usr/bin/ss" hostname=? res=success\'',
        *SUDO_SS,
    ]
    events, _ = read(write(tmp_path / "a.log", lines))
    assert [e.get("auditd.sequence") for e in events] == [("4242",)]


def test_execve_numbers_of_other_architectures(tmp_path: Path) -> None:
    lines = [
        SUDO_SS[0].replace("arch=c000003e syscall=59", "arch=c00000b7 syscall=221"),
        *SUDO_SS[1:],
    ]
    [ev], _ = read(write(tmp_path / "a.log", lines))
    assert ev.get("auditd.data.arch") == ("aarch64",)
    assert ev.get("auditd.data.syscall") == ("execve",)


def test_interleaved_events_and_events_without_eoe(tmp_path: Path) -> None:
    a = list(SUDO_SS)
    b = [
        x.replace("4242", "4243")
        .replace("/usr/bin/ss", "/usr/bin/netstat")
        .replace('"ss"', '"netstat"')
        for x in SUDO_SS
    ]
    mixed = [a[0], b[0], a[1], b[1], b[2], a[2], a[3], b[3], b[4], a[4], a[5], b[5], b[6], a[6]]
    events, _ = read(write(tmp_path / "mixed.log", mixed))
    assert [(e.process_name, e.process_args[0]) for e in events] == [
        ("ss", "ss"),
        ("netstat", "netstat"),
    ]
    no_eoe = [x for x in a + b if "type=EOE" not in x]
    events, _ = read(write(tmp_path / "noeoe.log", no_eoe))
    assert [(e.process_name, e.process_working_directory) for e in events] == [
        ("ss", "/home/alice"),
        ("netstat", "/home/alice"),
    ]


def test_records_far_apart_are_different_events(tmp_path: Path) -> None:
    filler = [
        f"type=USER_ACCT msg=audit(1767607200.200:{9000 + i}): pid=1 uid=0 msg='op=x res=success' {'p' * 300}"
        for i in range(400)
    ]
    lines = [SUDO_SS[0], *filler, *SUDO_SS[1:]]  # the EXECVE etc. come 120 KB after the SYSCALL
    [ev], _ = read(write(tmp_path / "a.log", lines))
    assert ev.process_args == ()
    assert ev.process_working_directory is None


def test_lost_events_are_counted_from_serial_gaps(tmp_path: Path) -> None:
    lines: list[str] = []
    for serial in [*range(100, 110), *range(115, 120)]:
        lines += [x.replace("4242", str(serial)) for x in SUDO_SS]
    events, src = read(write(tmp_path / "a.log", lines))
    assert len(events) == 15
    assert src.stats.skipped["auditd: events missing from the log (serial gap)"] == 5


def test_serial_rollover_and_out_of_order_events_lose_nothing(tmp_path: Path) -> None:
    lines: list[str] = []
    for serial in [4294967293, 4294967295, 4294967294, 0, 1]:
        lines += [x.replace("4242", str(serial)) for x in SUDO_SS]
    events, src = read(write(tmp_path / "a.log", lines))
    assert [e.get("auditd.sequence")[0] for e in events] == [
        "4294967293",
        "4294967295",
        "4294967294",
        "0",
        "1",
    ]
    assert src.stats.skipped_total == 0


def test_crlf_lines_and_a_last_line_without_newline(tmp_path: Path) -> None:
    path = write(tmp_path / "a.log", SUDO_SS, end="\r\n")
    [ev], src = read(path)
    assert ev.process_args == ("ss", "-tunap")
    path.write_bytes(path.read_bytes().rstrip(b"\r\n"))
    [ev], src = read(path)
    assert src.stats.lines == 7


def test_the_datafeed_prefilter_is_applied_to_parsed_events(tmp_path: Path) -> None:
    other = [
        x.replace("4242", "4243").replace("/usr/bin/ss", "/usr/bin/sshd").replace('"ss"', '"sshd"')
        for x in SUDO_SS
    ]
    path = write(tmp_path / "a.log", SUDO_SS + other)
    for scan in ("full", "fast"):
        events, src = read(path, SourceOptions(prefilter=FEED, extra={"scan": scan}))
        assert src.fast == (scan == "fast")
        assert [e.process_name for e in events] == ["ss"]
    assert src.stats.prefiltered == 7  # the sshd event's records were never parsed


def test_generated_logs_read_back_as_written(tmp_path: Path) -> None:
    start = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    written = [
        ProcessEvent(
            timestamp=start.replace(second=i),
            host_name="web-01",
            user_id=uid,
            user_name=name,
            group_id=uid,
            group_name=name,
            process_executable=exe,
            process_args=args,
            process_pid=4000 + i,
            process_parent_pid=3999,
            process_working_directory=cwd,
        )
        for i, (uid, name, exe, args, cwd) in enumerate(
            [
                ("1001", "alice", "/usr/bin/ss", ("ss", "-tunap"), "/home/alice"),
                ("0", "root", "/usr/sbin/route", ("route", "-n"), "/root"),
                ("1002", "bob", "/opt/my tools/netstat", ("netstat", "-a b"), "/tmp/x y"),
            ]
        )
    ]
    for enriched in (None, "separator", "glued"):
        path = tmp_path / f"gen-{enriched}.log"
        with open(path, "wb") as f:
            log = write_audit_log(written, f, AuditLogOptions(enriched=enriched, node=True))
        write_passwd(str(tmp_path / "passwd"), log)
        write_group(str(tmp_path / "group"), log)
        opts = SourceOptions(
            passwd=None if enriched else str(tmp_path / "passwd"),
            group=None if enriched else str(tmp_path / "group"),
            prefilter=FEED,
        )
        events, _ = read(path, opts)
        assert [
            (
                e.host_name,
                e.user_name,
                e.group_name,
                e.process_name,
                e.process_args,
                e.process_working_directory,
                e.process_pid,
            )
            for e in events
        ] == [
            ("web-01", "alice", "alice", "ss", ("ss", "-tunap"), "/home/alice", 4000),
            ("web-01", "root", "root", "route", ("route", "-n"), "/root", 4001),
            ("web-01", "bob", "bob", "netstat", ("netstat", "-a b"), "/tmp/x y", 4002),
        ]


def test_auto_detects_auditd_in_rotated_and_gzipped_files(tmp_path: Path) -> None:
    raw = "".join(x + "\n" for x in SUDO_SS).encode()
    (tmp_path / "audit.log.1").write_bytes(raw)
    with gzip.open(tmp_path / "audit.log.2.gz", "wb") as gz:
        gz.write(raw)
    for name in ("audit.log.1", "audit.log.2.gz"):
        opened = open_source(str(tmp_path / name), "auto", SourceOptions(prefilter=FEED))
        assert opened.describe() == f"{tmp_path / name}: auditd (auto)"
        assert [e.process_name for e in opened] == ["ss"]


def test_sniffer_confidence() -> None:
    assert sniff_auditd("\n".join(SUDO_SS).encode()) == 0.95
    assert sniff_auditd(b'{"@timestamp": "2026-01-05T00:00:00Z"}\n') == 0.0
    assert 0 < sniff_auditd(("garbage\n" + SUDO_SS[0] + "\n").encode()) < 0.95


def test_a_passwd_file_that_cannot_be_read_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="passwd"):
        AuditdSource(
            str(write(tmp_path / "a.log", SUDO_SS)), SourceOptions(passwd=str(tmp_path / "passwd"))
        )


def test_passwd_lines_that_are_not_accounts_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text(
        "# comment\n+nis\nbroken\nroot:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/h:/bin/sh\nalias:x:1000:1000::/h:/bin/sh\n"
    )
    [ev], _ = read(
        write(tmp_path / "a.log", SUDO_SS), SourceOptions(passwd=str(tmp_path / "passwd"))
    )
    assert (ev.user_name, ev.user_audit_name) == ("root", "alice")  # the first name of uid 1000
