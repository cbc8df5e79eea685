"""ECS JSON documents, as Elastic Defend, Auditbeat and Auditd Manager write them.

What is read
------------
- **Layouts.** Newline-delimited JSON (one document per line; blank lines are ignored) and
  *document streams*: pretty-printed objects spanning several lines, one after the other (an
  es_archive ``data.json``, a single pretty-printed document, a pretty-printed ``_search``
  response). The layout is chosen from the first non-blank line: if it is not a whole JSON value
  and the next line is indented (or closes a bracket), the input is a document stream. In a
  stream, a record starts at every line whose first byte is ``{`` or ``[``; a record is limited
  to ``max_line_bytes`` like a line (a whole pretty-printed ``_search`` response is one record).
- **Envelopes.** A plain document; a ``_search`` hit (``{"_index":..., "_source": {...}}``); a
  whole ``_search`` response (``{"hits": {"hits": [...]}}``: every hit); an es_archive record
  (``{"type": "doc", "value": {"source": {...}}}``; ``"type": "index"`` records are ignored);
  a JSON array of any of these.
- **Keys.** Nested (``{"process": {"name": "ss"}}``), dotted (``{"process.name": "ss"}``) or a
  mix, at any depth, as Elasticsearch reads them. Arrays of objects contribute every element's
  fields, arrays of scalars become tuples, ``null`` and empty arrays are absent.
- **Values.** The typed attributes of :class:`~rarebird.events.ProcessEvent` are filled from
  their ECS fields (a scalar field given several values keeps the first; a pid that is not an
  integer is left out); every other leaf goes into ``extra`` under its dotted name, as keyword
  strings: numbers as their decimal text (``42``, ``1.5``), booleans ``true``/``false``.
- **Time.** ``@timestamp`` as ISO-8601 (naive means UTC) or epoch milliseconds. A document
  without one is skipped and counted (``missing @timestamp`` / ``bad @timestamp``).
- **Compression.** gzip by magic bytes, on files, FIFOs and stdin (see :mod:`.inputs`).

A bad line (not JSON, not an object, truncated, NUL bytes, too long) is counted in
:attr:`EcsSource.stats` with its file:line and never costs its neighbours.

The fast path (NDJSON with a prefilter)
---------------------------------------
With a :class:`~rarebird.sources.base.Prefilter` (say ``process.name`` in {netstat, ss, route,
showmount}), only a few lines in a hundred can match, so the source does not parse the others.
It reads 8 MiB chunks into one reused buffer and, per chunk, at C speed:

1. finds every occurrence of each value as a JSON string literal (``"ss"`` with its quotes:
   ``"process"`` contains ``ss``) with libc ``strstr`` (``bytes.find`` when libc is not
   available), plus every ``\\u`` escape whose code unit is a character of some value, and
   every two-character escape (``\\/``, ``\\n``...) of a character some value holds: a value
   can be written only as its plain literal or with such an escape;
2. walks the line ends with ``bytearray.find`` (memchr), counting lines; a line holding a hit is
   a *candidate*, the others are checked for framing only.

The condition whose values are rarest in the first chunk picks the candidates; a candidate must
also hold a literal (or an escape) of every other usable condition. When the caller names the
fields it wants (the job does), a plain candidate document goes through the quick lane of
:mod:`.ecs_lane` (msgspec decodes just those fields); other candidates are parsed with orjson.
Either way the document is checked exactly against every condition before an event is built;
what fails is counted in ``stats.prefiltered``, with the lines never parsed. A condition whose
values could be written as a JSON number, boolean or null (``42``, ``true``) cannot be found
as a string literal, so it is not used on bytes. The caller applies the full datafeed query to
the events anyway; the prefilter only ever keeps too much, never too little.

What fast mode detects on lines it does not parse: a line that does not start with ``{``/``[``
and end with ``}``/``]`` (surrounding whitespace and ``\\r`` allowed) is reported as
``invalid JSON`` with its file:line (the line walk looks at the first and last byte of every
line); a line holding a NUL byte is parsed, and so reported; a line that does not fit in the
read buffer grown to ``max_line_bytes`` is reported as ``line too long``. What it does **not**
detect on those lines: a line that is framed like a JSON object but is invalid inside
(``{"a": }``, a write cut off just after an inner ``}``, two objects glued on one line),
invalid UTF-8, a line longer than ``max_line_bytes`` that still fits the buffer, and documents
without a valid ``@timestamp``: none of them can match the datafeed, and finding out would
mean parsing them. Candidates failing the exact check are not checked for ``@timestamp``
either. Without a prefilter every line is parsed and every problem is reported.

Events share their field-name strings and one-value tuples (bounded caches), which halves the
memory an event from a rich Elastic Defend document holds.
"""

