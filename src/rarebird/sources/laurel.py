"""Laurel JSON lines: one audit event per line, as Laurel (threathunters-io/laurel) writes it.

``--input-format laurel`` (``auto`` recognises lines with ``"ID"`` and ``"SYSCALL"``). Laurel
has already grouped the records and decoded the hex; an exec event maps as a raw auditd one
does (:mod:`rarebird.sources.auditd_events`): ``process.name`` is the basename of
``SYSCALL.exe``, ``process.args`` is ``EXECVE.ARGV``, ``process.title`` ``PROCTITLE.ARGV``,
``process.working_directory`` ``CWD.cwd``; ``user.*`` / ``user.audit.*`` / ``user.effective.*``
and ``group.*`` from the ids, named by Laurel's translated ``UID``/``AUID``... fields when
present, else by ``--passwd``/``--group``; ``host.name`` from ``NODE`` (or ``--host-name``);
``process.parent.executable``/``name`` from Laurel's parent information (``SYSCALL.PPID`` or
``PARENT_INFO``); ``tags`` from the rule key.

This module also holds :class:`LineSource`, the line-by-line reader the other JSON and syslog
formats (osquery, Sysmon for Linux) share: bad lines are counted with their file:line, and a
line that cannot hold a wanted ``process.name`` is skipped before it is decoded.

:class:`SourceOptions` fields read: ``prefilter``, ``host_name``, ``passwd``, ``group``,
``identity``, ``max_line_bytes``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from rarebird.errors import ReadStats
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources.auditd_events import ARCHES, EXEC_SYSCALLS, add_group_fields
from rarebird.sources.auditd_scan import prefilter_holds
from rarebird.sources.base import Prefilter, SourceOptions
from rarebird.sources.identity import (
    Accounts,
    Person,
    check_identity,
    choose_identity,
    load_accounts,
    resolved_name,
)
from rarebird.sources.inputs import open_binary, register_format
from rarebird.sources.sniff import first_lines

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ID = re.compile(r"^(\d+)\.(\d+):(\d+)$")
#: Bytes a serializer may use to spell a character some other way: lines holding them are
#: always decoded.
JSON_ESCAPES = (b"\\u",)
XML_ESCAPES = (b"&#",)


class LineError(ValueError):
    """A line that is not an event of the format; the message says why."""


def name_needles(
    prefilter: Prefilter, quote: bytes, escapes: tuple[bytes, ...]
) -> tuple[bytes, ...] | None:
    """Byte strings one of which a line must hold to name a wanted process.

    The process name is the last path component of a string value, so the line holds
    ``/NAME`` or the value is ``NAME``, followed by the closing ``quote`` (``"`` in JSON, ``<``
    in XML text), each wanted name as itself. A line holding one of ``escapes`` may spell the
    name otherwise and is always kept. None (keep every line) without a ``process.name`` (or
    ``process.executable``) condition, or when a value has characters a serializer escapes.

    >>> from rarebird.sources.base import FieldCondition
    >>> name_needles(Prefilter((FieldCondition("process.name", frozenset({"ss"})),)), b'"', (b"\\\\u",))
    (b'/ss"', b'"ss"', b'\\\\u')
    """
    cond = prefilter.condition_for("process.name")
    if cond is not None:
        names = set(cond.values)
    else:
        cond = prefilter.condition_for("process.executable")
        if cond is None:
            return None
        names = {v.rsplit("/", 1)[-1] for v in cond.values}
    opening = b'"' if quote == b'"' else b">"
    needles: list[bytes] = []
    for name in sorted(names):
        if "/" in name:
            continue
        raw = name.encode("utf-8")
        if not name or any(c < 0x20 or c in b"\"\\<>&'" for c in raw) or "\ufffd" in name:
            return None
        needles += [b"/" + raw + quote, opening + raw + quote]
    return (*needles, *escapes)


class LineSource:
    """Events from a line-oriented input; subclasses map one line to zero or more events."""

    format_name = "lines"
    quote = b'"'
    escapes: tuple[bytes, ...] = JSON_ESCAPES

    def __init__(self, path: str, options: SourceOptions) -> None:
        self._path = path
        self._options = options
        self._stats = ReadStats()
        check_identity(options.identity)
        self.accounts = load_accounts(options.passwd, options.group)
        self._needles = name_needles(options.prefilter, self.quote, self.escapes)

    @property
    def name(self) -> str:
        return self._path

    @property
    def stats(self) -> ReadStats:
        return self._stats

    @property
    def options(self) -> SourceOptions:
        return self._options

    def parse_line(self, line: bytes, where: SourceLocation) -> list[ProcessEvent]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[ProcessEvent]:
        stats, needles, limit = self._stats, self._needles, self._options.max_line_bytes
        prefilter = self._options.prefilter
        with open_binary(self._path) as stream:
            line_no = 0
            while True:
                line = stream.readline(limit + 1)
                if not line:
                    break
                line_no += 1
                stats.bytes += len(line)
                if len(line) > limit and not line.endswith(b"\n"):
                    where = SourceLocation(self._path, line_no)
                    stats.skip(where, "line too long", f"> {limit} bytes")
                    while line and not line.endswith(b"\n"):  # the rest of that line
                        line = stream.readline(limit + 1)
                        stats.bytes += len(line)
                    continue
                line = line.strip()
                if not line:
                    continue
                if needles is not None and not any(n in line for n in needles):
                    stats.prefiltered += 1
                    continue
                where = SourceLocation(self._path, line_no)
                try:
                    events = self.parse_line(line, where)
                except (LineError, ValueError, TypeError, KeyError, AttributeError) as exc:
                    reason = (
                        exc.args[0]
                        if isinstance(exc, LineError)
                        else f"{self.format_name}: malformed"
                    )
                    stats.skip(where, reason, line[:80].decode("utf-8", "replace"))
                    continue
                for event in events:
                    if prefilter_holds(event, prefilter):
                        stats.events += 1
                        yield event
            stats.lines += line_no


def json_object(line: bytes, fmt: str) -> dict[str, Any]:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise LineError(f"{fmt}: not JSON") from exc
    if not isinstance(obj, dict):
        raise LineError(f"{fmt}: not a JSON object")
    return obj


def as_text(value: Any) -> str | None:
    """A JSON scalar as keyword text; None for null / empty."""
    if value is None or value == "" or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def as_int(value: Any) -> int | None:
    text = as_text(value)
    if text is None:
        return None
    try:
        return int(text, 0) if text.startswith("0x") else int(text)
    except ValueError:
        return None


def basename(path: str | None) -> str | None:
    return path.rsplit("/", 1)[-1] if path is not None else None


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
    doc: dict[str, Any], accounts: Accounts, options: SourceOptions, where: SourceLocation | None
) -> ProcessEvent | None:
    """The ProcessEvent of one Laurel event, or None when it is not an exec."""
    m = _ID.match(str(doc["ID"]))
    if m is None:
        raise LineError("laurel: ID is not SECONDS.MILLIS:SERIAL")
    sysc = doc.get("SYSCALL")
    if not isinstance(sysc, dict):
        return None
    syscall = _syscall_name(sysc)
    if syscall not in EXEC_SYSCALLS:
        return None
    users, groups = accounts.users, accounts.groups
    uid, auid, euid = _id(sysc.get("uid")), _id(sysc.get("auid")), _id(sysc.get("euid"))
    gid, egid = _id(sysc.get("gid")), _id(sysc.get("egid"))
    if auid in ("4294967295", "-1", "unset"):
        auid = None
    person = Person(
        user_id=uid,
        user_name=resolved_name(as_text(sysc.get("UID")), uid, users),
        audit_id=auid,
        audit_name=resolved_name(as_text(sysc.get("AUID")), auid, users),
    )
    user_id, user_name, extra = choose_identity(person, options.identity)
    exe = as_text(sysc.get("exe"))
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
    argv: list[Any] = _member(doc, "EXECVE", "ARGV") or []
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
        user_id=user_id,
        user_name=user_name,
        user_audit_id=auid,
        user_audit_name=person.audit_name,
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


def _id(value: Any) -> str | None:
    return as_text(value)


def _member(doc: dict[str, Any], record: str, key: str) -> Any:
    """``doc[record][key]`` when ``doc[record]`` is an object, else None."""
    rec = doc.get(record)
    return rec.get(key) if isinstance(rec, dict) else None


def _syscall_name(sysc: dict[str, Any]) -> str | None:
    number = as_int(sysc.get("syscall"))
    arch_text = as_text(sysc.get("arch"))
    if number is not None and arch_text is not None:
        arch = ARCHES.get(arch_text.lower().removeprefix("0x").encode())
        if arch is not None and number in arch[1]:
            return arch[1][number]
    return as_text(sysc.get("SYSCALL")) or (str(number) if number is not None else None)


def sniff_laurel(head: bytes) -> float:
    """Confidence that ``head`` starts a Laurel log: JSON objects with ``ID`` and records."""
    lines = first_lines(head, 5)
    hits = 0
    for line in lines:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if (
            isinstance(obj, dict)
            and "ID" in obj
            and any(k in obj for k in ("SYSCALL", "EXECVE", "PROCTITLE", "NODE"))
        ):
            hits += 1
    return 0.95 * hits / len(lines) if lines else 0.0


def open_laurel(path: str, options: SourceOptions) -> LaurelSource:
    """The :class:`~rarebird.sources.base.SourceFactory` of the ``laurel`` format."""
    return LaurelSource(path, options)


register_format("laurel", open_laurel, sniff_laurel)
