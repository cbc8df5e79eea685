"""Realistic inputs for the speed benchmarks, written independently of rarebird's own generator.

rarebird's writer (``rarebird.generate``) produces the shapes rarebird reads best: every event
ends with ``EOE``, records are never out of place, documents keep one key order. Real inputs do
not. This module writes, from a seed and with no import of rarebird:

**raw auditd** as ``auditd`` writes it with ``log_format = ENRICHED`` and ``name_format``
set (every line starts ``node=NAME``; resolved names follow a ``0x1d`` byte), for a fleet of
hosts forwarded into one file (records of several nodes mixed): exec events (``SYSCALL`` with
``syscall=59``, ``EXECVE``, ``CWD``, two ``PATH``, ``PROCTITLE`` as hex when it holds a NUL),
``connect`` events (``SYSCALL`` + ``SOCKADDR`` + ``PROCTITLE``) and single-record user messages
(``USER_ACCT``, ``CRED_ACQ``, ``USER_START``, ``CRED_DISP`` of ``sshd`` and ``sudo``), with
**no** ``EOE`` records (``eoe=True`` writes one after each multi-record event, as newer kernels
do); a share of events (``interleave``, 2 % by default) has its last record written after the
next event's records. Matching exec events run ``netstat``, ``ss``, ``route`` or ``showmount``;
decoys hold those words without being one of them (``exe`` of ``sshd``, ``ssh``,
``sss_cache``, ``mount``; ``ip route show``, ``grep route``; ``ssh`` and ``sss_cache`` in
``comm``).

**Laurel** JSON lines, as Laurel (threathunters-io/laurel) writes the same kinds of events
after grouping their records: one object per event with ``ID``, ``NODE``, ``SYSCALL`` (the
numeric fields, the translated ``ARCH``/``SYSCALL``/``UID``... and the parent in ``PPID``),
``EXECVE.ARGV``, ``CWD``, ``PATH``, ``PROCTITLE.ARGV``, ``SOCKADDR`` for ``connect``, and the
PAM messages with their ``msg`` split into fields (the shapes of Laurel's ``src/testdata``).
The same decoys: ``comm`` of ``ss``, a parent named ``ss``, ``route`` as an argument.

**Sysmon for Linux** as it reaches ``/var/log/syslog``: one line per event, the syslog prefix
and ``sysmon:`` before the event's XML (``EventID`` 1, process creation, with the fields of
Sysmon's schema: ``Image``, ``CommandLine``, ``User``, ``ParentImage``...), amid other
programs' lines (``systemd``, ``sshd``, ``CRON``, the kernel). The same decoys: ``sshd``,
``ssh``, ``ip route show``, ``grep route``, children of ``ss``.

**ECS** Elastic Defend process documents (``start``, ``end`` and ``fork`` events), keys in a
varied order, the same decoys (a process whose parent is ``ss``, ``grep route``, the ``end``
events of the discovery commands, which the datafeed does not want).

``match_share`` is the share of exec events that are discovery commands (2 % by default);
``decoy_share`` the share that are near misses (10 % by default; the unfavourable case raises
it). The expected counts are returned, so a benchmark can check what it measured.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

START = 1_764_547_200  # 2025-12-01T00:00:00Z
SPAN = 14 * 86_400

DISCOVERY = (
    ("/usr/bin/ss", ["ss", "-tunap"]),
    ("/usr/bin/ss", ["ss", "-lntp"]),
    ("/usr/bin/netstat", ["netstat", "-an"]),
    ("/bin/netstat", ["netstat", "-rn"]),
    ("/usr/sbin/route", ["route", "-n"]),
    ("/sbin/showmount", ["showmount", "-e", "10.0.0.5"]),
)
DECOYS = (
    ("/usr/sbin/sshd", ["/usr/sbin/sshd", "-D", "-R"]),
    ("/usr/bin/ssh", ["ssh", "-o", "BatchMode=yes", "backup@10.0.0.9"]),
    ("/usr/sbin/sss_cache", ["sss_cache", "-E"]),
    ("/usr/sbin/ip", ["ip", "route", "show"]),
    ("/usr/bin/grep", ["grep", "route", "/etc/network/interfaces"]),
    ("/usr/bin/mount", ["mount", "-t", "nfs"]),
    ("/usr/bin/cat", ["cat", "/proc/net/route"]),
)
ORDINARY = (
    ("/usr/bin/ls", ["ls", "-la"]),
    ("/usr/bin/cat", ["cat", "/etc/hostname"]),
    ("/usr/bin/python3.11", ["python3", "/opt/app/worker.py", "--queue", "default"]),
    ("/usr/bin/bash", ["bash", "-c", "logrotate /etc/logrotate.conf"]),
    ("/usr/bin/systemctl", ["systemctl", "is-active", "nginx"]),
    ("/usr/bin/find", ["find", "/var/tmp", "-mtime", "+7", "-delete"]),
    ("/usr/bin/curl", ["curl", "-fsS", "http://127.0.0.1:8080/health"]),
    ("/usr/bin/date", ["date", "+%s"]),
    ("/usr/bin/awk", ["awk", "{print $1}"]),
    ("/usr/bin/sleep", ["sleep", "30"]),
)
USERS = [("root", 0)] * 6 + [("alice", 1000), ("bob", 1001), ("deploy", 1002), ("www-data", 33)]
RARE_USERS = [("nagios", 112), ("postgres", 113), ("jenkins", 1010)]


@dataclass(frozen=True)
class Written:
    path: str
    events: int  # exec events (auditd) or documents (ECS)
    matching: int  # discovery-command starts (what the datafeed keeps)
    decoys: int
    lines: int
    bytes: int


def _pick(rng: random.Random, match_share: float, decoy_share: float) -> tuple[str, str, list[str]]:
    x = rng.random()
    if x < match_share:
        exe, argv = rng.choice(DISCOVERY)
        return "match", exe, argv
    if x < match_share + decoy_share:
        exe, argv = rng.choice(DECOYS)
        return "decoy", exe, argv
    exe, argv = rng.choice(ORDINARY)
    return "plain", exe, argv


def _user(rng: random.Random) -> tuple[str, int]:
    return rng.choice(RARE_USERS) if rng.random() < 0.002 else rng.choice(USERS)


def _hexed(text: str) -> str:
    return text.encode().hex().upper()


def _q(value: str) -> str:
    """An untrusted string as the kernel logs it: quoted, or hex when it needs escaping."""
    if any(c in value for c in ' "\\') or any(ord(c) < 0x21 or ord(c) > 0x7E for c in value):
        return _hexed(value)
    return f'"{value}"'


def write_auditd(
    path: Path,
    events: int,
    *,
    seed: int = 10,
    hosts: int = 40,
    eoe: bool = False,
    interleave: float = 0.02,
    match_share: float = 0.02,
    decoy_share: float = 0.10,
) -> Written:
    rng = random.Random(seed)
    serial = {f"host-{i:03d}": rng.randrange(1000, 900_000) for i in range(hosts)}
    names = list(serial)
    step = SPAN / max(1, events)
    t = float(START)
    held: list[str] = []  # a record written after the next event's records
    matching = decoys = lines = size = 0
    execs = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:

        def emit(recs: list[str]) -> None:
            nonlocal lines, size
            text = "".join(recs)
            out.write(text)
            lines += len(recs)
            size += len(text.encode())

        while execs < events:
            t += rng.expovariate(1.0 / step)
            node = rng.choice(names)
            serial[node] += rng.randrange(1, 4)
            stamp = f"audit({int(t)}.{int(t * 1000) % 1000:03d}:{serial[node]})"
            head = f"node={node} type="
            user, uid = _user(rng)
            kind = rng.random()
            recs: list[str]
            if kind < 0.12:  # a single-record PAM message of sshd or sudo
                rtype = rng.choice(("USER_ACCT", "CRED_ACQ", "USER_START", "CRED_DISP"))
                exe = rng.choice(("/usr/sbin/sshd", "/usr/bin/sudo"))
                recs = [
                    f"{head}{rtype} msg={stamp}: pid={rng.randrange(300, 60000)} uid=0 "
                    f"auid={uid} ses={rng.randrange(1, 900)} subj=unconfined "
                    f'msg=\'op=PAM:accounting grantors=pam_unix acct="{user}" exe="{exe}" '
                    f"hostname=10.0.0.{rng.randrange(2, 250)} addr=10.0.0.{rng.randrange(2, 250)} "
                    f'terminal=ssh res=success\'\x1dUID="root" AUID="{user}"\n'
                ]
            elif kind < 0.20:  # connect(2) by an ordinary process
                exe, argv = rng.choice(ORDINARY)
                pid = rng.randrange(300, 4_000_000)
                recs = [
                    f"{head}SYSCALL msg={stamp}: arch=c000003e syscall=42 success=no "
                    f"exit=-115 a0=3 a1=7ffd4c1e2a40 a2=10 a3=0 items=0 ppid={pid - 3} "
                    f"pid={pid} auid={uid} uid={uid} gid={uid} euid={uid} suid={uid} "
                    f"fsuid={uid} egid={uid} sgid={uid} fsgid={uid} tty=(none) ses=4294967295 "
                    f'comm="{argv[0][:15]}" exe="{exe}" subj=unconfined key="net_connect"'
                    f'\x1dARCH=x86_64 SYSCALL=connect AUID="{user}" UID="{user}" '
                    f'GID="{user}" EUID="{user}" SUID="{user}" FSUID="{user}" '
                    f'EGID="{user}" SGID="{user}" FSGID="{user}"\n',
                    f"{head}SOCKADDR msg={stamp}: saddr=020000357F0000350000000000000000"
                    f"\x1dSADDR={{ saddr_fam=inet laddr=127.0.0.53 lport=53 }}\n",
                    f"{head}PROCTITLE msg={stamp}: proctitle={_hexed(chr(0).join(argv))}\n",
                ]
            else:  # an exec
                execs += 1
                what, exe, argv = _pick(rng, match_share, decoy_share)
                matching += what == "match"
                decoys += what == "decoy"
                pid = rng.randrange(300, 4_000_000)
                comm = exe.rsplit("/", 1)[1][:15]
                if what == "decoy" and rng.random() < 0.3:
                    comm = rng.choice(("ss", "sss_cache", "netstat"))  # comm is not process.name
                tty = rng.choice(("pts0", "pts1", "(none)"))
                ses = rng.randrange(1, 900) if tty != "(none)" else 4294967295
                cwd = "/root" if uid == 0 else f"/home/{user}"
                args = " ".join(f"a{i}={_q(a)}" for i, a in enumerate(argv))
                recs = [
                    f"{head}SYSCALL msg={stamp}: arch=c000003e syscall=59 success=yes exit=0 "
                    f"a0=55d0c8e0a0b0 a1=55d0c8e0a2f0 a2=55d0c8e09e20 a3=8 items=2 "
                    f"ppid={pid - rng.randrange(1, 50)} pid={pid} auid={uid} uid={uid} "
                    f"gid={uid} euid={uid} suid={uid} fsuid={uid} egid={uid} sgid={uid} "
                    f'fsgid={uid} tty={tty} ses={ses} comm="{comm}" exe="{exe}" '
                    f'subj=unconfined key="exec"\x1dARCH=x86_64 SYSCALL=execve '
                    f'AUID="{user}" UID="{user}" GID="{user}" EUID="{user}" SUID="{user}" '
                    f'FSUID="{user}" EGID="{user}" SGID="{user}" FSGID="{user}"\n',
                    f"{head}EXECVE msg={stamp}: argc={len(argv)} {args}\n",
                    f"{head}CWD msg={stamp}: cwd={_q(cwd)}\n",
                    f"{head}PATH msg={stamp}: item=0 name={_q(exe)} inode={rng.randrange(10**5, 10**7)} "
                    f"dev=fd:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 "
                    f'cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID="root" OGID="root"\n',
                    f'{head}PATH msg={stamp}: item=1 name="/lib64/ld-linux-x86-64.so.2" '
                    f"inode=1835 dev=fd:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL "
                    f'cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID="root" OGID="root"\n',
                    f"{head}PROCTITLE msg={stamp}: proctitle={_hexed(chr(0).join(argv))}\n",
                ]
            if eoe and len(recs) > 1:
                recs.append(f"{head}EOE msg={stamp}: \n")
            late: list[str] = []
            if len(recs) > 1 and rng.random() < interleave:
                late = [recs.pop()]  # written after the next event's records
            emit(recs)
            if held:
                emit(held)
            held = late
        if held:
            emit(held)
    return Written(str(path), execs, matching, decoys, lines, size)


def _ecs_doc(
    rng: random.Random, t: float, kind: str, exe: str, argv: list[str]
) -> dict[str, object]:
    user, uid = _user(rng)
    host = f"host-{rng.randrange(40):03d}"
    pid = rng.randrange(300, 4_000_000)
    parent_exe, parent_argv = ("/usr/bin/bash", ["bash"])
    if kind == "decoy" and rng.random() < 0.3:
        parent_exe, parent_argv = rng.choice(DISCOVERY)  # a child of ss: "ss" in parent.name
    seconds = int(t)
    ts = _iso(t)
    name = exe.rsplit("/", 1)[1]
    event_type, action = rng.choice(
        ((["start"], "exec"),) * 5 + ((["end"], "end"), (["start"], "fork"))
    )
    if kind == "match_end":
        event_type, action = ["end"], "end"
    return {
        "@timestamp": ts,
        "agent": {
            "id": f"8a4f{seconds % 9973:04d}-9b1c-4f0e-a6a1-{host}",
            "type": "endpoint",
            "version": "8.15.0",
        },
        "process": {
            "Ext": {"ancestry": [f"ZmEx{rng.randrange(10**9)}", f"ZmEx{rng.randrange(10**9)}"]},
            "args": argv,
            "args_count": len(argv),
            "command_line": " ".join(argv),
            "entity_id": f"Zm{rng.randrange(10**15):015d}",
            "executable": exe,
            "hash": {"sha256": f"{rng.getrandbits(256):064x}"},
            "name": name,
            "parent": {
                "args": parent_argv,
                "args_count": len(parent_argv),
                "command_line": " ".join(parent_argv),
                "entity_id": f"Zm{rng.randrange(10**15):015d}",
                "executable": parent_exe,
                "name": parent_exe.rsplit("/", 1)[1],
                "pid": pid - 7,
            },
            "pid": pid,
            "working_directory": "/root" if uid == 0 else f"/home/{user}",
            "interactive": rng.random() < 0.3,
        },
        "user": {"id": str(uid), "name": user, "group": {"id": str(uid), "name": user}},
        "host": {
            "architecture": "x86_64",
            "hostname": host,
            "id": f"{rng.getrandbits(128):032x}",
            "ip": [f"10.0.{rng.randrange(256)}.{rng.randrange(256)}"],
            "mac": ["52-54-00-12-34-56"],
            "name": host,
            "os": {
                "Ext": {"variant": "Ubuntu"},
                "family": "ubuntu",
                "full": "Ubuntu 22.04.4",
                "kernel": "5.15.0-105-generic #115-Ubuntu SMP",
                "name": "Linux",
                "platform": "ubuntu",
                "type": "linux",
                "version": "22.04.4",
            },
        },
        "event": {
            "action": action,
            "agent_id_status": "verified",
            "category": ["process"],
            "created": ts,
            "dataset": "endpoint.events.process",
            "id": f"N{rng.getrandbits(64):016x}",
            "ingested": ts,
            "kind": "event",
            "module": "endpoint",
            "outcome": "unknown",
            "sequence": rng.randrange(10**6),
            "type": event_type,
        },
        "ecs": {"version": "8.10.0"},
        "data_stream": {
            "dataset": "endpoint.events.process",
            "namespace": "default",
            "type": "logs",
        },
        "elastic": {"agent": {"id": f"8a4f{seconds % 9973:04d}"}},
    }


def _iso(t: float) -> str:
    import time as _time

    whole = int(t)
    return (
        _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(whole)) + f".{int(t * 1000) % 1000:03d}Z"
    )


def _shuffled(rng: random.Random, doc: dict[str, object]) -> dict[str, object]:
    """The same document with its keys (and those of nested objects) in a varied order."""
    items = list(doc.items())
    rng.shuffle(items)
    return {k: _shuffled(rng, v) if isinstance(v, dict) else v for k, v in items}


def write_ecs(
    path: Path,
    events: int,
    *,
    seed: int = 10,
    match_share: float = 0.02,
    decoy_share: float = 0.10,
) -> Written:
    rng = random.Random(seed)
    step = SPAN / max(1, events)
    t = float(START)
    matching = decoys = size = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for _ in range(events):
            t += rng.expovariate(1.0 / step)
            kind, exe, argv = _pick(rng, match_share, decoy_share)
            doc = _ecs_doc(rng, t, kind, exe, argv)
            ev = doc["event"]
            assert isinstance(ev, dict)
            if kind == "match" and ev["type"] == ["start"]:
                matching += 1
            elif kind != "plain":
                decoys += 1  # decoys, and the end events of discovery commands
            if rng.random() < 0.5:
                doc = _shuffled(rng, doc)
            line = json.dumps(doc, separators=(",", ":")) + "\n"
            out.write(line)
            size += len(line.encode())
    return Written(str(path), events, matching, decoys, events, size)


def _laurel_ids(user: str, uid: int) -> dict[str, object]:
    ids: dict[str, object] = {}
    for key in ("auid", "uid", "gid", "euid", "suid", "fsuid", "egid", "sgid", "fsgid"):
        ids[key] = uid
    return ids


def write_laurel(
    path: Path,
    events: int,
    *,
    seed: int = 10,
    hosts: int = 40,
    match_share: float = 0.02,
    decoy_share: float = 0.10,
) -> Written:
    """Laurel's JSON lines (see the module docstring); ``events`` counts the exec events."""
    rng = random.Random(seed)
    serial = {f"host-{i:03d}": rng.randrange(1000, 900_000) for i in range(hosts)}
    names = list(serial)
    step = SPAN / max(1, events)
    t = float(START)
    matching = decoys = lines = size = execs = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        while execs < events:
            t += rng.expovariate(1.0 / step)
            node = rng.choice(names)
            serial[node] += rng.randrange(1, 4)
            ident = f"{int(t)}.{int(t * 1000) % 1000:03d}:{serial[node]}"
            user, uid = _user(rng)
            kind = rng.random()
            doc: dict[str, object] = {"ID": ident, "NODE": node}
            if kind < 0.12:  # a PAM message of sshd or sudo
                rtype = rng.choice(("USER_ACCT", "CRED_ACQ", "USER_START", "CRED_DISP"))
                exe = rng.choice(("/usr/sbin/sshd", "/usr/bin/sudo"))
                doc[rtype] = {
                    "pid": rng.randrange(300, 60000),
                    "uid": 0,
                    "auid": uid,
                    "ses": rng.randrange(1, 900),
                    "subj": "unconfined",
                    "msg": {
                        "op": "PAM:accounting",
                        "grantors": "pam_unix",
                        "acct": user,
                        "exe": exe,
                        "hostname": f"10.0.0.{rng.randrange(2, 250)}",
                        "addr": f"10.0.0.{rng.randrange(2, 250)}",
                        "terminal": "ssh",
                        "res": "success",
                    },
                    "UID": "root",
                    "AUID": user,
                }
            else:
                is_exec = kind >= 0.20
                if is_exec:
                    execs += 1
                    what, exe, argv = _pick(rng, match_share, decoy_share)
                    matching += what == "match"
                    decoys += what == "decoy"
                else:  # connect(2) by an ordinary process
                    what = "plain"
                    exe, argv = rng.choice(ORDINARY)
                pid = rng.randrange(300, 4_000_000)
                comm = exe.rsplit("/", 1)[1][:15]
                if what == "decoy" and rng.random() < 0.3:
                    comm = rng.choice(("ss", "sss_cache", "netstat"))  # comm is not process.name
                parent_exe = "/usr/bin/bash"
                if what == "decoy" and rng.random() < 0.2:
                    parent_exe = rng.choice(DISCOVERY)[0]  # a child of ss
                tty = rng.choice(("pts0", "pts1", "(none)"))
                sysc: dict[str, object] = {
                    "arch": "0xc000003e",
                    "syscall": 59 if is_exec else 42,
                    "success": "yes" if is_exec else "no",
                    "exit": 0 if is_exec else -115,
                    "items": 2 if is_exec else 0,
                    "ppid": pid - rng.randrange(1, 50),
                    "pid": pid,
                    **_laurel_ids(user, uid),
                    "tty": tty,
                    "ses": rng.randrange(1, 900) if tty != "(none)" else 4294967295,
                    "comm": comm,
                    "exe": exe,
                    "subj": "unconfined",
                    "key": "exec" if is_exec else "net_connect",
                    "ARCH": "x86_64",
                    "SYSCALL": "execve" if is_exec else "connect",
                }
                for key in ("AUID", "UID", "GID", "EUID", "SUID", "FSUID", "EGID", "SGID", "FSGID"):
                    sysc[key] = user
                sysc["PPID"] = {
                    "EVENT_ID": f"{int(t) - rng.randrange(1, 9000)}.{rng.randrange(1000):03d}:"
                    f"{serial[node] - rng.randrange(1, 5000)}",
                    "comm": parent_exe.rsplit("/", 1)[1],
                    "exe": parent_exe,
                    "ppid": pid - 60,
                }
                doc["SYSCALL"] = sysc
                if is_exec:
                    cwd = "/root" if uid == 0 else f"/home/{user}"
                    doc["EXECVE"] = {"argc": len(argv), "ARGV": argv}
                    doc["CWD"] = {"cwd": cwd}
                    doc["PATH"] = [
                        {"item": 0, "name": exe, "inode": rng.randrange(10**5, 10**7),
                         "dev": "fd:00", "mode": "0o100755", "ouid": 0, "ogid": 0,
                         "rdev": "00:00", "nametype": "NORMAL", "cap_fp": "0x0",
                         "cap_fi": "0x0", "cap_fe": 0, "cap_fver": "0x0",
                         "OUID": "root", "OGID": "root"},
                        {"item": 1, "name": "/lib64/ld-linux-x86-64.so.2", "inode": 1835,
                         "dev": "fd:00", "mode": "0o100755", "ouid": 0, "ogid": 0,
                         "rdev": "00:00", "nametype": "NORMAL", "cap_fp": "0x0",
                         "cap_fi": "0x0", "cap_fe": 0, "cap_fver": "0x0",
                         "OUID": "root", "OGID": "root"},
                    ]  # fmt: skip
                else:
                    doc["SOCKADDR"] = {
                        "saddr": {"saddr_fam": "inet", "laddr": "127.0.0.53", "lport": 53}
                    }
                doc["PROCTITLE"] = {"ARGV": argv}
            line = json.dumps(doc, separators=(",", ":")) + "\n"
            out.write(line)
            lines += 1
            size += len(line.encode())
    return Written(str(path), execs, matching, decoys, lines, size)