from __future__ import annotations

import ctypes
import io
import re
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from rarebird.errors import ReadStats
from rarebird.events import ARRAY_FIELDS, FIELD_ATTRS, INT_FIELDS, ProcessEvent, SourceLocation
from rarebird.sources.base import Prefilter, SourceOptions
from rarebird.sources.inputs import open_binary, register_format
from rarebird.sources.sniff import UTF8_BOM, first_lines
from rarebird.timeutil import parse_timestamp

if TYPE_CHECKING:
    from rarebird.sources.ecs_lane import StructLane

#: What :meth:`StructLane.event` returns for a document failing the prefilter's exact check.
PREFILTERED = ProcessEvent(timestamp=datetime(1970, 1, 1, tzinfo=UTC))

#: Bytes read per chunk in fast mode (the buffer grows for longer lines, up to max_line_bytes).
CHUNK_BYTES = 8 * 1024 * 1024

_OPEN = 0x7B  # {
_CLOSE = 0x7D  # }
_NL = 0x0A


# --- documents ---------------------------------------------------------------------------------


class DocumentError(Exception):
    """A document that cannot become an event: why (a short reason) and a detail."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def keyword(value: object) -> str | None:
    """A JSON scalar as the keyword string Elasticsearch indexes; None for null.

    >>> keyword("ss"), keyword(42), keyword(1.5), keyword(True), keyword(None)
    ('ss', '42', '1.5', 'true', None)
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return None


def flatten_document(
    doc: dict[str, Any], wanted: Wanted | None = None
) -> dict[str, str | list[str]]:
    """Every leaf of a document under its dotted name, as keyword strings.

    Nested and dotted keys alike; a field with one value maps to a string, one with several
    (an array, or the same name reached twice) to a list.

    >>> flatten_document({"process": {"name": "ss", "args": ["ss", "-t"]}, "process.pid": 7})
    {'process.name': 'ss', 'process.args': ['ss', '-t'], 'process.pid': '7'}
    """
    out: dict[str, str | list[str]] = {}
    if wanted is None:
        _flatten(doc, "", out)
    else:
        _flatten_wanted(doc, "", out, wanted)
    return out


