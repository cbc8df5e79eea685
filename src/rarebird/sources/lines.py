"""The line-by-line reader of the JSON and syslog formats (Laurel, osquery, Sysmon for Linux).

:class:`LineSource` reads one input line by line: a line longer than ``max_line_bytes`` is
reported and skipped, a line that cannot hold a wanted ``process.name`` is skipped before it is
decoded (:func:`name_needles`), a bad line is counted with its file:line, and every event is
checked exactly against the prefilter. A format subclasses it and maps one line to zero or
more events (:meth:`LineSource.parse_line`). The helpers below turn JSON values into the
keyword text and integers of ECS.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator

import orjson

from rarebird.errors import ReadStats
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources.base import JsonObject, Prefilter, SourceOptions
from rarebird.sources.identity import load_accounts
from rarebird.sources.inputs import open_binary
from rarebird.sources.lines_parallel import can_split, scan_parallel
from rarebird.sources.linescan import NeedleSearch, blocks, search_mode
from rarebird.sources.ranges import RangeStream

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
    names = prefilter.process_names()
    if names is None:
        return None
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
        self.accounts = load_accounts(options.passwd, options.group)
        self._needles = name_needles(options.prefilter, self.quote, self.escapes)
        #: the needles' search once reading has begun ("-": every line parsed)
        self._search: str | None = None
        self._needle_search: NeedleSearch | None = None
        self._processes = 1

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

    def reading(self) -> str | None:
        """How the input was read, once begun (shown after its name)."""
        if self._search is None:
            return None
        how = f"names found by {self._search}" if self._search != "-" else "every line parsed"
        return how if self._processes == 1 else f"{how}, {self._processes} processes"

    def __iter__(self) -> Iterator[ProcessEvent]:
        if self._needles is None:
            self._search = "-"
            yield from self._every_line()
            return
        workers = self._options.extra.get("workers", "1")
        if workers.isdigit() and int(workers) > 1 and can_split(self._path):
            self._processes = int(workers)
            self._searcher()  # named now: this process reads the first piece with it
            yield from scan_parallel(self, self._path, int(workers))
            return
        with open_binary(self._path) as stream:
            yield from self._searched(stream)

    def _searcher(self) -> NeedleSearch:
        """The needles' search, made once (Hyperscan compiles a database for it)."""
        if self._needle_search is None:
            assert self._needles is not None
            self._needle_search = NeedleSearch(self._needles, search_mode())
        self._search = self._needle_search.name
        return self._needle_search

    def read_range(self, start: int, stop: int) -> Iterator[ProcessEvent]:
        """The events of bytes ``start`` to ``stop`` of the file (whole lines; line numbers
        from the range's first line), counted in :attr:`stats`."""
        stream = RangeStream(self._path, start, stop)
        try:
            yield from self._searched(stream)
        finally:
            stream.close()

    def _searched(self, stream: io.RawIOBase | io.BufferedIOBase) -> Iterator[ProcessEvent]:
        """The lines holding a needle, found a chunk at a time (:mod:`rarebird.sources.linescan`)."""
        search = self._searcher()
        stats, limit = self._stats, self._options.max_line_bytes
        lines = 0
        for block in blocks(stream, search, limit):
            if block.error is not None:
                stats.skip(SourceLocation(self._path, block.first_line), "read error", block.error)
            stats.bytes += block.nbytes
            lines += block.lines
            stats.prefiltered += block.unvisited
            buf = block.buf
            for visit in block.visits:
                if visit.too_long:
                    where = SourceLocation(self._path, visit.line_no)
                    stats.skip(where, "line too long", f"> {limit} bytes")
                    continue
                line = bytes(buf[visit.start : visit.end]).strip()
                if not line:
                    continue
                if not visit.hit:
                    stats.prefiltered += 1
                    continue
                yield from self._parsed(line, SourceLocation(self._path, visit.line_no))
        stats.lines += lines

    def _every_line(self) -> Iterator[ProcessEvent]:
        """Every line parsed (no needle to search for)."""
        stats, limit = self._stats, self._options.max_line_bytes
        with open_binary(self._path) as stream:
            for line_no, line, too_long in raw_lines(stream, limit, stats, self._path):
                if too_long:
                    where = SourceLocation(self._path, line_no)
                    stats.skip(where, "line too long", f"> {limit} bytes")
                    continue
                line = line.strip()
                if line:
                    yield from self._parsed(line, SourceLocation(self._path, line_no))

    def _parsed(self, line: bytes, where: SourceLocation) -> Iterator[ProcessEvent]:
        """The events of one line that satisfy the prefilter; a bad line is counted."""
        stats = self._stats
        try:
            events = self.parse_line(line, where)
        except (LineError, ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            reason = exc.args[0] if isinstance(exc, LineError) else f"{self.format_name}: malformed"
            stats.skip(where, reason, line[:80].decode("utf-8", "replace"))
            return
        prefilter = self._options.prefilter
        for event in events:
            if prefilter.holds(event):
                stats.events += 1
                yield event


def raw_lines(
    stream: io.BufferedIOBase, limit: int, stats: ReadStats, path: str
) -> Iterator[tuple[int, bytes, bool]]:
    """Each line of ``stream`` read with ``readline``: its number, its bytes and whether it is
    longer than ``limit`` (then read past, and its bytes not kept). Bytes and lines are counted
    in ``stats``; a read that fails (a gzip cut short) ends the input, reported at its line."""
    line_no = 0
    try:
        while True:
            line = stream.readline(limit + 1)
            if not line:
                break
            line_no += 1
            stats.bytes += len(line)
            too_long = len(line) > limit and not line.endswith(b"\n")
            while too_long and line and not line.endswith(b"\n"):  # the rest of that line
                line = stream.readline(limit + 1)
                stats.bytes += len(line)
            yield line_no, b"" if too_long else line, too_long
    except (EOFError, OSError, zlib.error) as exc:
        stats.skip(SourceLocation(path, line_no + 1), "read error", str(exc) or type(exc).__name__)
    stats.lines += line_no


def json_object(line: bytes, fmt: str) -> JsonObject:
    """The JSON object on ``line``; :class:`LineError` when it is not one."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise LineError(f"{fmt}: not JSON") from exc
    if not isinstance(obj, dict):
        raise LineError(f"{fmt}: not a JSON object")
    return obj


def as_text(value: object) -> str | None:
    """A JSON scalar as keyword text; None for null / empty."""
    if value is None or value == "" or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def as_int(value: object) -> int | None:
    """A JSON scalar as an integer (``0x`` hex included); None when it is not one."""
    text = as_text(value)
    if text is None:
        return None
    try:
        return int(text, 0) if text.startswith("0x") else int(text)
    except ValueError:
        return None


def basename(path: str | None) -> str | None:
    """The last component of a path (``process.name`` of ``process.executable``)."""
    return path.rsplit("/", 1)[-1] if path is not None else None
