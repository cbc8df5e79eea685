"""Sysmon for Linux: event ID 1 (process create) from syslog, exported XML or JSON.

``--input-format sysmon`` (``auto`` recognises ``Linux-Sysmon`` events). Three layouts:

- syslog lines, each holding one ``<Event>...</Event>`` after the syslog prefix (what Sysmon
  for Linux writes, e.g. ``/var/log/syslog``);
- exported XML: ``<Event>`` elements, on one line or pretty-printed over several, inside
  ``<Events>`` or not;
- JSON lines: Elastic's ``winlog.event_data`` shape, a flat object of the event data fields,
  or an ``{"Event": {"System": ..., "EventData": {"Data": [...]}}}`` conversion of the XML.

Mapping: ``process.executable`` = ``Image`` and ``process.name`` its basename,
``process.command_line`` = ``CommandLine`` and ``process.args`` it split on white space
(Sysmon for Linux joins argv with spaces), ``process.working_directory`` =
``CurrentDirectory``, ``process.pid``, ``process.entity_id`` = ``ProcessGuid``,
``process.parent.*`` from ``ParentProcessId``/``ParentImage``/``ParentCommandLine``,
``user.name`` = ``User``, ``user.audit.id`` = ``LogonId`` (Sysmon for Linux writes the login
uid there; named with ``--passwd``), ``host.name`` = ``Computer``, ``@timestamp`` = ``UtcTime``.

Elastic's own ``sysmon_linux`` integration differs here, on purpose: its pipeline is the
Windows one, so it sets ``process.name`` to the syslog program (``sysmon``), takes the name
from ``Image`` only after a backslash, and sets ``user.name`` only from ``DOMAIN\\user``: on
Linux data the discovery job would see neither the command nor the user.

:class:`SourceOptions` fields read: ``prefilter``, ``host_name``, ``passwd``, ``group``,
``max_line_bytes``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources.base import JsonObject, SourceOptions
from rarebird.sources.identity import resolved_name
from rarebird.sources.inputs import open_binary
from rarebird.sources.lines import (
    JSON_ESCAPES,
    XML_ESCAPES,
    LineError,
    LineSource,
    as_int,
    as_text,
    basename,
    json_object,
    name_needles,
)

_EVENT_START = b"<Event"
_EVENT_END = b"</Event>"
_EVENT_RE = re.compile(rb"<Event[\s>].*?</Event>", re.S)
_DATA_RE = re.compile(rb'<Data Name="([^"]*)"\s*(?:/>|>(.*?)</Data>)', re.S)
_TAG_RE = {
    name: re.compile(rb"<%s>(.*?)</%s>" % (name, name), re.S) for name in (b"EventID", b"Computer")
}
_SYSTEM_TIME = re.compile(rb'<TimeCreated SystemTime="([^"]*)"')
_UNSET = frozenset({"4294967295", "-1"})


class SysmonSource(LineSource):
    """Process creations (event ID 1) of Sysmon for Linux."""

    format_name = "sysmon"
    quote = b"<"
    escapes = XML_ESCAPES

    def __init__(self, path: str, options: SourceOptions) -> None:
        super().__init__(path, options)
        self._json_needles = name_needles(options.prefilter, b'"', JSON_ESCAPES)

    def __iter__(self) -> Iterator[ProcessEvent]:
        stats, limit, prefilter = self._stats, self._options.max_line_bytes, self._options.prefilter
        pending = b""  # an XML event spread over several lines
        pending_line = 0
        with open_binary(self._path) as stream:
            line_no = 0
            while True:
                line = stream.readline(limit + 1)
                if not line:
                    break
                line_no += 1
                stats.bytes += len(line)
                if len(line) > limit and not line.endswith(b"\n"):
                    stats.skip(
                        SourceLocation(self._path, line_no), "line too long", f"> {limit} bytes"
                    )
                    while line and not line.endswith(b"\n"):
                        line = stream.readline(limit + 1)
                        stats.bytes += len(line)
                    pending = b""
                    continue
                text = line.strip()
                if not text:
                    continue
                if pending or (
                    _EVENT_START in text and _EVENT_END not in text[text.find(_EVENT_START) :]
                ):
                    if not pending:
                        pending_line = line_no
                    pending += text + b"\n"
                    if _EVENT_END not in text:
                        if len(pending) > limit:
                            stats.skip(
                                SourceLocation(self._path, pending_line),
                                "sysmon: event too long",
                                "",
                            )
                            pending = b""
                        continue
                    text, pending = pending, b""
                    where = SourceLocation(self._path, pending_line)
                else:
                    where = SourceLocation(self._path, line_no)
                for event in self._events(text, where):
                    if prefilter.holds(event):
                        stats.events += 1
                        yield event
            if pending.strip():
                stats.skip(SourceLocation(self._path, pending_line), "sysmon: event cut short", "")
            stats.lines += line_no

    def _events(self, text: bytes, where: SourceLocation) -> list[ProcessEvent]:
        is_json = text[:1] in (b"{", b"[")
        needles = self._json_needles if is_json else self._needles
        if needles is not None and not any(n in text for n in needles):
            self._stats.prefiltered += 1
            return []
        try:
            return self.parse_line(text, where)
        except (LineError, ValueError, TypeError, KeyError, AttributeError) as exc:
            reason = exc.args[0] if isinstance(exc, LineError) else "sysmon: malformed"
            self._stats.skip(where, reason, text[:80].decode("utf-8", "replace"))
            return []

    def parse_line(self, line: bytes, where: SourceLocation) -> list[ProcessEvent]:
        if line[:1] in (b"{", b"["):
            return self._json(line, where)
        segments = _EVENT_RE.findall(line)
        if not segments:
            if _EVENT_START in line:
                raise LineError("sysmon: not an event")
            return []  # other programs' syslog lines, <?xml ...?>, <Events>, </Events>
        out = []
        for segment in segments:
            data = {
                k.decode(): html.unescape(v.decode("utf-8", "replace"))
                for k, v in _DATA_RE.findall(segment)
            }
            event_id = _tag(segment, b"EventID")
            computer = _tag(segment, b"Computer")
            system_time = _SYSTEM_TIME.search(segment)
            event = self.event(
                event_id,
                data,
                computer,
                system_time.group(1).decode() if system_time else None,
                where,
            )
            if event is not None:
                out.append(event)
        return out

    def _json(self, line: bytes, where: SourceLocation) -> list[ProcessEvent]:
        doc = json_object(line, "sysmon")
        winlog = doc.get("winlog")
        if isinstance(winlog, dict):
            data = winlog.get("event_data") or {}
            return self._one(
                as_text(winlog.get("event_id")),
                data,
                as_text(winlog.get("computer_name")) or _host(doc),
                as_text(winlog.get("time_created")),
                where,
            )
        event = doc.get("Event")
        if isinstance(event, dict):
            system = event.get("System") or {}
            data = _data_list((event.get("EventData") or {}).get("Data"))
            event_id = system.get("EventID")
            if isinstance(event_id, dict):
                event_id = event_id.get("#text") or event_id.get("text")
            created = system.get("TimeCreated")
            created_at = (
                created.get("@SystemTime") or created.get("SystemTime")
                if isinstance(created, dict)
                else None
            )
            return self._one(
                as_text(event_id), data, as_text(system.get("Computer")), as_text(created_at), where
            )
        return self._one(
            as_text(doc.get("EventID") or doc.get("event_id")),
            doc,
            as_text(doc.get("Computer")) or _host(doc),
            None,
            where,
        )

    def _one(
        self,
        event_id: str | None,
        data: object,
        computer: str | None,
        created: str | None,
        where: SourceLocation,
    ) -> list[ProcessEvent]:
        if not isinstance(data, dict):
            raise LineError("sysmon: event data is not an object")
        fields = {str(k): v for k, v in data.items() if as_text(v) is not None}
        event = self.event(
            event_id, {k: as_text(v) or "" for k, v in fields.items()}, computer, created, where
        )
        return [] if event is None else [event]

    def event(
        self,
        event_id: str | None,
        data: dict[str, str],
        computer: str | None,
        created: str | None,
        where: SourceLocation,
    ) -> ProcessEvent | None:
        if event_id is None:
            raise LineError("sysmon: no EventID")
        if event_id.strip() != "1":
            return None
        data = {k: v for k, v in data.items() if v not in ("", "-")}
        when = _time(data.get("UtcTime"), created)
        image = data.get("Image")
        users = self.accounts.users
        logon = data.get("LogonId")
        auid = logon if logon is not None and logon.isdigit() and logon not in _UNSET else None
        extra: dict[str, tuple[str, ...]] = {}
        extra["winlog.event_id"] = ("1",)
        if "LogonId" in data:
            extra["winlog.event_data.LogonId"] = (data["LogonId"],)
        command = data.get("CommandLine")
        parent_command = data.get("ParentCommandLine")
        return ProcessEvent(
            timestamp=when,
            event_kind="event",
            event_category=("process",),
            event_type=("start",),
            event_action="Process Create",
            event_module="sysmon",
            user_name=data.get("User"),
            user_audit_id=auid,
            user_audit_name=resolved_name(None, auid, users),
            process_name=basename(image),
            process_executable=image,
            process_args=tuple(command.split()) if command else (),
            process_command_line=command,
            process_pid=as_int(data.get("ProcessId")),
            process_entity_id=data.get("ProcessGuid"),
            process_working_directory=data.get("CurrentDirectory"),
            process_parent_pid=as_int(data.get("ParentProcessId")),
            process_parent_executable=data.get("ParentImage"),
            process_parent_name=basename(data.get("ParentImage")),
            process_parent_args=tuple(parent_command.split()) if parent_command else (),
            host_name=computer or self.options.host_name,
            host_os_type="linux",
            extra=extra,
            origin=where,
        )


def _tag(segment: bytes, name: bytes) -> str | None:
    m = _TAG_RE[name].search(segment)
    return html.unescape(m.group(1).decode("utf-8", "replace")).strip() if m else None


def _data_list(value: Any) -> JsonObject:
    """``[{"@Name": "Image", "#text": "/usr/bin/ss"}, ...]`` (or a dict already) as a dict."""
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return {}
    out: JsonObject = {}
    for item in value:
        if isinstance(item, dict):
            key = item.get("@Name") or item.get("Name") or item.get("name")
            if key is not None:
                out[str(key)] = item.get("#text", item.get("text", item.get("Value")))
    return out


def _host(doc: JsonObject) -> str | None:
    host = doc.get("host")
    return as_text(host.get("name") or host.get("hostname")) if isinstance(host, dict) else None


def _time(utc: str | None, created: str | None) -> datetime:
    """``UtcTime`` (``2026-01-05 10:00:00.123``, UTC), else the ISO ``SystemTime``."""
    for text in (utc, created):
        if not text:
            continue
        value = text.strip().replace(" ", "T", 1)
        if value.endswith("Z"):
            value = value[:-1]
        if "." in value:  # Windows writes 7 or 9 fraction digits; Python takes 6
            head, frac = value.split(".", 1)
            digits = re.match(r"\d*", frac)
            value = f"{head}.{(digits.group(0) if digits else '')[:6]:0<6}"
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            continue
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    raise LineError("sysmon: no valid UtcTime")


def sniff_sysmon(head: bytes) -> float:
    """Confidence that ``head`` starts a Sysmon for Linux log (XML, syslog or JSON)."""
    if b"Linux-Sysmon" in head and (_EVENT_START in head or b'"winlog"' in head):
        return 0.95
    if _EVENT_START in head and b"<EventData>" in head:
        return 0.6
    return 0.0


def open_sysmon(path: str, options: SourceOptions) -> SysmonSource:
    """The :class:`~rarebird.sources.base.SourceFactory` of the ``sysmon`` format."""
    return SysmonSource(path, options)