_SYSLOG_OTHERS = (
    "systemd[1]: Started Session {n} of User {user}.",
    "sshd[{pid}]: Accepted publickey for {user} from 10.0.0.{ip} port 52144 ssh2",
    "CRON[{pid}]: (root) CMD (run-parts /etc/cron.hourly)",
    'kernel: [{pid}.{n}] audit: type=1400 apparmor="STATUS" operation="profile_load"',
    "systemd-logind[612]: New session {n} of user {user}.",
)


def _sysmon_event(
    rng: random.Random, t: float, host: str, exe: str, argv: list[str], user: str, parent: str
) -> str:
    pid = rng.randrange(300, 4_000_000)
    utc = _iso(t).replace("T", " ").rstrip("Z")
    guid = f"{{{rng.getrandbits(32):08x}-5b20-69a5-0000-{rng.getrandbits(48):012x}}}"
    data = (
        ("RuleName", "-"), ("UtcTime", utc), ("ProcessGuid", guid), ("ProcessId", str(pid)),
        ("Image", exe), ("FileVersion", "-"), ("Description", "-"), ("Product", "-"),
        ("Company", "-"), ("OriginalFileName", "-"), ("CommandLine", " ".join(argv)),
        ("CurrentDirectory", "/root" if user == "root" else f"/home/{user}"), ("User", user),
        ("LogonGuid", f"{{{rng.getrandbits(32):08x}-0000-0000-03e9-000000000000}}"),
        ("LogonId", str(rng.choice((0, 1000, 1001)))), ("TerminalSessionId", str(rng.randrange(1, 9))),
        ("IntegrityLevel", "no level"), ("Hashes", "-"),
        ("ParentProcessGuid", f"{{{rng.getrandbits(32):08x}-5b20-69a5-0000-000000002001}}"),
        ("ParentProcessId", str(pid - 9)), ("ParentImage", parent),
        ("ParentCommandLine", parent.rsplit("/", 1)[1]), ("ParentUser", user),
    )  # fmt: skip
    fields = "".join(
        f'<Data Name="{k}">{v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")}</Data>'
        for k, v in data
    )
    return (
        '<Event><System><Provider Name="Linux-Sysmon" Guid="{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"/>'
        "<EventID>1</EventID><Version>5</Version><Level>4</Level><Task>1</Task><Opcode>0</Opcode>"
        f'<Keywords>0x8000000000000000</Keywords><TimeCreated SystemTime="{_iso(t)[:-1]}000000Z"/>'
        f"<EventRecordID>{rng.randrange(10**7)}</EventRecordID><Correlation/>"
        '<Execution ProcessID="1020" ThreadID="1020"/><Channel>Linux-Sysmon/Operational</Channel>'
        f'<Computer>{host}</Computer><Security UserId="0"/></System><EventData>{fields}'
        "</EventData></Event>"
    )


