"""Turning followed bytes into events, in any registered input format.

A followed input is read in chunks of complete records (:mod:`rarebird.serve.follow`); a
:class:`ChunkParser` turns each into :class:`~rarebird.events.ProcessEvent` s and counts what
it skipped, with the real file and line number.

- **ECS NDJSON** is parsed here line by line with the ECS source's own building blocks
  (:func:`~rarebird.sources.ecs.documents_in`, :func:`~rarebird.sources.ecs.event_from_document`)
  and the datafeed's prefilter on raw bytes (:func:`~rarebird.sources.ecs.byte_conditions`):
  a line that cannot match is not parsed. (Pretty-printed document streams are for replay, not
  for tailing.)
- **Every other format** (raw auditd, Laurel, ...) goes through its registered source: the
  chunk is handed over as an in-memory file (``memfd``), so the format's own reader does the
  work, grouping and all. For raw auditd the framing keeps an event's records together: a chunk
  ends after an ``EOE`` record or before the records of the last, maybe unfinished, event (which
  goes once the file has been idle for a second).
- ``auto`` sniffs the format from the first data, as ``job run`` and ``detect`` do.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from rarebird.errors import InputError, InputIssue
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.serve.follow import Chunk, line_framer
from rarebird.sources import SourceOptions, registered_formats
from rarebird.sources.ecs import (
    ByteCondition,
    DocumentError,
    byte_conditions,
    documents_in,
    event_from_document,
)
from rarebird.sources.sniff import detect_format

_AUDIT_STAMP = re.compile(rb"msg=audit\(\d+\.\d+:\d+\)")
_EOE = re.compile(rb"(?:^|\s)type=EOE\s")


def audit_framer(data: bytes, final: bool, idle: bool) -> int:
    """Complete audit events: up to an ``EOE`` record, or before the last event's records.

    >>> a = b"type=SYSCALL msg=audit(1.0:7): x\\ntype=EXECVE msg=audit(1.0:7): y\\n"
    >>> b = b"type=SYSCALL msg=audit(1.0:8): x\\n"
    >>> audit_framer(a + b, False, False) == len(a), audit_framer(a + b, False, True)
    (True, 98)
    """
    end = len(data) if final else data.rfind(b"\n") + 1
    if final or idle or end == 0:
        return end
    last_start = data.rfind(b"\n", 0, end - 1) + 1
    last = data[last_start:end]
    if _EOE.search(last):
        return end
    stamp = _AUDIT_STAMP.search(last)
    if stamp is None:
        return end
    first = data.find(stamp.group(0))
    return data.rfind(b"\n", 0, first) + 1 if first >= 0 else end


FRAMERS: dict[str, Callable[[bytes, bool, bool], int]] = {"auditd": audit_framer}


@dataclass
class ParsedChunk:
    """The events of one chunk, and what was skipped in it."""

    events: list[ProcessEvent] = field(default_factory=list)
    lines: int = 0
    prefiltered: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    issues: list[InputIssue] = field(default_factory=list)


class ChunkParser:
    """Parses the chunks of one followed input in its format (``auto``: sniffed once)."""

    def __init__(self, fmt: str, label: str, options: SourceOptions) -> None:
        self.label = label
        self.options = options
        formats = registered_formats()
        if fmt != "auto" and fmt not in formats:
            raise InputError(label, f"unknown input format {fmt!r} (known: {', '.join(formats)})")
        self.format: str | None = None if fmt == "auto" else fmt
        self._conditions = byte_conditions(options.prefilter)

    def frame(self, data: bytes, final: bool, idle: bool) -> int:
        """Framing for the follower; decides the format on the first data when ``auto``."""
        if self.format is None:
            lines = data[: data.rfind(b"\n") + 1] if not final else data
            if not lines.strip():
                return 0
            self._detect(lines)
        assert self.format is not None
        return FRAMERS.get(self.format, line_framer)(data, final, idle)

    def _detect(self, head: bytes) -> None:
        formats = registered_formats()
        found = detect_format(head[:65536], {n: f.sniffer for n, f in formats.items()})
        if found is None:
            raise InputError(
                self.label, f"cannot tell the input format; name one ({', '.join(formats)})"
            )
        self.format = found.format

    def parse(self, chunk: Chunk) -> ParsedChunk:
        if self.format is None:
            self._detect(chunk.data)
        if self.format == "ecs":
            return self._parse_ecs(chunk)
        return self._parse_registered(chunk)

    def _parse_ecs(self, chunk: Chunk) -> ParsedChunk:
        out = ParsedChunk()
        data = chunk.data
        conds = self._conditions
        total = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
        spans = _all_lines(data) if not conds else _candidate_lines(data, conds[0])
        lineno = chunk.first_line
        pos = 0
        parsed = 0
        for start, end in spans:
            lineno += data.count(b"\n", pos, start)
            pos = start
            line = data[start:end].strip()
            if not line:
                total -= 1
                continue
            parsed += 1
            self._parse_line(line, SourceLocation(chunk.path, lineno), out)
        out.lines = total
        out.prefiltered += total - parsed
        return out

    def _parse_line(self, line: bytes, location: SourceLocation, out: ParsedChunk) -> None:
        conds = self._conditions
        if len(line) > self.options.max_line_bytes:
            _skip(out, location, "line too long", f"{len(line)} bytes")
            return
        if conds and not all(c.may_match(line) for c in conds):
            out.prefiltered += 1
            return
        try:
            docs = documents_in(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            _skip(out, location, "invalid JSON", str(exc))
            return
        except DocumentError as exc:
            _skip(out, location, exc.reason, exc.detail)
            return
        for doc in docs:
            if conds and not all(c.holds(doc) for c in conds):
                out.prefiltered += 1
                continue
            try:
                out.events.append(event_from_document(doc, location))
            except DocumentError as exc:
                _skip(out, location, exc.reason, exc.detail)

    def _parse_registered(self, chunk: Chunk) -> ParsedChunk:
        assert self.format is not None
        factory = registered_formats()[self.format].factory
        out = ParsedChunk()
        fd = os.memfd_create("rarebird-chunk", os.MFD_CLOEXEC)
        try:
            os.write(fd, chunk.data)
            source = factory(f"/proc/self/fd/{fd}", self.options)
            offset = chunk.first_line - 1
            for event in source:
                origin = event.origin
                if origin is not None:
                    event = event.with_origin(SourceLocation(chunk.path, origin.line + offset))
                out.events.append(event)
            stats = source.stats
        finally:
            os.close(fd)
        out.lines = stats.lines
        out.prefiltered = stats.prefiltered
        out.skipped.update(stats.skipped)
        for issue in stats.issues:
            loc = SourceLocation(chunk.path, issue.location.line + offset)
            out.issues.append(InputIssue(loc, issue.reason, issue.detail))
        return out


def _all_lines(data: bytes) -> list[tuple[int, int]]:
    spans = []
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        if end < 0:
            end = len(data)
        spans.append((start, end))
        start = end + 1
    return spans


def _candidate_lines(data: bytes, cond: ByteCondition) -> list[tuple[int, int]]:
    """The lines of ``data`` that may satisfy ``cond``: those holding one of its values as a
    JSON string, and those holding a backslash (an escape might spell a value). Found with
    ``bytes.find`` over the whole chunk, so lines that cannot match are never looked at."""
    hits: list[int] = []
    needles = [*cond.needles, b"\\"] if b"\\" in data else list(cond.needles)
    for needle in needles:
        p = data.find(needle)
        while p >= 0:
            hits.append(p)
            p = data.find(needle, p + len(needle))
    spans: dict[int, int] = {}
    for p in sorted(hits):
        start = data.rfind(b"\n", 0, p) + 1
        if start in spans:
            continue
        end = data.find(b"\n", p)
        spans[start] = len(data) if end < 0 else end
    return sorted(spans.items())


def _skip(out: ParsedChunk, location: SourceLocation, reason: str, detail: str) -> None:
    out.skipped[reason] += 1
    if len(out.issues) < 20:
        out.issues.append(InputIssue(location, reason, detail[:200]))
