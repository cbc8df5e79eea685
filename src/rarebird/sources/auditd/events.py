"""One audit event (the records sharing ``node`` + ``audit(…:serial)``) as a ProcessEvent.

The mapping follows Elastic's normaliser, go-libaudit's ``aucoalesce`` as Auditbeat and
Auditd Manager run it, for an ``execve``/``execveat`` syscall:

- ``event.category: [process]``, ``event.type: [start]``, ``event.action: executed``,
  ``event.kind: event``, ``event.outcome`` from ``success=`` (``success``/``failure``, or
  ``unknown`` without it), ``event.module: auditd``;
- ``process.executable`` = ``exe`` and ``process.name`` its basename (not ``comm``, which the
  kernel truncates to 15 bytes and which a process can change), ``process.pid``,
  ``process.parent.pid``, ``process.args`` from EXECVE (``argc``, ``a0..aN``, long arguments
  ``aN_len`` + ``aN[0]``, ``aN[1]``... over several records), ``process.title`` from PROCTITLE
  (NULs become spaces), ``process.working_directory`` from CWD;
- ``user.id``/``user.name`` from ``uid``, ``user.audit.*`` from ``auid``, ``user.effective.*``
  from ``euid``, ``group.*`` from ``gid`` (also as Auditbeat's ``user.group.*``),
  ``user.effective.group.*`` from ``egid``; names from the ENRICHED fields, else from the
  passwd/group files (:mod:`rarebird.sources.identity`). Unset ids (``4294967295``) are left out
  (the login identity, when asked for, is applied afterwards to every format alike);
- ``host.name`` from ``node=`` or the configured host, ``host.os.type: linux``;
- ``tags`` from the rule key (several keys are separated by 0x01; ``key="key=x"`` gives ``x``),
  ``auditd.session``, ``auditd.sequence``, ``auditd.result``, ``auditd.data.syscall``/``tty``.

Events of other syscalls and record types are not process starts and are not produced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rarebird.errors import ReadStats
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources.auditd.records import Header, decode, decode_bytes, fields, is_hex, text
from rarebird.sources.identity import Accounts, resolved_name

#: audit arch (as logged, lower-case hex) -> (arch name, number of execve, number of execveat)
_EXEC_NUMBERS: dict[bytes, tuple[str, int, int]] = {
    b"c000003e": ("x86_64", 59, 322),
    b"40000003": ("i386", 11, 358),
    b"c00000b7": ("aarch64", 221, 281),
    b"40000028": ("arm", 11, 387),
    b"80000015": ("ppc64", 11, 362),
    b"c0000015": ("ppc64le", 11, 362),
    b"14": ("ppc", 11, 362),
    b"80000016": ("s390x", 11, 354),
    b"16": ("s390", 11, 354),
    b"c00000f3": ("riscv64", 221, 281),
    b"400000f3": ("riscv32", 221, 281),
    b"c0000102": ("loongarch64", 221, 281),
}
#: audit arch -> {syscall number: name} for the exec syscalls (x32 numbers included)
ARCHES: dict[bytes, tuple[str, dict[int, str]]] = {
    arch: (name, {execve: "execve", execveat: "execveat"})
    for arch, (name, execve, execveat) in _EXEC_NUMBERS.items()
}
ARCHES[b"c000003e"][1].update({0x40000000 + 520: "execve", 0x40000000 + 545: "execveat"})
EXEC_SYSCALLS = frozenset({"execve", "execveat"})
#: The reason reported for an untrusted-string value that is neither quoted nor valid hex
#: (kept as written).
BAD_VALUE = "auditd: value neither quoted nor valid hex"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record line of an event: where it is, its header and the whole line."""

    line_no: int
    header: Header
    line: bytes


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What mapping an event needs besides its records."""

    path: str
    accounts: Accounts
    host_name: str | None
    #: report(line_no, reason, detail): an input problem found while decoding
    report: Callable[[int, str, str], None]


def build_context(
    path: str, accounts: Accounts, host_name: str | None, stats: ReadStats
) -> BuildContext:
    """A context that reports input problems to ``stats`` with ``path`` and the line."""

    def report(line: int, reason: str, detail: str) -> None:
        stats.skip(SourceLocation(path, line), reason, detail)

    return BuildContext(path=path, accounts=accounts, host_name=host_name, report=report)


def audit_time(header: Header) -> datetime:
    """``audit(SECONDS.MILLIS:…)`` as a UTC datetime (MILLIS is a count of milliseconds)."""
    # positional arguments: timedelta's keyword parsing costs twice the addition
    return _EPOCH + timedelta(0, header.seconds, 0, header.millis)


def syscall_name(sys_fields: dict[bytes, bytes]) -> str | None:
    """The syscall's name: from the number (the arch's table of exec syscalls), else the
    ENRICHED ``SYSCALL=`` field, else the number as written."""
    number = text(sys_fields.get(b"syscall"))
    arch = ARCHES.get(sys_fields.get(b"arch", b"").lower())
    if number is not None and arch is not None and number.isdigit():
        name = arch[1].get(int(number))
        if name is not None:
            return name
    return text(sys_fields.get(b"SYSCALL")) or number


def build_event(
    records: Sequence[RawRecord], ctx: BuildContext, *, exec_only: bool = True
) -> ProcessEvent | None:
    """The ProcessEvent of an exec event, or None when the event is not an exec.

    With ``exec_only=False`` any event with a SYSCALL record is mapped (the process and user
    fields the same way, no ``event.category/type/action``): the golden-file tests use it.
    """
    # the EXECVE records and the first record of each other type, in one pass
    execs: list[RawRecord] = []
    first: dict[bytes, RawRecord] = {}
    for rec in records:
        if rec.header.type == b"EXECVE":
            execs.append(rec)
        else:
            first.setdefault(rec.header.type, rec)
    syscall = first.get(b"SYSCALL")
    if syscall is None:
        return None
    f = fields(syscall.line[syscall.header.body :])
    sysname = syscall_name(f)
    arch = f.get(b"arch", b"").lower()
    is_exec = sysname in EXEC_SYSCALLS or (
        arch not in ARCHES and sysname is not None and bool(execs)
    )
    if not is_exec and exec_only:
        return None
    line = syscall.line_no

    def untrusted(key: bytes, rec_line: int, values: dict[bytes, bytes]) -> str | None:
        value, ok = decode(values.get(key))
        if not ok:
            ctx.report(rec_line, BAD_VALUE, f"{key.decode()}={value}")
        return value

    exe = untrusted(b"exe", line, f)
    name = exe.rsplit("/", 1)[-1] if exe is not None else None
    success = text(f.get(b"success"))
    if success is None:
        result = "unknown"
    elif (success := success.lower()) in ("yes", "1") or success.startswith("suc"):
        result = "success"
    else:
        result = "failure"

    users, groups = ctx.accounts.users, ctx.accounts.groups
    uid, auid, euid = _id(f, b"uid"), _id(f, b"auid"), _id(f, b"euid")
    gid, egid = _id(f, b"gid"), _id(f, b"egid")
    extra: dict[str, tuple[str, ...]] = {}
    euser = resolved_name(text(f.get(b"EUID")), euid, users)
    gname = resolved_name(text(f.get(b"GID")), gid, groups)
    egname = resolved_name(text(f.get(b"EGID")), egid, groups)

    ses = text(f.get(b"ses"))
    extra["auditd.sequence"] = (str(syscall.header.serial),)
    extra["auditd.result"] = ("success" if result == "success" else "fail",)
    extra["auditd.data.syscall"] = (sysname or "",)
    if ses is not None and ses not in ("4294967295", "-1", "unset"):
        extra["auditd.session"] = (ses,)
    tty = text(f.get(b"tty"))
    if tty is not None:
        extra["auditd.data.tty"] = (tty,)
    if arch in ARCHES:
        extra["auditd.data.arch"] = (ARCHES[arch][0],)
    add_group_fields(extra, gid, gname, egid, egname)

    node = syscall.header.node
    host = node.decode("utf-8", "replace") if node else ctx.host_name
    return ProcessEvent(
        timestamp=audit_time(syscall.header),
        event_kind="event",
        event_category=("process",) if is_exec else (),
        event_type=("start",) if is_exec else (),
        event_action="executed" if is_exec else None,
        event_outcome=result,
        event_module="auditd",
        user_id=uid,
        user_name=resolved_name(text(f.get(b"UID")), uid, users),
        user_audit_id=auid,
        user_audit_name=resolved_name(text(f.get(b"AUID")), auid, users),
        user_effective_id=euid,
        user_effective_name=euser,
        group_id=gid,
        group_name=gname,
        process_name=name,
        process_executable=exe,
        process_args=_args(execs, ctx),
        process_title=_untrusted(first.get(b"PROCTITLE"), b"proctitle", ctx),
        process_pid=_int(f.get(b"pid")),
        process_parent_pid=_int(f.get(b"ppid")),
        process_working_directory=_untrusted(first.get(b"CWD"), b"cwd", ctx),
        host_name=host,
        host_os_type="linux",
        tags=_tags(f.get(b"key")),
        extra=extra,
        origin=SourceLocation(ctx.path, line),
    )


def _id(values: dict[bytes, bytes], key: bytes) -> str | None:
    value = text(values.get(key))
    if value is None or (key == b"auid" and value in ("4294967295", "-1", "unset")):
        return None
    return value


def _int(value: bytes | None) -> int | None:
    raw = text(value)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def _tags(value: bytes | None) -> tuple[str, ...]:
    """The rule key(s): a hex-encoded key holds several, separated by 0x01.

    >>> _tags(b'"key=net"'), _tags(b"65786563013634626974"), _tags(b"(null)")
    (('net',), ('exec', '64bit'), ())
    """
    if value is not None and is_hex(value):
        raw = bytes.fromhex(value.decode("ascii")).decode("utf-8", "replace")
        return tuple(k for k in raw.split("\x01") if k)
    plain = text(value)
    if plain is None:
        return ()
    # key="key=net" -> net (the old "-F key=" spelling), as go-libaudit does
    return (plain.split("=", 1)[1] if "=" in plain else plain,)


def _untrusted(rec: RawRecord | None, key: bytes, ctx: BuildContext) -> str | None:
    """The untrusted-string field ``key`` of ``rec`` (CWD's ``cwd``, PROCTITLE's
    ``proctitle``), decoded; a value that cannot be is reported."""
    if rec is None:
        return None
    value, ok = decode(fields(rec.line[rec.header.body :]).get(key))
    if not ok:
        ctx.report(rec.line_no, BAD_VALUE, f"{key.decode()}={value}")
    return value


def _args(execs: Sequence[RawRecord], ctx: BuildContext) -> tuple[str, ...]:
    """``process.args`` from the EXECVE record(s), long arguments put back together."""
    if len(execs) == 1:
        # the usual case: one record, its fields as they are
        rec = execs[0]
        first_line = rec.line_no
        merged = fields(rec.line[rec.header.body :])
        where = dict.fromkeys(merged, rec.line_no)
    else:
        merged, where = {}, {}
        first_line = 0
        for rec in execs:
            first_line = first_line or rec.line_no
            for key, value in fields(rec.line[rec.header.body :]).items():
                merged.setdefault(key, value)
                where.setdefault(key, rec.line_no)
    if not merged:
        return ()
    argc_text = text(merged.get(b"argc"))
    argc = int(argc_text) if argc_text is not None and argc_text.isdigit() else None
    args: list[str] = []
    i = 0
    while argc is None or i < argc:
        key = b"a%d" % i
        if key in merged:
            raw, ok = decode_bytes(merged[key])
            if not ok:
                ctx.report(where[key], BAD_VALUE, f"a{i}={raw[:60]!r}")
            args.append(raw.split(b"\x00", 1)[0].decode("utf-8", "replace"))
        elif key + b"_len" in merged or key + b"[0]" in merged:
            args.append(_long_arg(merged, where, i, ctx))
        else:
            if argc is not None:
                ctx.report(first_line, "auditd: EXECVE argument missing", f"a{i} of argc={argc}")
            break
        i += 1
    return tuple(args)


def _long_arg(
    merged: dict[bytes, bytes], where: dict[bytes, int], i: int, ctx: BuildContext
) -> str:
    """``aN_len=LEN aN[0]=… aN[1]=…``: the chunks of one long argument, in order.

    The kernel's ``aN_len`` counts the characters it writes: two per byte when the argument is
    hex-encoded, one per byte when quoted. The check compares like with like, so a complete
    hex argument is not reported as incomplete.
    """
    parts: list[bytes] = []
    written = 0
    k = 0
    while (chunk := merged.get(b"a%d[%d]" % (i, k))) is not None:
        raw, ok = decode_bytes(chunk)
        if not ok:
            line = where.get(b"a%d[%d]" % (i, k), 0)
            ctx.report(line, BAD_VALUE, f"a{i}[{k}]")
        parts.append(raw)
        written += len(raw) if chunk[:1] == b'"' or not ok else len(chunk)
        k += 1
    joined = b"".join(parts)
    want = text(merged.get(b"a%d_len" % i))
    if want is not None and want.isdigit() and written != int(want):
        line = where.get(b"a%d_len" % i, 0)
        ctx.report(
            line, "auditd: EXECVE argument incomplete", f"a{i}: {written} of {want} characters"
        )
    if b"\x00" in joined:
        joined = joined.split(b"\x00", 1)[0]
    return joined.decode("utf-8", "replace")


def add_group_fields(
    extra: dict[str, tuple[str, ...]],
    gid: str | None,
    gname: str | None,
    egid: str | None,
    egname: str | None,
) -> None:
    """The process's real and effective group, as Auditbeat names them, where known."""
    for key, value in (
        ("user.group.id", gid),
        ("user.group.name", gname),
        ("user.effective.group.id", egid),
        ("user.effective.group.name", egname),
    ):
        if value is not None:
            extra[key] = (value,)