class Wanted:
    """The dotted field names to keep, and every prefix leading to them (``a.``, ``a.b.``)."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        prefixes = set()
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts)):
                prefixes.add(".".join(parts[:i]) + ".")
        self.prefixes = frozenset(prefixes)

    @classmethod
    def for_fields(cls, fields: frozenset[str] | None) -> Wanted | None:
        if fields is None:
            return None
        return cls(frozenset(fields) | frozenset(FIELD_ATTRS) | {"@timestamp"})


def _flatten_wanted(
    obj: dict[str, Any], prefix: str, out: dict[str, str | list[str]], wanted: Wanted
) -> None:
    """:func:`_flatten` that only keeps wanted fields and skips subtrees leading nowhere."""
    names = _names(prefix)
    for key, value in obj.items():
        name = names.get(key)
        if name is None:
            name = prefix + key
            if len(names) < _MAX_NAMES:
                names[key] = name
        kind = type(value)
        if kind is dict:
            if name + "." in wanted.prefixes:
                _flatten_wanted(value, name + ".", out, wanted)
        elif name not in wanted.names:
            if kind is list and value and name + "." in wanted.prefixes:
                for item in value:
                    if type(item) is dict:
                        _flatten_wanted(item, name + ".", out, wanted)
        elif kind is str:
            if name in out:
                _add(out, name, value)
            else:
                out[name] = value
        elif kind is list:
            if value:
                _flatten_list(value, name, out)
        elif value is not None:
            _add(out, name, keyword(value) or "")


def _add(out: dict[str, str | list[str]], name: str, value: str) -> None:
    have = out.get(name)
    if have is None:
        out[name] = value
    elif type(have) is list:
        have.append(value)
    else:
        out[name] = [have, value]  # type: ignore[list-item]


#: Dotted names already built, per prefix: the same field names recur in every document, so
#: events share one string per name instead of each holding its own copy.
_NAMES: dict[str, dict[str, str]] = {}
_MAX_NAMES = 50_000


def _names(prefix: str) -> dict[str, str]:
    names = _NAMES.get(prefix)
    if names is None:
        names = {}
        if len(_NAMES) < _MAX_NAMES:
            _NAMES[prefix] = names
    return names


#: One-value tuples of values seen before (host names, agent versions...), shared likewise.
_SINGLES: dict[str, tuple[str]] = {}
_MAX_SINGLES = 20_000


def _single(value: str) -> tuple[str]:
    one = _SINGLES.get(value)
    if one is None:
        one = (value,)
        if len(_SINGLES) < _MAX_SINGLES and len(value) <= 64:
            _SINGLES[value] = one
    return one


def _flatten(obj: dict[str, Any], prefix: str, out: dict[str, str | list[str]]) -> None:
    names = _names(prefix)
    for key, value in obj.items():
        name = names.get(key)
        if name is None:
            name = prefix + key
            if len(names) < _MAX_NAMES:
                names[key] = name
        kind = type(value)
        if kind is str:
            if name in out:
                _add(out, name, value)
            else:
                out[name] = value
        elif kind is dict:
            _flatten(value, name + ".", out)
        elif kind is list:
            if value:
                _flatten_list(value, name, out)
        elif value is not None:
            _add(out, name, keyword(value) or "")


def _flatten_list(values: list[Any], name: str, out: dict[str, str | list[str]]) -> None:
    if all(type(v) is str for v in values):
        have = out.get(name)
        if have is None:
            out[name] = values if len(values) > 1 else values[0]
        elif type(have) is list:
            have.extend(values)
        else:
            out[name] = [have, *values]  # type: ignore[list-item]
        return
    for value in values:
        kind = type(value)
        if kind is dict:
            _flatten(value, name + ".", out)
        elif kind is list:
            _flatten_list(value, name, out)
        elif value is not None:
            _add(out, name, keyword(value) or "")


def documents_in(obj: object) -> list[dict[str, Any]]:
    """The ECS documents a parsed JSON value holds, envelopes removed.

    >>> documents_in({"hits": {"hits": [{"_source": {"a": 1}}, {"_source": {"a": 2}}]}})
    [{'a': 1}, {'a': 2}]
    """
    if isinstance(obj, list):
        docs: list[dict[str, Any]] = []
        for item in obj:
            if not isinstance(item, dict):
                raise DocumentError("not a JSON object", f"array element {_short(item)}")
            docs.extend(documents_in(item))
        return docs
    if not isinstance(obj, dict):
        raise DocumentError("not a JSON object", _short(obj))
    source = obj.get("_source")
    if isinstance(source, dict):
        return [source]
    hits = obj.get("hits")
    if isinstance(hits, dict) and isinstance(hits.get("hits"), list):
        return documents_in(hits["hits"])
    value = obj.get("value")
    if isinstance(value, dict) and "@timestamp" not in obj:
        kind = obj.get("type")
        if kind == "doc" and isinstance(value.get("source"), dict):
            return [value["source"]]
        if kind in ("index", "data_stream", "index_template", "component_template"):
            return []  # es_archive mappings: not events
    return [obj]


def _short(value: object) -> str:
    return repr(value)[:80]


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def event_from_document(
    doc: dict[str, Any], origin: SourceLocation | None = None, wanted: Wanted | None = None
) -> ProcessEvent:
    """Build the typed event of one ECS document (envelope already removed); with ``wanted``,
    only those fields (and the typed ones) are kept.

    Raises :class:`DocumentError` (``missing @timestamp`` / ``bad @timestamp``).
    """
    flat = flatten_document(doc, wanted)
    stamp = flat.pop("@timestamp", None)
    if stamp is None:
        raise DocumentError("missing @timestamp")
    raw_stamp = doc.get("@timestamp")
    if type(raw_stamp) not in (str, int, float):
        raw_stamp = _raw_timestamp(doc)
    if type(stamp) is list or raw_stamp is None:
        raise DocumentError("bad @timestamp", _short(stamp))
    timestamp = timestamp_of(raw_stamp)
    typed: dict[str, Any] = {}
    extra: dict[str, tuple[str, ...]] = {}
    field_attrs = FIELD_ATTRS
    single = _single
    for name, value in flat.items():
        attr = field_attrs.get(name)
        if attr is None:
            extra[name] = single(value) if type(value) is str else tuple(value)
        elif name in ARRAY_FIELDS:
            typed[attr] = (value,) if type(value) is str else tuple(value)
        elif name in INT_FIELDS:
            typed[attr] = _int(value if type(value) is str else value[0])
        else:
            typed[attr] = value if type(value) is str else value[0]
    return ProcessEvent(timestamp=timestamp, extra=extra, origin=origin, **typed)


def timestamp_of(raw_stamp: str | int | float) -> datetime:
    """The time of a document's one ``@timestamp`` value, or ``bad @timestamp``."""
    try:
        return parse_timestamp(raw_stamp)
    except (ValueError, OverflowError, TypeError):
        raise DocumentError("bad @timestamp", _short(raw_stamp)) from None


