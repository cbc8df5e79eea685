"""Chunks of followed bytes to events, in any registered format (what ``serve`` parses with).

A followed input is read in chunks of complete records: the follower asks
:meth:`ChunkParser.frame` how much of what it has read is complete (the format's
:data:`~rarebird.sources.base.Framer`: whole lines, or for raw auditd whole events), and hands
each chunk to :meth:`ChunkParser.parse`. A chunk is read by the format's own reader, the one
file reading uses (:func:`~rarebird.sources.registry.open_format`, so with the login identity
when asked for): it is handed over as an in-memory file (``memfd``), and the events and what
was skipped come back with the real file and line numbers. ``auto`` sniffs the format from the
first data, as ``job run`` and ``detect`` do.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from rarebird.errors import InputError, InputIssue, RarebirdError
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources.base import SourceOptions
from rarebird.sources.registry import (
    InputFormat,
    detect,
    format_names,
    input_format,
    open_format,
    undetected_format,
    unknown_format,
)
from rarebird.sources.sniff import SNIFF_BYTES


class ChunkLike(Protocol):
    """What :meth:`ChunkParser.parse` reads of a chunk (``serve``'s ``Chunk`` is one)."""

    @property
    def path(self) -> str:
        """The file read, as last seen."""
        ...

    @property
    def data(self) -> bytes:
        """Complete records."""
        ...

    @property
    def first_line(self) -> int:
        """1-based number of the chunk's first line in the file."""
        ...


@dataclass(frozen=True)
class ParsedChunk:
    """The events of one chunk, and what was read and skipped in it."""

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
        if fmt != "auto" and fmt not in format_names():
            raise InputError(label, unknown_format(fmt))
        self.format: str | None = None if fmt == "auto" else fmt

    def frame(self, data: bytes, final: bool, idle: bool) -> int:
        """Framing for the follower; decides the format on the first data when ``auto``."""
        if self.format is None:
            lines = data[: data.rfind(b"\n") + 1] if not final else data
            if not lines.strip():
                return 0
            self._detect(lines)
        return self._input_format().framer(data, final, idle)

    def _detect(self, head: bytes) -> str:
        found = detect(head[:SNIFF_BYTES])
        if found is None:
            raise InputError(self.label, undetected_format())
        self.format = found.format
        return found.format

    def _input_format(self) -> InputFormat:
        assert self.format is not None
        try:
            return input_format(self.format)
        except RarebirdError as exc:
            raise InputError(self.label, str(exc)) from None

    def parse(self, chunk: ChunkLike) -> ParsedChunk:
        """The events of ``chunk`` (complete records), read by the format's own reader."""
        fmt = self.format if self.format is not None else self._detect(chunk.data)
        fd = os.memfd_create("rarebird-chunk", os.MFD_CLOEXEC)
        try:
            data = memoryview(chunk.data)
            while data:
                data = data[os.write(fd, data) :]
            source = open_format(fmt, f"/proc/self/fd/{fd}", self.options)
            offset = chunk.first_line - 1
            events = []
            for event in source:
                origin = event.origin
                if origin is not None:
                    event = event.with_origin(SourceLocation(chunk.path, origin.line + offset))
                events.append(event)
            stats = source.stats
        finally:
            os.close(fd)
        issues = [
            InputIssue(SourceLocation(chunk.path, i.location.line + offset), i.reason, i.detail)
            for i in stats.issues
        ]
        return ParsedChunk(events, stats.lines, stats.prefiltered, Counter(stats.skipped), issues)
