"""osquery results logs: rows of ``process_events`` (or ``bpf_process_events``) as process starts.

``--input-format osquery`` (``auto`` recognises lines with ``hostIdentifier`` and ``columns``,
``diffResults`` or ``snapshot``). Every results-log layout osquery writes is read: one row per
line (``"columns"``, the default event format), batches (``"diffResults": {"added": [...]}``)
and snapshots (``"snapshot": [...]``). A row is a process start when it has ``path`` and
``pid`` and its ``syscall`` (when the table has one) is an exec; ``removed`` rows are not.

Mapping: ``process.executable`` = ``path`` and ``process.name`` its basename,
``process.command_line`` = ``cmdline``, ``process.args`` = ``json_cmdline`` when the table has
it (``bpf_process_events``), else ``cmdline`` split on spaces (osquery joins argv with
spaces, so an argument that held a space is split: documented loss),
``process.working_directory`` = ``cwd`` (the quotes ``process_events`` leaves around it
removed), ``process.pid``, ``process.parent.pid`` (``parent``), ``user.id`` = ``uid``,
``user.audit.id`` = ``auid``, ``user.effective.id`` = ``euid``, ``group.id`` = ``gid``, named
with ``--passwd``/``--group`` (osquery writes ids only); ``@timestamp`` from the row's ``time``
(epoch seconds), else the line's ``unixTime``; ``host.name`` from ``hostIdentifier`` (or
``--host-name``); the query's ``name`` as ``osquery.name``.

:class:`SourceOptions` fields read: ``prefilter``, ``host_name``, ``passwd``, ``group``,
``max_line_bytes``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources.base import JsonObject, SourceOptions
from rarebird.sources.identity import resolved_name
from rarebird.sources.lines import LineError, LineSource, as_int, as_text, basename, json_object
from rarebird.sources.sniff import json_lines_score
from rarebird.timeutil import FIRST_EPOCH_S, LAST_EPOCH_S

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EXEC_SYSCALLS = frozenset({"execve", "execveat", "exec"})
_UNSET = frozenset({"4294967295", "-1"})


class OsquerySource(LineSource):
    """Process starts from an osquery results log."""

    format_name = "osquery"

    def parse_line(self, line: bytes, where: SourceLocation) -> list[ProcessEvent]:
        doc = json_object(line, "osquery")
        rows: list[Any]
        if isinstance(doc.get("columns"), dict):
            rows = [] if doc.get("action") == "removed" else [doc["columns"]]
        elif isinstance(doc.get("diffResults"), dict):
            rows = doc["diffResults"].get("added") or []
        elif isinstance(doc.get("snapshot"), list):
            rows = doc["snapshot"]
        else:
            raise LineError("osquery: no columns, diffResults or snapshot")
        events = []
        for row in rows:
            if not isinstance(row, dict):
                raise LineError("osquery: a row is not an object")
            event = self.row_event(doc, row, where)
            if event is not None:
                events.append(event)
        return events

    def row_event(
        self, doc: JsonObject, row: JsonObject, where: SourceLocation
    ) -> ProcessEvent | None:
        path = as_text(row.get("path"))
        pid = as_int(row.get("pid"))
        syscall = as_text(row.get("syscall"))
        if path is None or pid is None or (syscall is not None and syscall not in EXEC_SYSCALLS):
            return None
        when = as_int(row.get("time")) or as_int(doc.get("unixTime"))
        if when is None:
            raise LineError("osquery: no time")
        if not FIRST_EPOCH_S <= when < LAST_EPOCH_S:
            raise LineError("osquery: time out of range")
        users, groups = self.accounts.users, self.accounts.groups
        uid, euid, gid = as_text(row.get("uid")), as_text(row.get("euid")), as_text(row.get("gid"))
        auid = as_text(row.get("auid"))
        if auid in _UNSET:
            auid = None
        extra: dict[str, tuple[str, ...]] = {}
        name = as_text(doc.get("name"))
        if name is not None:
            extra["osquery.name"] = (name,)
        cmdline = as_text(row.get("cmdline"))
        cwd = as_text(row.get("cwd"))
        if cwd is not None and len(cwd) >= 2 and cwd[0] == cwd[-1] == '"':
            cwd = cwd[1:-1]
        return ProcessEvent(
            timestamp=_EPOCH + timedelta(seconds=when),
            event_kind="event",
            event_category=("process",),
            event_type=("start",),
            event_action="executed",
            event_module="osquery",
            user_id=uid,
            user_name=resolved_name(None, uid, users),
            user_audit_id=auid,
            user_audit_name=resolved_name(None, auid, users),
            user_effective_id=euid,
            user_effective_name=resolved_name(None, euid, users),
            group_id=gid,
            group_name=resolved_name(None, gid, groups),
            process_name=basename(path),
            process_executable=path,
            process_args=_args(row, cmdline),
            process_command_line=cmdline,
            process_pid=pid,
            process_parent_pid=as_int(row.get("parent")),
            process_working_directory=cwd,
            host_name=as_text(doc.get("hostIdentifier")) or self.options.host_name,
            host_os_type="linux",
            extra=extra,
            origin=where,
        )


def _args(row: JsonObject, cmdline: str | None) -> tuple[str, ...]:
    raw = row.get("json_cmdline")
    if isinstance(raw, str) and raw.startswith("["):
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            return tuple(str(a) for a in parsed)
    return tuple(cmdline.split(" ")) if cmdline else ()


def sniff_osquery(head: bytes) -> float:
    """Confidence that ``head`` starts an osquery results log."""
    return json_lines_score(head, "hostIdentifier", ("columns", "diffResults", "snapshot"))


def open_osquery(path: str, options: SourceOptions) -> OsquerySource:
    """The :class:`~rarebird.sources.base.SourceFactory` of the ``osquery`` format."""
    return OsquerySource(path, options)