def _raw_timestamp(doc: dict[str, Any]) -> str | int | float | None:
    """The one ``@timestamp`` value as written (a number stays a number: epoch millis)."""
    found: list[Any] = []
    _values_at(doc, ["@timestamp"], 0, found)
    if len(found) != 1 or isinstance(found[0], bool):
        return None
    value = found[0]
    return value if isinstance(value, str | int | float) else None


def _values_at(obj: Any, parts: list[str], start: int, out: list[Any]) -> None:
    """Append the leaves found under dotted ``parts[start:]`` of ``obj``, as flatten sees them."""
    if type(obj) is list:
        for item in obj:
            _values_at(item, parts, start, out)
        return
    if type(obj) is not dict:
        return
    key = ""
    for end in range(start, len(parts)):
        key = parts[end] if end == start else key + "." + parts[end]
        if key in obj:
            value = obj[key]
            if end + 1 == len(parts):
                _leaves(value, out)
            else:
                _values_at(value, parts, end + 1, out)


def _leaves(value: Any, out: list[Any]) -> None:
    if type(value) is list:
        for item in value:
            _leaves(item, out)
    elif value is not None and type(value) is not dict:
        out.append(value)


# --- the prefilter on raw bytes ----------------------------------------------------------------

_SHORT_ESCAPES = {
    '"': b'\\"',
    "\\": b"\\\\",
    "/": b"\\/",
    "\b": b"\\b",
    "\f": b"\\f",
    "\n": b"\\n",
    "\r": b"\\r",
    "\t": b"\\t",
}
_U_ESCAPE = re.compile(rb"\\u([0-9A-Fa-f]{4})")
_HEX = frozenset(b"0123456789abcdefABCDEF")


def _could_be_non_string(value: str) -> bool:
    """True when a document could hold ``value`` as a JSON number, boolean or null."""
    if value in ("true", "false", "null"):
        return True
    try:
        float(value)
    except ValueError:
        return False
    return True


def _code_units(text: str) -> set[int]:
    units: set[int] = set()
    for ch in text:
        cp = ord(ch)
        if cp > 0xFFFF:
            cp -= 0x10000
            units.add(0xD800 + (cp >> 10))
            units.add(0xDC00 + (cp & 0x3FF))
        else:
            units.add(cp)
    return units


@dataclass(frozen=True, slots=True)
class ByteCondition:
    """A prefilter condition as byte patterns: a line that can satisfy it holds one of them."""

    field: str
    values: frozenset[str]
    parts: tuple[str, ...]
    #: each value as a JSON string literal, quotes included
    needles: tuple[bytes, ...]
    #: UTF-16 code units a ``\\uXXXX`` escape could spell in a value
    units: frozenset[int]
    #: two-character escapes of characters the values hold (``\\/``, ``\\n`` ...)
    short_escapes: tuple[bytes, ...]

    def may_match(self, data: bytes) -> bool:
        """False only when ``data`` cannot hold any value as a JSON string."""
        for needle in self.needles:
            if needle in data:
                return True
        return b"\\" in data and self.escape_in(data)

    def escape_in(self, data: bytes) -> bool:
        for esc in self.short_escapes:
            if esc in data:
                return True
        return any(int(m.group(1), 16) in self.units for m in _U_ESCAPE.finditer(data))

    def holds(self, doc: dict[str, Any]) -> bool:
        """Exact check on a parsed document (keyword semantics)."""
        found: list[Any] = []
        _values_at(doc, list(self.parts), 0, found)
        values = self.values
        return any(isinstance(v, str) and v in values for v in found)


