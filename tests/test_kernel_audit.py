"""Real kernel telemetry, end to end: auditd records test users running commands; rarebird reads it.

As root, with the audit tools installed, the test

1. creates two users with unique names (removed afterwards, even when the test fails);
2. starts its own ``auditd`` in the foreground (``-n``) with a private configuration: the log
   goes to a temporary ``audit.log`` in the ENRICHED format with ``node=<hostname>``, no
   dispatcher plugins, nothing else of the machine's set-up is used or touched;
3. adds ``-a always,exit -F arch=b64 -S execve -F uid=<uid> -k rarebird-test`` for the two
   users only, so nothing else on the machine is recorded, and removes the rules afterwards;
4. runs ordinary commands and then ``ss`` / ``netstat`` / ``route`` as those users;
5. stops auditd, puts the kernel's audit ``enabled`` flag back as it was, and reads the log.

rarebird must find exactly the discovery runs, with the right user, host, arguments and
working directory. Skipped, with the reason, when not root, when a tool is missing, when the
kernel refuses audit requests, or when another audit daemon is already running (the kernel
allows one).
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rarebird.definitions.datafeed import load_datafeed
from rarebird.sources import Prefilter, SourceOptions, open_source
from rarebird.sources.auditd import AuditdSource

pytestmark = pytest.mark.root

KEY = "rarebird-test"
TOOLS = ("auditctl", "auditd", "useradd", "userdel", "runuser", "ss")
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

AUDITD_CONF = """\
local_events = yes
write_logs = yes
log_file = {log}
log_group = root
log_format = ENRICHED
flush = SYNC
freq = 0
max_log_file = 0
num_logs = 0
max_log_file_action = IGNORE
name_format = HOSTNAME
space_left = 2
space_left_action = IGNORE
admin_space_left = 1
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
verify_email = no
action_mail_acct = root
use_libwrap = no
q_depth = 2000
overflow_action = IGNORE
max_restarts = 0
plugin_dir = {plugins}
end_of_event_timeout = 2
"""


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=60)


def _status() -> dict[str, str]:
    out = _run("auditctl", "-s").stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (kernel audit and auditd)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing {', '.join(missing)} (the auditd, passwd and iproute2 packages)"
    try:
        status = _status()
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"the kernel refuses audit requests here: {getattr(exc, 'stderr', exc)}".strip()
    if status.get("enabled") == "2":
        return "the audit configuration is locked (enabled 2)"
    if status.get("pid", "0") != "0":
        return f"another audit daemon is running (pid {status['pid']}); this test runs its own"
    return None


@pytest.fixture
def kernel_audit() -> None:
    """Skip, saying why, when this machine cannot run the test."""
    reason = _why_not()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def users(kernel_audit: None) -> Iterator[list[tuple[str, int]]]:
    """Two fresh users, deleted afterwards whatever happens."""
    tag = secrets.token_hex(3)
    created: list[tuple[str, int]] = []
    try:
        for suffix in ("a", "b"):
            name = f"rbt{tag}{suffix}"
            _run("useradd", "--no-create-home", "--shell", "/bin/sh", name)
            created.append((name, int(_run("id", "-u", name).stdout)))
        yield created
    finally:
        for name, _uid in created:
            _run("userdel", name, check=False)


@pytest.fixture
def auditd(kernel_audit: None, tmp_path: Path) -> Iterator[Path]:
    """A private auditd writing to a temporary log; the kernel's enabled flag is restored."""
    conf = tmp_path / "conf"
    plugins = tmp_path / "plugins"
    logdir = tmp_path / "log"
    for d in (conf, plugins, logdir):
        d.mkdir()
    log = logdir / "audit.log"
    (conf / "auditd.conf").write_text(AUDITD_CONF.format(log=log, plugins=plugins))
    (conf / "auditd.conf").chmod(0o600)
    enabled = _status().get("enabled", "0")
    stderr = open(tmp_path / "auditd.stderr", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        ["auditd", "-n", "-s", "enable", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=stderr
    )
    try:
        deadline = time.monotonic() + 15
        while _status().get("pid") != str(proc.pid):
            if proc.poll() is not None or time.monotonic() > deadline:
                stderr.flush()
                pytest.fail(
                    f"auditd did not start: {(tmp_path / 'auditd.stderr').read_text()[-500:]}"
                )
            time.sleep(0.1)
        yield log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        stderr.close()
        _run("auditctl", "-e", enabled, check=False)


def _rule(action: str, uid: int) -> list[str]:
    return [
        "auditctl",
        action,
        "always,exit",
        "-F",
        "arch=b64",
        "-S",
        "execve",
        "-F",
        f"uid={uid}",
        "-k",
        KEY,
    ]


def _as_user(user: str, cwd: Path, script: str) -> None:
    _run(
        "runuser",
        "-u",
        user,
        "--",
        "/usr/bin/env",
        "-i",
        f"PATH={PATH}",
        "/bin/sh",
        "-c",
        f"cd {shlex.quote(str(cwd))} && {script}",
    )


def test_real_audit_log_of_discovery_commands(
    request: pytest.FixtureRequest, users: list[tuple[str, int]], auditd: Path
) -> None:
    (alice, alice_uid), (bob, bob_uid) = users
    # working directories the users can enter (pytest's own tmp folders are private to root)
    shared = Path(tempfile.mkdtemp(prefix="rarebird-kernel-"))
    request.addfinalizer(lambda: shutil.rmtree(shared, ignore_errors=True))
    shared.chmod(0o755)
    work = {}
    for name in (alice, bob):
        work[name] = shared / f"work {name}"
        work[name].mkdir()
        work[name].chmod(0o755)
    has_netstat = shutil.which("netstat") is not None
    has_route = shutil.which("route") is not None
    for uid in (alice_uid, bob_uid):
        _run(*_rule("-a", uid))
    try:
        _as_user(alice, work[alice], "ls -la > /dev/null; id > /dev/null; uname -a > /dev/null")
        _as_user(alice, work[alice], "ss -tn > /dev/null")
        if has_netstat:
            _as_user(alice, work[alice], "netstat -rn > /dev/null")
        _as_user(bob, work[bob], "cat /etc/hostname > /dev/null; ss -s > /dev/null")
        if has_route:
            _as_user(bob, work[bob], "route -n > /dev/null")
    finally:
        for uid in (alice_uid, bob_uid):
            _run(*_rule("-d", uid), check=False)
    rules = _run("auditctl", "-l").stdout
    assert f"-F uid={alice_uid}" not in rules
    assert f"-F uid={bob_uid}" not in rules

    expected = [(alice, str(work[alice]), ("ss", "-tn"))]
    if has_netstat:
        expected.append((alice, str(work[alice]), ("netstat", "-rn")))
    expected.append((bob, str(work[bob]), ("ss", "-s")))
    if has_route:
        expected.append((bob, str(work[bob]), ("route", "-n")))

    feed = SourceOptions(prefilter=load_datafeed().query.prefilter)
    deadline = time.monotonic() + 15
    while True:  # auditd writes each record as it comes (flush = SYNC); give it a moment
        found = list(AuditdSource(str(auditd), feed))
        if len(found) >= len(expected) or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    host = socket.gethostname()
    assert [(e.user_name, e.process_working_directory, e.process_args) for e in found] == expected
    assert {e.host_name for e in found} == {host}
    assert {e.tags for e in found} == {(KEY,)}
    assert {e.process_name for e in found} <= {"ss", "netstat", "route"}
    assert all(
        e.process_executable and e.process_executable.endswith("/" + e.process_name) for e in found
    )  # type: ignore[operator]
    assert [e.user_id for e in found] == [
        str(alice_uid) if u == alice else str(bob_uid) for u, _c, _a in expected
    ]

    # the same through format sniffing, and through the full parse
    opened = open_source(str(auditd), "auto", feed)
    assert opened.describe() == f"{auditd}: auditd (auto)"
    assert list(opened) == found
    full = AuditdSource(
        str(auditd), SourceOptions(prefilter=feed.prefilter, extra={"scan": "full"})
    )
    assert list(full) == found
    assert full.stats.skipped_total == 0

    # the rules were scoped: every exec in the log is one of the test users'
    everything = list(AuditdSource(str(auditd), SourceOptions(prefilter=Prefilter())))
    assert {e.user_id for e in everything} == {str(alice_uid), str(bob_uid)}
    ordinary = {e.process_name for e in everything} - {"ss", "netstat", "route"}
    assert {"ls", "id", "uname", "cat"} <= ordinary
    log_text = auditd.read_text(errors="replace")
    assert re.search(rf"^node={re.escape(host)} type=DAEMON_START ", log_text, re.M)
