"""The line-by-line reader of the JSON and syslog formats (Laurel, osquery, Sysmon for Linux).

:class:`LineSource` reads one input line by line: a line longer than ``max_line_bytes`` is
reported and skipped, a line that cannot hold a wanted ``process.name`` is skipped before it is
decoded (:func:`name_needles`), a bad line is counted with its file:line, and every event is
checked exactly against the prefilter. A format subclasses it and maps one line to zero or
more events (:meth:`LineSource.parse_line`). The helpers below turn JSON values into the
keyword text and integers of ECS.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from rarebird.errors import ReadStats
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources.base import JsonObject, Prefilter, SourceOptions
from rarebird.sources.identity import load_accounts
from rarebird.sources.inputs import open_binary

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
                    if prefilter.holds(event):
                        stats.events += 1
                        yield event
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