def byte_conditions(prefilter: Prefilter) -> tuple[ByteCondition, ...]:
    """The prefilter's conditions that can be tested on raw bytes."""
    out: list[ByteCondition] = []
    for cond in prefilter.conditions:
        if any(_could_be_non_string(v) for v in cond.values):
            continue
        chars = "".join(sorted(cond.values))
        out.append(
            ByteCondition(
                field=cond.field,
                values=cond.values,
                parts=tuple(cond.field.split(".")),
                needles=tuple(orjson.dumps(v) for v in sorted(cond.values)),
                units=frozenset(_code_units(chars)),
                short_escapes=tuple(
                    sorted({_SHORT_ESCAPES[c] for c in chars if c in _SHORT_ESCAPES})
                ),
            )
        )
    return tuple(out)


def _load_strstr() -> Callable[[int, bytes], int | None] | None:
    try:
        libc = ctypes.CDLL(None)
        fn = libc.strstr
    except (OSError, AttributeError, TypeError):
        return None
    fn.restype = ctypes.c_void_p
    fn.argtypes = (ctypes.c_void_p, ctypes.c_char_p)
    return fn


_STRSTR = _load_strstr()


class _ChunkBuffer:
    """One reused read buffer, with its C address for libc searches.

    The buffer always has two spare bytes past the data: a ``\\n`` closing a last line that
    lacks one, and the NUL that ends a ``strstr`` search.
    """

    def __init__(self, size: int, use_libc: bool) -> None:
        self.buf = bytearray(size + 2)
        self.size = size
        self.mv = memoryview(self.buf)
        self.addr = 0
        self._carr: ctypes.Array[ctypes.c_char] | None = None
        if use_libc:
            self._carr = (ctypes.c_char * len(self.buf)).from_buffer(self.buf)
            self.addr = ctypes.addressof(self._carr)

    def grown(self, size: int, keep: int) -> _ChunkBuffer:
        new = _ChunkBuffer(size, self._carr is not None)
        new.mv[:keep] = self.mv[:keep]
        self.release()
        return new

    def release(self) -> None:
        self._carr = None
        self.mv.release()


def _find_all(
    chunk: _ChunkBuffer, needle: bytes, segments: list[tuple[int, int]], out: list[int]
) -> None:
    """Append the start of every occurrence of ``needle`` in the segments of the chunk."""
    if _STRSTR is not None and chunk.addr:
        strstr = _STRSTR
        base = chunk.addr
        step = len(needle)
        for start, _end in segments:  # each segment ends at a NUL byte
            p = strstr(base + start, needle)
            while p:
                out.append(p - base)
                p = strstr(p + step, needle)
        return
    find = chunk.buf.find
    step = len(needle)
    for start, end in segments:
        p = find(needle, start, end)
        while p >= 0:
            out.append(p)
            p = find(needle, p + step, end)


def _escape_hits(
    chunk: _ChunkBuffer, cond: ByteCondition, segments: list[tuple[int, int]], out: list[int]
) -> None:
    for esc in cond.short_escapes:
        _find_all(chunk, esc, segments, out)
    if not cond.units:
        return
    found: list[int] = []
    _find_all(chunk, b"\\u", segments, found)
    buf = chunk.buf
    units = cond.units
    for pos in found:
        digits = buf[pos + 2 : pos + 6]
        if len(digits) == 4 and all(c in _HEX for c in digits) and int(digits, 16) in units:
            out.append(pos)


# --- the source --------------------------------------------------------------------------------