def write_sysmon(
    path: Path,
    events: int,
    *,
    seed: int = 10,
    match_share: float = 0.02,
    decoy_share: float = 0.10,
    others: float = 0.3,
) -> Written:
    """Sysmon for Linux in syslog (see the module docstring); ``events`` counts its events.
    After each event another program's line follows with probability ``others``, and another
    after that with the same probability (0.3: 0.43 of them an event; 0.9: 9)."""
    import time as _time

    rng = random.Random(seed)
    step = SPAN / max(1, events)
    t = float(START)
    matching = decoys = lines = size = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for _ in range(events):
            t += rng.expovariate(1.0 / step)
            host = f"host-{rng.randrange(40):03d}"
            prefix = _time.strftime("%b %e %H:%M:%S", _time.gmtime(int(t))) + f" {host} "
            user, _uid = _user(rng)
            while rng.random() < others:  # other programs' lines between Sysmon's
                other = rng.choice(_SYSLOG_OTHERS).format(
                    n=rng.randrange(1, 999), user=user, pid=rng.randrange(300, 99999),
                    ip=rng.randrange(2, 250),
                )  # fmt: skip
                line = prefix + other + "\n"
                out.write(line)
                lines += 1
                size += len(line.encode())
            kind, exe, argv = _pick(rng, match_share, decoy_share)
            matching += kind == "match"
            decoys += kind == "decoy"
            parent = "/usr/bin/bash"
            if kind == "decoy" and rng.random() < 0.2:
                parent = rng.choice(DISCOVERY)[0]  # a child of ss
            line = prefix + "sysmon: " + _sysmon_event(rng, t, host, exe, argv, user, parent) + "\n"
            out.write(line)
            lines += 1
            size += len(line.encode())
    return Written(str(path), events, matching, decoys, lines, size)
