"""Laurel JSON lines: one audit event per line, as Laurel (threathunters-io/laurel) writes it.

``--input-format laurel`` (``auto`` recognises lines with ``"ID"`` and ``"SYSCALL"``). Laurel
has already grouped the records and decoded the hex; an exec event maps as a raw auditd one
does (:mod:`rarebird.sources.auditd.events`): ``process.name`` is the basename of
``SYSCALL.exe``, ``process.args`` is ``EXECVE.ARGV``, ``process.title`` ``PROCTITLE.ARGV``,
``process.working_directory`` ``CWD.cwd``; ``user.*`` / ``user.audit.*`` / ``user.effective.*``
and ``group.*`` from the ids, named by Laurel's translated ``UID``/``AUID``... fields when
present, else by ``--passwd``/``--group``; ``host.name`` from ``NODE`` (or ``--host-name``);
``process.parent.executable``/``name`` from Laurel's parent information (``SYSCALL.PPID`` or
``PARENT_INFO``); ``tags`` from the rule key.

:class:`SourceOptions` fields read: ``prefilter``, ``host_name``, ``passwd``, ``group``,
``max_line_bytes`` (through :class:`~rarebird.sources.lines.LineSource`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources.auditd.events import ARCHES, EXEC_SYSCALLS, add_group_fields
from rarebird.sources.base import JsonObject, SourceOptions
from rarebird.sources.identity import Accounts, resolved_name
from rarebird.sources.lines import LineError, LineSource, as_int, as_text, basename, json_object
from rarebird.sources.sniff import json_lines_score
from rarebird.timeutil import LAST_EPOCH_S

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ID = re.compile(r"^(\d+)\.(\d+):(\d+)$")


class LaurelSource(LineSource):
    """Exec events from Laurel's JSON lines."""

    format_name = "laurel"

    def parse_line(self, line: bytes, where: SourceLocation) -> list[ProcessEvent]:
        doc = json_object(line, "laurel")
        if "ID" not in doc:
            raise LineError("laurel: no ID")
        event = laurel_event(doc, self.accounts, self.options, where)
        return [] if event is None else [event]


def laurel_event(
    doc: JsonObject, accounts: Accounts, options: SourceOptions, where: SourceLocation | None
) -> ProcessEvent | None:
    """The ProcessEvent of one Laurel event, or None when it is not an exec."""
    m = _ID.match(str(doc["ID"]))
    if m is None:
        raise LineError("laurel: ID is not SECONDS.MILLIS:SERIAL")
    if int(m.group(1)) + int(m.group(2)) // 1000 >= LAST_EPOCH_S:
        raise LineError("laurel: ID is not a time")
    sysc = doc.get("SYSCALL")
    if not isinstance(sysc, dict):
        return None
    syscall = _syscall_name(sysc)
    if syscall not in EXEC_SYSCALLS:
        return None
    exe = as_text(sysc.get("exe"))
    if not options.prefilter.admits("process.name", basename(exe)):
        return None  # the prefilter would drop the event: it is not built (a decoy of the search)
    users, groups = accounts.users, accounts.groups
    uid, auid, euid = _id(sysc.get("uid")), _id(sysc.get("auid")), _id(sysc.get("euid"))
    gid, egid = _id(sysc.get("gid")), _id(sysc.get("egid"))
    if auid in ("4294967295", "-1", "unset"):
        auid = None
    extra: dict[str, tuple[str, ...]] = {}
    success = as_text(sysc.get("success"))
    outcome = (
        "unknown" if success is None else ("success" if success in ("yes", "1") else "failure")
    )
    extra["auditd.sequence"] = (m.group(3),)
    extra["auditd.data.syscall"] = (syscall,)
    ses = as_text(sysc.get("ses"))
    if ses is not None and ses not in ("4294967295", "-1", "unset"):
        extra["auditd.session"] = (ses,)
    gname = resolved_name(as_text(sysc.get("GID")), gid, groups)
    egname = resolved_name(as_text(sysc.get("EGID")), egid, groups)
    add_group_fields(extra, gid, gname, egid, egname)
    parent = sysc.get("PPID") if isinstance(sysc.get("PPID"), dict) else doc.get("PARENT_INFO")
    parent_exe = as_text(parent.get("exe")) if isinstance(parent, dict) else None
    argv = _member(doc, "EXECVE", "ARGV")
    title = _member(doc, "PROCTITLE", "ARGV")
    cwd = _member(doc, "CWD", "cwd")
    key = sysc.get("key")
    keys: list[Any] = key if isinstance(key, list) else [key]
    tags = tuple(k for k in keys if isinstance(k, str) and k)
    return ProcessEvent(
        timestamp=_EPOCH + timedelta(seconds=int(m.group(1)), milliseconds=int(m.group(2))),
        event_kind="event",
        event_category=("process",),
        event_type=("start",),
        event_action="executed",
        event_outcome=outcome,
        event_module="auditd",
        user_id=uid,
        user_name=resolved_name(as_text(sysc.get("UID")), uid, users),
        user_audit_id=auid,
        user_audit_name=resolved_name(as_text(sysc.get("AUID")), auid, users),
        user_effective_id=euid,
        user_effective_name=resolved_name(as_text(sysc.get("EUID")), euid, users),
        group_id=gid,
        group_name=gname,
        process_name=basename(exe),
        process_executable=exe,
        process_args=tuple(str(a) for a in argv) if isinstance(argv, list) else (),
        process_title=" ".join(str(a) for a in title)
        if isinstance(title, list)
        else as_text(title),
        process_pid=as_int(sysc.get("pid")),
        process_parent_pid=as_int(sysc.get("ppid")),
        process_parent_executable=parent_exe,
        process_parent_name=basename(parent_exe),
        process_working_directory=as_text(cwd),
        host_name=as_text(doc.get("NODE")) or options.host_name,
        host_os_type="linux",
        tags=tags,
        extra=extra,
        origin=where,
    )


def _id(value: object) -> str | None:
    return as_text(value)


def _member(doc: JsonObject, record: str, key: str) -> object:
    """``doc[record][key]`` when ``doc[record]`` is an object, else None."""
    rec = doc.get(record)
    return rec.get(key) if isinstance(rec, dict) else None


def _syscall_name(sysc: JsonObject) -> str | None:
    number = as_int(sysc.get("syscall"))
    arch_text = as_text(sysc.get("arch"))
    if number is not None and arch_text is not None:
        arch = ARCHES.get(arch_text.lower().removeprefix("0x").encode())
        if arch is not None and number in arch[1]:
            return arch[1][number]
    return as_text(sysc.get("SYSCALL")) or (str(number) if number is not None else None)


def sniff_laurel(head: bytes) -> float:
    """Confidence that ``head`` starts a Laurel log: JSON objects with ``ID`` and records."""
    return json_lines_score(head, "ID", ("SYSCALL", "EXECVE", "PROCTITLE", "NODE"))


def open_laurel(path: str, options: SourceOptions) -> LaurelSource:
    """The :class:`~rarebird.sources.base.SourceFactory` of the ``laurel`` format."""
    return LaurelSource(path, options)