class EcsSource:
    """ECS documents from one input (file, FIFO or ``-``), plain or gzip."""

    def __init__(
        self,
        path: str,
        options: SourceOptions | None = None,
        *,
        chunk_bytes: int = CHUNK_BYTES,
        search: str = "auto",
        lane: bool = True,
    ) -> None:
        if search not in ("auto", "libc", "python"):
            raise ValueError(f"search must be auto, libc or python, not {search!r}")
        self._path = path
        self.options = options or SourceOptions()
        self._stats = ReadStats()
        self.chunk_bytes = max(16, chunk_bytes)
        self.use_libc = _STRSTR is not None and search != "python"
        self.conditions = byte_conditions(self.options.prefilter)
        self.wanted = Wanted.for_fields(self.options.fields)
        #: msgspec's quick lane for plain candidate lines (None: every line takes orjson)
        self.lane: StructLane | None = None
        if (
            lane
            and self.wanted is not None
            and self.conditions
            and all(c.field in self.wanted.names for c in self.conditions)
        ):
            from rarebird.sources.ecs_lane import StructLane

            self.lane = StructLane(self.wanted.names, self.conditions)
        #: whether the prefilter can skip lines at all (some condition testable on bytes)
        self.filtering = bool(self.conditions)
        #: "ndjson" or "stream", known once iteration has started
        self.layout: str | None = None

    @property
    def name(self) -> str:
        return self._path

    @property
    def stats(self) -> ReadStats:
        return self._stats

    def __iter__(self) -> Iterator[ProcessEvent]:
        stream = open_binary(self._path)
        try:
            head = b""
            peek = getattr(stream, "peek", None)
            if peek is not None:
                try:
                    head = peek(64 * 1024)[: 64 * 1024]
                except (OSError, EOFError):
                    head = b""
            self.layout = detect_layout(head)
            if self.layout == "stream":
                yield from self._iter_stream(stream)
            else:
                yield from self._iter_ndjson(stream)
        finally:
            stream.close()

    # -- one parsed record (a line, or a record of a document stream) --

    def _emit(self, data: Any, line: int) -> Iterator[ProcessEvent]:
        stats = self._stats
        location = SourceLocation(self._path, line)
        if len(data) > self.options.max_line_bytes:
            stats.skip(location, "line too long", f"{len(data)} bytes")
            return
        lane = self.lane
        if lane is not None:
            try:
                event = lane.event(bytes(data), location)
            except DocumentError as exc:
                stats.skip(location, exc.reason, exc.detail)
                return
            if event is not None:
                if event is PREFILTERED:
                    stats.prefiltered += 1
                    return
                stats.events += 1
                yield event
                return
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            stats.skip(location, "invalid JSON", str(exc))
            return
        try:
            docs = documents_in(obj)
        except DocumentError as exc:
            stats.skip(location, exc.reason, exc.detail)
            return
        conditions = self.conditions
        for doc in docs:
            if conditions and not all(c.holds(doc) for c in conditions):
                stats.prefiltered += 1
                continue
            try:
                event = event_from_document(doc, location, self.wanted)
            except DocumentError as exc:
                stats.skip(location, exc.reason, exc.detail)
                continue
            stats.events += 1
            yield event

    # -- NDJSON --

    def _iter_ndjson(self, stream: io.BufferedIOBase) -> Iterator[ProcessEvent]:
        stats = self._stats
        max_line = self.options.max_line_bytes
        chunk = _ChunkBuffer(self.chunk_bytes, self.use_libc)
        filled = 0
        eof = False
        first = True
        lineno = 0
        skipping_long = False  # inside a line longer than max_line_bytes, dropping it
        primary: ByteCondition | None = None
        try:
            while True:
                while filled < chunk.size and not eof:
                    got = _read_into(stream, chunk.mv[filled : chunk.size], self, lineno)
                    if not got:
                        eof = True
                    else:
                        filled += got
                        stats.bytes += got
                if first:
                    first = False
                    if chunk.buf.startswith(UTF8_BOM):
                        chunk.mv[: filled - 3] = chunk.mv[3:filled]
                        filled -= 3
                if filled == 0:
                    break
                last = chunk.buf.rfind(_NL, 0, filled)
                if skipping_long:
                    if last < 0 and not eof:
                        filled = 0
                        continue
                    cut = chunk.buf.find(_NL, 0, filled)
                    cut = filled if cut < 0 else cut + 1
                    chunk.mv[: filled - cut] = chunk.mv[cut:filled]
                    filled -= cut
                    skipping_long = False
                    continue
                if last < 0 and not eof:
                    # no line end in a full buffer: grow it, or drop an over-long line
                    if chunk.size < max_line + 1:
                        chunk = chunk.grown(min(chunk.size * 2, max_line + 1), filled)
                        continue
                    lineno += 1
                    stats.lines += 1
                    stats.skip(
                        SourceLocation(self._path, lineno),
                        "line too long",
                        f"more than {max_line} bytes",
                    )
                    filled = 0
                    skipping_long = True
                    continue
                if eof and (last < 0 or last != filled - 1):
                    chunk.buf[filled] = _NL  # close a last line that has no line end
                    n = filled + 1
                else:
                    n = last + 1
                if self.filtering:
                    if primary is None:
                        primary = self._choose_primary(chunk, n)
                    lineno = yield from self._scan_chunk(chunk, n, lineno, primary)
                else:
                    lineno = yield from self._parse_chunk(chunk, n, lineno)
                rest = filled - n if n <= filled else 0
                if rest:
                    chunk.mv[:rest] = chunk.mv[n:filled]
                filled = rest
                if eof and not filled:
                    break
        finally:
            chunk.release()

    def _parse_chunk(
        self, chunk: _ChunkBuffer, n: int, lineno: int
    ) -> Generator[ProcessEvent, None, int]:
        """No usable prefilter: parse every non-blank line."""
        buf = chunk.buf
        mv = chunk.mv
        find = buf.find
        stats = self._stats
        p = -1
        while True:
            q = find(_NL, p + 1, n)
            if q < 0:
                break
            lineno += 1
            stats.lines += 1
            s = p + 1
            p = q
            if q == s or not buf[s:q].strip():
                continue
            yield from self._emit(mv[s:q], lineno)
        return lineno

    def _search(
        self, chunk: _ChunkBuffer, n: int, conds: tuple[ByteCondition, ...]
    ) -> tuple[list[list[int]], list[int]]:
        """Hits of each condition in ``buf[:n]``, and the NUL bytes found there.

        ``strstr`` stops at a NUL: the chunk is searched in NUL-free segments, the last one
        ended by a NUL written at ``n`` for the time of the search.
        """
        buf = chunk.buf
        saved = buf[n]
        buf[n] = 0
        try:
            nuls: list[int] = []
            segments: list[tuple[int, int]] = []
            start = 0
            z = buf.find(0, 0, n)
            while z >= 0:
                segments.append((start, z))
                nuls.append(z)
                start = z + 1
                z = buf.find(0, start, n)
            segments.append((start, n))
            escapes = buf.find(0x5C, 0, n) >= 0  # any backslash at all (memchr)?
            found: list[list[int]] = []
            for cond in conds:
                hits: list[int] = []
                for needle in cond.needles:
                    _find_all(chunk, needle, segments, hits)
                if escapes:
                    _escape_hits(chunk, cond, segments, hits)
                found.append(hits)
            return found, nuls
        finally:
            buf[n] = saved

    def _choose_primary(self, chunk: _ChunkBuffer, n: int) -> ByteCondition:
        """The condition with the fewest hits in the first chunk picks the candidate lines."""
        if len(self.conditions) == 1:
            return self.conditions[0]
        found, _ = self._search(chunk, n, self.conditions)
        counts = [len(hits) for hits in found]
        return self.conditions[counts.index(min(counts))]

    def _scan_chunk(
        self, chunk: _ChunkBuffer, n: int, lineno: int, primary: ByteCondition
    ) -> Generator[ProcessEvent, None, int]:
        stats = self._stats
        (cands,), nuls = self._search(chunk, n, (primary,))
        cands.extend(nuls)  # a line with a NUL byte is parsed, so that it is reported
        cands.sort()
        cands.append(n)  # sentinel: no line end is past it
        others = [c for c in self.conditions if c is not primary]
        buf = chunk.buf
        mv = chunk.mv
        find = buf.find
        ci = 0
        nxt = cands[0]
        p = -1
        start_line = lineno
        parsed = 0
        unparsed_ok = 0
        while True:
            q = find(_NL, p + 1, n)
            if q < 0:
                break
            lineno += 1
            if q > nxt:
                s = p + 1
                ci += 1
                while cands[ci] < q:
                    ci += 1
                nxt = cands[ci]
                p = q
                if others:
                    line = bytes(mv[s:q])
                    if b"\x00" not in line and not all(c.may_match(line) for c in others):
                        # cannot match after all: only the framing check, as for other lines
                        if (buf[s] != _OPEN or buf[q - 1] != _CLOSE) and not self._framed(
                            buf, s, q, lineno
                        ):
                            unparsed_ok -= 1
                        continue
                parsed += 1
                yield from self._emit(mv[s:q], lineno)
                continue
            if (buf[p + 1] != _OPEN or buf[q - 1] != _CLOSE) and not self._framed(
                buf, p + 1, q, lineno
            ):
                unparsed_ok -= 1
            p = q
        lines = lineno - start_line
        stats.lines += lines
        stats.prefiltered += lines - parsed + unparsed_ok
        return lineno

    def _framed(self, buf: bytearray, s: int, q: int, lineno: int) -> bool:
        """Slow path of the framing check; False for blank or badly framed lines."""
        text = bytes(buf[s:q]).strip()
        if not text:
            return False
        if (text[0], text[-1]) in ((0x7B, 0x7D), (0x5B, 0x5D)):
            return True
        self._stats.skip(
            SourceLocation(self._path, lineno),
            "invalid JSON",
            f"not a whole JSON object: {text[:60]!r}",
        )
        return False

    # -- document streams (pretty-printed) --

    def _iter_stream(self, stream: io.BufferedIOBase) -> Iterator[ProcessEvent]:
        stats = self._stats
        max_line = self.options.max_line_bytes
        record: list[bytes] = []
        size = 0
        start = 0
        lineno = 0
        too_long = False
        try:
            for raw in stream:
                lineno += 1
                stats.lines += 1
                stats.bytes += len(raw)
                line = raw[3:] if lineno == 1 and raw.startswith(UTF8_BOM) else raw
                head = line[:1]
                if head in (b"{", b"["):
                    yield from self._stream_record(record, start, too_long)
                    record, size, start, too_long = [line], len(line), lineno, False
                    continue
                if not line.strip():
                    continue
                if record and head in (b" ", b"\t", b"}", b"]", b'"', b"\r"):
                    size += len(line)
                    if size > max_line:
                        too_long = True
                        record = record[:1]
                    else:
                        record.append(line)
                    continue
                stats.skip(
                    SourceLocation(self._path, lineno),
                    "invalid JSON",
                    f"not part of a JSON document: {line.strip()[:60]!r}",
                )
        except (OSError, EOFError, zlib.error) as exc:
            stats.skip(SourceLocation(self._path, lineno + 1), "read error", str(exc))
        yield from self._stream_record(record, start, too_long)

    def _stream_record(
        self, record: list[bytes], line: int, too_long: bool
    ) -> Iterator[ProcessEvent]:
        if not record:
            return
        if too_long:
            self._stats.skip(SourceLocation(self._path, line), "line too long", "record")
            return
        data = b"".join(record)
        if self.conditions and not all(c.may_match(data) for c in self.conditions):
            self._stats.prefiltered += 1
            return
        yield from self._emit(data, line)


