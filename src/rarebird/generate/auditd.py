"""Generated process starts written as a raw Linux audit log, as auditd would have written it.

Each exec becomes the records the kernel emits for ``-a always,exit -S execve``: SYSCALL,
EXECVE (long arguments split over several records as ``aN_len`` + ``aN[k]``), CWD, two PATH
records (the program and the ELF interpreter), PROCTITLE and EOE. Untrusted strings are quoted,
or upper-case hex when they hold a space, a quote, a control byte or a byte above 0x7e, as the
kernel does. Optionally: the ENRICHED format (resolved names after a 0x1d byte, or glued to the
last raw field as when the separator is stripped on the way), ``node=`` prefixes, no EOE
records, and interleaved events.

The scenario comes from :mod:`rarebird.generate.scenarios` (:func:`generate_audit_log`); any iterable of
:class:`~rarebird.events.ProcessEvent` can be written with :func:`write_audit_log`. Process
*end* events have no audit record of their own and are skipped.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

from rarebird.events import ProcessEvent

ENRICHED_STYLES = ("separator", "glued", "space")
#: Longest EXECVE record body the kernel writes (MAX_EXECVE_AUDIT_LEN).
MAX_EXECVE_AUDIT_LEN = 7500
#: The kernel logs at most this many bytes of the command line as PROCTITLE.
MAX_PROCTITLE = 128

_NEEDS_HEX = re.compile(rb"[^\x21\x23-\x7e]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNSET = "4294967295"


@dataclass(frozen=True, slots=True)
class AuditLogOptions:
    """How to write the log."""

    #: None (RAW format), or the ENRICHED format with its resolved fields after a 0x1d byte
    #: ("separator"), glued to the last raw field ("glued") or after a space ("space")
    enriched: str | None = "separator"
    #: prefix every record with ``node=<host.name>``
    node: bool = False
    #: write EOE records (old kernels and some forwarders do not)
    eoe: bool = True
    #: fraction of events whose records are interleaved with the next event's
    interleave: float = 0.0
    #: the serial of the first event
    first_serial: int = 1000
    #: the rule key written as ``key=``; None writes ``key=(null)``
    key: str | None = "rarebird-exec"
    seed: int = 7

    def __post_init__(self) -> None:
        if self.enriched is not None and self.enriched not in ENRICHED_STYLES:
            raise ValueError(f"enriched must be None or one of {ENRICHED_STYLES}")


@dataclass(slots=True)
class WrittenLog:
    """What :func:`write_audit_log` wrote."""

    events: int = 0
    records: int = 0
    #: uid -> user name of every user seen (for a passwd file)
    users: dict[str, str] = field(default_factory=dict)
    #: gid -> group name
    groups: dict[str, str] = field(default_factory=dict)


def untrusted(value: str | bytes) -> bytes:
    """A value as the kernel logs an untrusted string: quoted, or upper-case hex.

    >>> untrusted("/usr/bin/ss"), untrusted("/opt/my tools/ss")
    (b'"/usr/bin/ss"', b'2F6F70742F6D7920746F6F6C732F7373')
    """
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    if _NEEDS_HEX.search(raw) or not raw:
        return raw.hex().upper().encode("ascii")
    return b'"' + raw + b'"'


class _Writer:
    def __init__(self, options: AuditLogOptions) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.serial = options.first_serial
        self.sep = {None: b"", "separator": b"\x1d", "glued": b"", "space": b" "}[options.enriched]

    def records(
        self, event: ProcessEvent, log: WrittenLog, when: datetime | None = None
    ) -> list[bytes]:
        opts = self.options
        serial = self.serial
        self.serial = (self.serial + 1) & 0xFFFFFFFF
        delta = (when or event.timestamp) - _EPOCH
        seconds = delta.days * 86400 + delta.seconds
        stamp = b"audit(%d.%03d:%d): " % (seconds, delta.microseconds // 1000, serial)
        prefix = b""
        if opts.node and event.host_name:
            prefix = b"node=" + event.host_name.encode() + b" "

        def head(rtype: bytes) -> bytes:
            return prefix + b"type=" + rtype + b" msg=" + stamp

        uid = event.user_id or "0"
        uname = event.user_name
        if uname is not None:
            log.users.setdefault(uid, uname)
        auid = event.user_audit_id
        if auid is None or auid == "unset":
            auid = uid if uid.isdigit() and int(uid) >= 1000 else _UNSET
        aname = event.user_audit_name or (log.users.get(auid) if auid != _UNSET else None)
        euid = event.user_effective_id or uid
        gid = event.group_id or uid
        gname = event.group_name or (uname if gid == uid else None)
        if gname is not None:
            log.groups.setdefault(gid, gname)
        exe = event.process_executable or f"/usr/bin/{event.process_name or 'unknown'}"
        args = event.process_args or (exe.rsplit("/", 1)[-1],)
        pid = event.process_pid or 1000 + self.rng.randrange(60000)
        ppid = event.process_parent_pid or max(2, pid - 1)
        cwd = event.process_working_directory or "/"
        interactive = auid != _UNSET
        tty = b"pts%d" % (int(auid) % 8) if interactive else b"(none)"
        ses = (b"%d" % (1 + int(auid) % 97)) if interactive else _UNSET.encode()
        comm = exe.rsplit("/", 1)[-1].encode("utf-8", "surrogateescape")[:15]
        key = untrusted(opts.key) if opts.key else b"(null)"
        a = self.rng.getrandbits
        syscall = head(b"SYSCALL") + (
            b"arch=c000003e syscall=59 success=yes exit=0 a0=%x a1=%x a2=%x a3=%x items=2 "
            b"ppid=%d pid=%d auid=%s uid=%s gid=%s euid=%s suid=%s fsuid=%s egid=%s sgid=%s "
            b"fsgid=%s tty=%s ses=%s comm=%s exe=%s subj=unconfined key=%s"
        ) % (
            0x550000000000 | a(40),
            0x550000000000 | a(40),
            0x550000000000 | a(40),
            a(16),
            ppid,
            pid,
            auid.encode(),
            uid.encode(),
            gid.encode(),
            euid.encode(),
            euid.encode(),
            euid.encode(),
            gid.encode(),
            gid.encode(),
            gid.encode(),
            tty,
            ses,
            untrusted(comm),
            untrusted(exe),
            key,
        )
        if opts.enriched is not None:

            def name(ident: str, table: dict[str, str]) -> bytes:
                if ident == _UNSET:
                    return b'"unset"'
                return b'"%s"' % table.get(ident, f"unknown({ident})").encode()

            users, groups = log.users, log.groups
            syscall += self.sep + (
                b"ARCH=x86_64 SYSCALL=execve AUID=%s UID=%s GID=%s EUID=%s SUID=%s FSUID=%s "
                b"EGID=%s SGID=%s FSGID=%s"
            ) % (
                b'"%s"' % aname.encode() if aname else name(auid, users),
                name(uid, users),
                name(gid, groups),
                name(euid, users),
                name(euid, users),
                name(euid, users),
                name(gid, groups),
                name(gid, groups),
                name(gid, groups),
            )
        out = [syscall]
        out.extend(head(b"EXECVE") + body for body in execve_bodies(args))
        out.append(head(b"CWD") + b"cwd=" + untrusted(cwd))
        tail = b""
        if opts.enriched is not None:
            tail = self.sep + b'OUID="root" OGID="root"'
        inode = 100000 + self.rng.randrange(900000)
        out.append(
            head(b"PATH")
            + b"item=0 name=%s inode=%d dev=08:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 "
            b"nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0%s"
            % (untrusted(exe), inode, tail)
        )
        out.append(
            head(b"PATH")
            + b'item=1 name="/lib64/ld-linux-x86-64.so.2" inode=%d dev=08:01 mode=0100755 '
            b"ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 "
            b"cap_frootid=0%s" % (inode + 7, tail)
        )
        title = b"\x00".join(x.encode("utf-8", "surrogateescape") for x in args)
        out.append(head(b"PROCTITLE") + b"proctitle=" + untrusted(title[:MAX_PROCTITLE]))
        if opts.eoe:
            out.append(head(b"EOE").rstrip(b" "))
        return out


def execve_bodies(args: tuple[str, ...]) -> list[bytes]:
    """The EXECVE record bodies for ``args``: arguments too long for one record are split.

    >>> execve_bodies(("ls", "-l"))
    [b'argc=2 a0="ls" a1="-l"']
    >>> [b[:24] for b in execve_bodies(("echo", "x" * 8000))]
    [b'argc=2 a0="echo" a1_len=', b'a1[0]="xxxxxxxxxxxxxxxxx', b'a1[1]="xxxxxxxxxxxxxxxxx']
    """
    bodies: list[bytes] = []
    current = b"argc=%d" % len(args)
    for i, arg in enumerate(args):
        raw = arg.encode("utf-8", "surrogateescape")
        encoded = untrusted(raw)
        if len(encoded) + 8 <= MAX_EXECVE_AUDIT_LEN:
            piece = [b"a%d=%s" % (i, encoded)]
        else:
            hexed = encoded[:1] != b'"'
            step = (MAX_EXECVE_AUDIT_LEN - 32) // (2 if hexed else 1)
            # aN_len counts written characters, as the kernel does: 2 per byte when hex.
            piece = [b"a%d_len=%d" % (i, len(raw) * (2 if hexed else 1))]
            for k, pos in enumerate(range(0, len(raw), step)):
                chunk = raw[pos : pos + step]
                value = chunk.hex().upper().encode() if hexed else b'"' + chunk + b'"'
                piece.append(b"a%d[%d]=%s" % (i, k, value))
        for item in piece:
            if len(current) + 1 + len(item) > MAX_EXECVE_AUDIT_LEN and current:
                bodies.append(current)
                current = item
            else:
                current = current + b" " + item if current else item
    bodies.append(current)
    return bodies


def audit_lines(
    events: Iterable[ProcessEvent],
    options: AuditLogOptions | None = None,
    log: WrittenLog | None = None,
) -> Iterator[bytes]:
    """The record lines (without newlines) for ``events``, in order; ends are skipped."""
    options = options or AuditLogOptions()
    log = log if log is not None else WrittenLog()
    writer = _Writer(options)
    held: list[bytes] | None = None
    held_time: datetime | None = None
    for event in events:
        if "start" not in event.event_type and event.event_type:
            continue
        # interleaved events are concurrent ones: the second takes the first one's time
        records = writer.records(event, log, held_time)
        log.events += 1
        log.records += len(records)
        if held is not None:
            yield from _mix(held, records)
            held, held_time = None, None
        elif options.interleave and writer.rng.random() < options.interleave:
            held, held_time = records, event.timestamp
        else:
            yield from records
    if held is not None:
        yield from held


def _mix(a: list[bytes], b: list[bytes]) -> Iterator[bytes]:
    for i in range(max(len(a), len(b))):
        if i < len(a):
            yield a[i]
        if i < len(b):
            yield b[i]


def write_audit_log(
    events: Iterable[ProcessEvent], out: BinaryIO, options: AuditLogOptions | None = None
) -> WrittenLog:
    """Write ``events`` as raw audit records to ``out``."""
    log = WrittenLog()
    batch: list[bytes] = []
    for line in audit_lines(events, options, log):
        batch.append(line)
        if len(batch) >= 4096:
            out.write(b"\n".join(batch) + b"\n")
            batch.clear()
    if batch:
        out.write(b"\n".join(batch) + b"\n")
    return log


def write_passwd(path: str, log: WrittenLog) -> None:
    """A passwd(5) file naming every user of the log (for reading it without ENRICHED names)."""
    with open(path, "w", encoding="utf-8") as f:
        for uid, name in sorted(log.users.items(), key=lambda kv: int(kv[0])):
            f.write(f"{name}:x:{uid}:{uid}::/home/{name}:/bin/sh\n")


def write_group(path: str, log: WrittenLog) -> None:
    """A group(5) file naming every group of the log."""
    with open(path, "w", encoding="utf-8") as f:
        for gid, name in sorted(log.groups.items(), key=lambda kv: int(kv[0])):
            f.write(f"{name}:x:{gid}:\n")


def generate_audit_log(
    path: str,
    *,
    exec_events: int | None = None,
    scenario: object | None = None,
    options: AuditLogOptions | None = None,
) -> WrittenLog:
    """Write the :mod:`rarebird.generate.scenarios` scenario as an audit log to ``path``.

    ``scenario`` is a :class:`rarebird.generate.options.GeneratorOptions` (default: the fleet demo);
    ``exec_events`` stops after that many exec events.
    """
    from itertools import islice

    from rarebird.generate.options import GeneratorOptions
    from rarebird.generate.scenarios import generate_events

    gen_options = scenario if isinstance(scenario, GeneratorOptions) else GeneratorOptions()
    starts: Iterable[ProcessEvent] = (
        e for e in generate_events(gen_options) if not e.event_type or "start" in e.event_type
    )
    if exec_events is not None:
        starts = islice(starts, exec_events)
    with open(path, "wb") as f:
        return write_audit_log(starts, f, options)


def tricky_audit_lines(
    start: datetime = datetime(2026, 1, 5, 12, tzinfo=UTC), first_serial: int = 900_000
) -> list[bytes]:
    """Hand-made records that trip naive prefilters and parsers, each case labelled.

    Discovery commands whose ``exe`` is hex-encoded (a space or a non-ASCII byte in the path),
    unquoted or relative; decoys whose ``comm`` or arguments say ``ss`` but whose ``exe`` does
    not (``sshd``, ``ssh``, a script run by python); a second SYSCALL record in one event; a
    stamp written inside another event's argument; records out of order, duplicated, without
    EOE, glued ENRICHED fields, ``node=`` prefixes, an ``exe=`` inside a user message.
    """
    out: list[bytes] = []
    serial = first_serial
    second = 0

    def event(
        exe: str,
        args: tuple[str, ...],
        *,
        user: tuple[str, str] = ("1001", "alice"),
        options: AuditLogOptions | None = None,
    ) -> list[bytes]:
        nonlocal serial, second
        second += 1
        ev = ProcessEvent(
            timestamp=start.replace(second=second % 60, minute=second // 60),
            user_id=user[0],
            user_name=user[1],
            host_name="tricky-01",
            process_executable=exe,
            process_args=args,
            process_working_directory="/home/alice",
        )
        opts = options or AuditLogOptions(first_serial=serial)
        opts = AuditLogOptions(
            enriched=opts.enriched,
            node=opts.node,
            eoe=opts.eoe,
            first_serial=serial,
            key=opts.key,
            seed=serial,
        )
        serial += 1
        return list(audit_lines([ev], opts))

    # discovery commands, spelled every way the kernel (or a mangled log) writes exe=
    out += event("/opt/net tools/ss", ("ss", "-t"))  # hex: a space in the path
    out += event("/opt/réseau/netstat", ("netstat", "-an"))  # hex: non-ASCII
    rec = event("/usr/sbin/route", ("route", "-n"))
    out += [rec[0].replace(b'exe="/usr/sbin/route"', b"exe=/usr/sbin/route"), *rec[1:]]  # unquoted
    rec = event("/usr/bin/ss", ("ss",))
    out += [rec[0].replace(b'exe="/usr/bin/ss"', b'exe="ss"'), *rec[1:]]  # relative
    rec = event("/usr/bin/ss", ("ss", "-s"))
    out += [rec[0].replace(b"success=yes exit=0", b"success=no exit=-13"), *rec[1:]]  # failed
    out += event(
        "/usr/sbin/showmount", ("showmount", "-e"), options=AuditLogOptions(enriched="glued")
    )
    out += event("/usr/bin/netstat", ("netstat",), options=AuditLogOptions(node=True))
    out += event("/usr/bin/ss", ("ss", "-l"), options=AuditLogOptions(eoe=False))
    # decoys
    out += event("/usr/sbin/sshd", ("/usr/sbin/sshd", "-D"), user=("0", "root"))
    out += event("/usr/bin/ssh", ("ssh", "ss"))
    out += event("/usr/sbin/sss_cache", ("sss_cache", "-E"), user=("0", "root"))
    out += event("/usr/local/bin/ss-helper", ("ss-helper",))
    out += event("/usr/sbin/ip", ("ip", "route", "show"))
    rec = event("/usr/bin/python3", ("/usr/local/bin/ss", "--fake"))
    out += [rec[0].replace(b'comm="python3"', b'comm="ss"'), *rec[1:]]  # comm is not the name
    rec = event("/usr/bin/ss", ("ss",))
    lower = b"2f7573722f62696e2f7373"  # lower-case hex is not decoded (go-libaudit neither)
    out += [rec[0].replace(b'exe="/usr/bin/ss"', b"exe=" + lower), *rec[1:]]
    rec = event("/usr/bin/ss", ("ss",))
    nul = b"/usr/bin/ss\x00".hex().upper().encode()  # a NUL after the name: not "ss"
    out += [rec[0].replace(b'exe="/usr/bin/ss"', b"exe=" + nul), *rec[1:]]
    # a connect() by ss: process.name ss but not a process start
    rec = event("/usr/bin/ss", ("ss",))
    out += [rec[0].replace(b"syscall=59", b"syscall=42").replace(b"=execve", b"=connect"), *rec[1:]]
    # two SYSCALL records in one event: the first one names the process (bash)
    bash = event("/usr/bin/bash", ("bash",))
    ss = event("/usr/bin/ss", ("ss",))
    stamp_b = bash[0].split(b" ")[1]
    stamp_s = ss[0].split(b" ")[1]
    out += [bash[0], ss[0].replace(stamp_s, stamp_b), *bash[1:]]
    # a record stamp written inside another event's argument
    victim = event("/usr/bin/netstat", ("netstat", "-r"))
    stamp_v = victim[0].split(b" ")[1][4:]
    out += event("/usr/bin/echo", ("echo", stamp_v.decode() + "type=EOE"))
    # records out of order (PATH and EXECVE before SYSCALL) and an event written twice
    out += [victim[3], victim[1], victim[0], *victim[2:3], *victim[4:]]
    twice = event("/usr/bin/ss", ("ss", "-x"))
    out += twice + twice
    # an exe= of ss inside a user message (not a SYSCALL record)
    out.append(
        b'type=USER_CMD msg=audit(%d.000:%d): pid=1 uid=0 auid=1001 ses=3 msg=\'cwd="/" '
        b'cmd=7373 exe="/usr/bin/ss" terminal=pts/0 res=success\''
        % (int(start.timestamp()) + 500, serial)
    )
    serial += 1
    # interleaved with each other
    a = event("/usr/bin/ss", ("ss", "-a"))
    b = event("/usr/sbin/route", ("route",))
    out += list(_mix(a, b))
    return out
