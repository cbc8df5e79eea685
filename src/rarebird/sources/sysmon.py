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
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np

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
    raw_lines,
)
from rarebird.sources.lines_parallel import can_split, cuts_after, scan_parallel
from rarebird.sources.linescan import CHUNK, NeedleSearch, blocks, search_mode
from rarebird.sources.ranges import RangeStream, plan_pieces

_EVENT_START = b"<Event"
_EVENT_END = b"</Event>"
_CLOSING = np.frombuffer(_EVENT_END, np.uint8)
#: what ``bytes.strip()`` removes
_WHITESPACE = np.zeros(256, bool)
_WHITESPACE[list(b" \t\n\r\x0b\x0c")] = True
_EVENT_RE = re.compile(rb"<Event[\s>].*?</Event>", re.S)
_DATA_RE = re.compile(rb'<Data Name="([^"]*)"\s*(?:/>|>(.*?)</Data>)', re.S)
#: the same over ASCII text (``re.ASCII``: ``\s`` is the same six bytes)
_DATA_TEXT_RE = re.compile(_DATA_RE.pattern.decode(), re.S | re.ASCII)
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
        if self._needles is None or self._json_needles is None:
            self._search = "-"
            yield from self._line_by_line()
            return
        search = self._searcher()
        workers = self._options.extra.get("workers", "1")
        if workers.isdigit() and int(workers) > 1 and can_split(self._path):
            # cut only after a line ending with </Event>: no event is open there, whatever
            # the lines before held (see _line), so each piece starts as one reader would
            planned = plan_pieces(self._path, int(workers))
            pieces = cuts_after(self._path, planned, _EVENT_END)
            if len(pieces) > 1:
                self._processes = int(workers)
                yield from scan_parallel(self, self._path, int(workers), pieces)
                return
        with open_binary(self._path) as stream:
            yield from self._chunked(stream, search)

    def search(self, mode: str) -> NeedleSearch:
        """The needles of both layouts (XML and JSON)."""
        assert self._needles is not None
        assert self._json_needles is not None
        return NeedleSearch((*self._needles, *self._json_needles), mode)

    def _searcher(self) -> NeedleSearch:
        """Both layouts' search, made once."""
        if self._needle_search is None:
            self._needle_search = self.search(search_mode())
        self._search = self._needle_search.name
        return self._needle_search

    def read_range(self, start: int, stop: int) -> Iterator[ProcessEvent]:
        """The events of bytes ``start`` to ``stop`` (whole lines, no event open before
        ``start``; line numbers from the range's first line), counted in :attr:`stats`."""
        stream = RangeStream(self._path, start, stop)
        try:
            yield from self._chunked(stream, self._searcher())
        finally:
            stream.close()

    def _chunked(
        self,
        stream: io.RawIOBase | io.BufferedIOBase,
        search: NeedleSearch,
        chunk: int = CHUNK,
    ) -> Iterator[ProcessEvent]:
        """:meth:`_line_by_line`'s rule, with Python looking only at the lines it must: those
        holding a needle (of either layout), opening an event without closing it, that may be
        blank or are too long, and every line while an event spread over lines is open; each
        other line holds no needle, so it is counted as prefiltered (:mod:`.linescan`)."""
        stats, limit = self._stats, self._options.max_line_bytes
        state = _Open()
        lines = 0
        for block in blocks(stream, search, limit, chunk, _opens_event):
            if block.error is not None:
                stats.skip(SourceLocation(self._path, block.first_line), "read error", block.error)
            stats.bytes += block.nbytes
            lines += block.lines
            unvisited = block.unvisited
            visits = block.visits
            buf, starts, ends, first = block.buf, block.starts, block.ends, block.first_line
            taken = 0  # visits looked at
            i = 0  # the next line of the block not looked at
            while True:
                if state.text:  # inside an event spread over lines: every line counts
                    if i >= block.lines:
                        break
                    visit = None
                    if taken < len(visits) and visits[taken].line_no == first + i:
                        visit = visits[taken]
                        taken += 1
                    else:
                        unvisited -= 1  # not a prefiltered line after all
                    too_long = visit is not None and visit.too_long
                    line = b"" if too_long else bytes(buf[int(starts[i]) : int(ends[i])])
                    yield from self._line(line, first + i, too_long, state)
                    i += 1
                    continue
                if taken >= len(visits):
                    break
                visit = visits[taken]
                taken += 1
                i = visit.line_no - first + 1
                line = b"" if visit.too_long else bytes(buf[visit.start : visit.end])
                yield from self._line(line, visit.line_no, visit.too_long, state)
            stats.prefiltered += unvisited
        if state.text.strip():
            stats.skip(SourceLocation(self._path, state.line), "sysmon: event cut short", "")
        stats.lines += lines

    def _line(
        self, line: bytes, line_no: int, too_long: bool, state: _Open
    ) -> Iterator[ProcessEvent]:
        """One line by :meth:`_line_by_line`'s rule (``state``: the event open across lines)."""
        stats, limit = self._stats, self._options.max_line_bytes
        if too_long:
            stats.skip(SourceLocation(self._path, line_no), "line too long", f"> {limit} bytes")
            state.text = b""
            return
        text = line.strip()
        if not text:
            return
        if state.text or (
            _EVENT_START in text and _EVENT_END not in text[text.find(_EVENT_START) :]
        ):
            if not state.text:
                state.line = line_no
            state.text += text + b"\n"
            if _EVENT_END not in text:
                if len(state.text) > limit:
                    stats.skip(SourceLocation(self._path, state.line), "sysmon: event too long", "")
                    state.text = b""
                return
            text, state.text = state.text, b""
            where = SourceLocation(self._path, state.line)
        else:
            where = SourceLocation(self._path, line_no)
        prefilter = self._options.prefilter
        for event in self._events(text, where):
            if prefilter.holds(event):
                stats.events += 1
                yield event

    def _line_by_line(self) -> Iterator[ProcessEvent]:
        """Every line read and looked at in Python (no needles to search for)."""
        stats, limit = self._stats, self._options.max_line_bytes
        state = _Open()
        with open_binary(self._path) as stream:
            for line_no, line, too_long in raw_lines(stream, limit, stats, self._path):
                yield from self._line(line, line_no, too_long, state)
        if state.text.strip():
            stats.skip(SourceLocation(self._path, state.line), "sysmon: event cut short", "")

    def _events(self, text: bytes, where: SourceLocation) -> list[ProcessEvent]:
        is_json = text[:1] in (b"{", b"[")
        needles = self._json_needles if is_json else self._needles
        if needles is not None and not any(n in text for n in needles):
            self._stats.prefiltered += 1
            return []
        try:
            return self.parse_line(text, where)
        except (LineError, ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            reason = exc.args[0] if isinstance(exc, LineError) else "sysmon: malformed"
            self._stats.skip(where, reason, text[:80].decode("utf-8", "replace"))
            return []

    def parse_line(self, line: bytes, where: SourceLocation) -> list[ProcessEvent]:
        if line[:1] in (b"{", b"["):
            return self._json(line, where)
        segments = _segments(line)
        if not segments:
            if _EVENT_START in line:
                raise LineError("sysmon: not an event")
            return []  # other programs' syslog lines, <?xml ...?>, <Events>, </Events>
        out = []
        for segment in segments:
            if segment.isascii():  # one decoding, not two a field (10 us -> 5 us a line)
                data = {k: html.unescape(v) for k, v in _DATA_TEXT_RE.findall(segment.decode())}
            else:
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
        if not self.options.prefilter.admits("process.name", basename(image)):
            return None  # the prefilter would drop the event: it is not built (a decoy)
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


def _segments(line: bytes) -> list[bytes]:
    """What ``_EVENT_RE.findall(line)`` finds (``<Event`` and a white space or ``>``, up to
    the first ``</Event>`` after it), with ``bytes.find``: the lazy pattern stepped through
    every byte of a 1.5 KB line (12 us)."""
    out: list[bytes] = []
    pos = 0
    while True:
        i = line.find(_EVENT_START, pos)
        if i < 0:
            return out
        after = line[i + 6 : i + 7]
        if not after or after not in b" \t\n\r\x0b\x0c>":
            pos = i + 1
            continue
        j = line.find(_EVENT_END, i + 7)
        if j < 0:
            return out
        out.append(line[i : j + 8])
        pos = j + 8


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


class _Open:
    """An event spread over lines, while it is being read: its lines so far and first line."""

    __slots__ = ("text", "line")

    def __init__(self) -> None:
        self.text = b""
        self.line = 0


def _opens_event(buf: bytearray, view: Any, starts: Any, ends: Any) -> Any:
    """The lines that may open an event spread over lines (hold ``<Event`` and no
    ``</Event>`` after it): a superset, those holding ``<Event`` whose text does not end with
    ``</Event>``, and the block's last line. The ends are compared in numpy; only lines that
    do not end so (a Sysmon syslog line does) are searched for ``<Event``, in Python (a search
    for ``<Event`` in the whole chunk finds four a Sysmon line: ``<EventID>``, ...)."""
    total = len(ends)
    out = np.zeros(total, bool)
    if not total:
        return out
    last = np.maximum(ends - 1, 0)  # a line's last byte (an empty line's: the one before)
    last = last - ((view[last] == 0x0D) & (ends > starts))  # before a CRLF's CR
    size = last - starts + 1
    tail = np.clip(last[:, None] + np.arange(-7, 1), 0, len(view) - 1)
    closes = (size >= 8) & (view[tail] == _CLOSING).all(axis=1) & ~_WHITESPACE[view[last]]
    find = buf.find
    for i in np.flatnonzero(~closes).tolist():
        if find(_EVENT_START, int(starts[i]), int(ends[i])) >= 0:
            out[i] = True
    out[-1] = True
    return out