def _read_into(
    stream: io.BufferedIOBase, target: memoryview, source: EcsSource, lineno: int
) -> int:
    """readinto that turns a corrupt or cut-off compressed stream into a counted issue."""
    try:
        return stream.readinto(target)
    except (EOFError, OSError, zlib.error) as exc:  # gzip cut short or corrupt
        source.stats.skip(SourceLocation(source.name, lineno + 1), "read error", str(exc))
        return 0


def detect_layout(head: bytes) -> str:
    """``"stream"`` for pretty-printed documents, else ``"ndjson"``.

    >>> detect_layout(b'{\\n  "type": "doc",\\n  "value": {}\\n}\\n'), detect_layout(b'{"a": 1}\\n')
    ('stream', 'ndjson')
    """
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM) :]
    lines = [line for line in head.split(b"\n") if line.strip()]
    if len(lines) < 2:
        return "ndjson"
    try:
        orjson.loads(lines[0])
    except orjson.JSONDecodeError:
        return "stream" if lines[1][:1] in (b" ", b"\t", b"}", b"]", b'"') else "ndjson"
    return "ndjson"


def sniff_ecs(head: bytes) -> float:
    """Confidence that ``head`` (the first bytes, decompressed) is ECS JSON."""
    if detect_layout(head) == "stream":
        markers = (b'"@timestamp"', b'"_source"', b'"type": "doc"', b'"type":"doc"')
        return 0.9 if any(m in head for m in markers) else 0.3
    best = 0.0
    for line in first_lines(head, 5):
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            best = max(best, 0.2 if line[:1] in (b"{", b"[") else 0.0)
            continue
        if isinstance(obj, list) and obj and isinstance(obj[0], dict):
            obj = obj[0]
        if not isinstance(obj, dict):
            continue
        if "@timestamp" in obj or "_source" in obj or "hits" in obj or obj.get("type") == "doc":
            return 1.0
        best = max(best, 0.5)
    return best


def open_ecs(path: str, options: SourceOptions) -> EcsSource:
    """The :class:`~rarebird.sources.base.SourceFactory` of the ``ecs`` format."""
    return EcsSource(path, options)


register_format("ecs", open_ecs, sniff_ecs)
