"""The ECS reader: NDJSON in chunks, with the datafeed's prefilter on raw bytes, or a document
stream record by record.

The fast path (NDJSON with a prefilter)
---------------------------------------
With a :class:`~rarebird.sources.base.Prefilter` (say ``process.name`` in {netstat, ss, route,
showmount}) few lines can match, and only they are parsed. Per 8 MiB chunk, at C speed, it:

1. finds every occurrence of each value as a JSON string literal (``"ss"`` with its quotes:
   ``"process"`` contains ``ss``) with libc ``strstr`` or Hyperscan (``bytes.find`` without
   libc), plus the ``\\u`` and two-character escapes that could spell a character of a value;
2. finds the line ends with numpy (:mod:`.lines`), counting lines; a line holding a hit is a
   *candidate*, the others are checked for framing only.

The condition rarest in the first chunk picks the candidates; a candidate must also hold a
literal (or escape) of every other usable condition. When the caller names its fields (the job
does), a plain candidate goes through the quick lane of :mod:`.lane` (msgspec decodes just
those), others through orjson; either way the document is checked exactly against every
condition, and what fails is counted in ``stats.prefiltered`` with the lines never parsed
(byte patterns: :mod:`.prefilter`). The prefilter only ever keeps too much, never too little.

On lines it does not parse, fast mode reports (file:line) a line not framed as ``{...}`` or
``[...]`` (whitespace and ``\\r`` allowed) as ``invalid JSON``, a line holding a NUL byte (it is
parsed), and a line that does not fit the buffer grown to ``max_line_bytes`` as ``line too
long``. It does **not** detect there: a framed line invalid inside (``{"a": }``, two objects
glued), invalid UTF-8, a line longer than ``max_line_bytes`` that still fits the buffer, a
document without a valid ``@timestamp`` (none can match the datafeed; finding out means parsing
them; candidates failing the exact check are not checked for it either). Without a prefilter
every line is parsed and every problem is reported.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import orjson

from rarebird.errors import ReadStats
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources.base import FieldCondition, Prefilter, SourceOptions
from rarebird.sources.ecs.documents import (
    PREFILTERED,
    DocumentError,
    Wanted,
    documents_in,
    event_from_document,
)
from rarebird.sources.ecs.layout import detect_layout, stream_records
from rarebird.sources.ecs.lines import lines_to_visit
from rarebird.sources.ecs.multiscan import CALIBRATE_MIN, MultiLiteral, search_mode
from rarebird.sources.ecs.parallel import can_split, scan_parallel
from rarebird.sources.ecs.prefilter import (
    ByteCondition,
    ChunkBuffer,
    buffer_size,
    byte_conditions,
    escape_hits,
    find_all,
)
from rarebird.sources.inputs import open_binary
from rarebird.sources.libc import STRSTR
from rarebird.sources.multipattern import faster, load_hyperscan
from rarebird.sources.ranges import RangeStream
from rarebird.sources.sniff import UTF8_BOM

if TYPE_CHECKING:
    from rarebird.sources.ecs.lane import StructLane

#: Bytes read per chunk in fast mode (the buffer grows for longer lines, up to max_line_bytes).
CHUNK_BYTES = 8 * 1024 * 1024

_OPEN = 0x7B  # {
_CLOSE = 0x7D  # }
_NL = 0x0A


class EcsSource:
    """ECS documents from one input (file, FIFO or ``-``), plain or gzip."""

    def __init__(
        self,
        path: str,
        options: SourceOptions | None = None,
        *,
        chunk_bytes: int = CHUNK_BYTES,
        search: str | None = None,
        lane: bool = True,
    ) -> None:
        mode = self.search_mode = search_mode(search)  # auto, hyperscan, libc, python
        self._path = path
        self.options = options or SourceOptions()
        self._stats = ReadStats()
        self.chunk_bytes = max(16, chunk_bytes)
        self.use_libc = STRSTR is not None and mode != "python"
        self._hs = load_hyperscan() if mode in ("auto", "hyperscan") else None
        if mode == "hyperscan" and self._hs is None:
            raise ValueError("search hyperscan: the hyperscan module is missing or cannot run")
        #: the search in use: "hyperscan", "libc" or "python" (auto times the first chunk)
        self.searcher = (
            "hyperscan" if mode == "hyperscan" else "libc" if self.use_libc else "python"
        )
        self._calibrate = mode == "auto" and self._hs is not None
        self._multi: dict[tuple[ByteCondition, ...], MultiLiteral] = {}
        #: the condition whose hits pick the candidate lines (chosen on the first chunk)
        self._primary: ByteCondition | None = None
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
            # imported here: msgspec is needed only when the caller names its fields
            from rarebird.sources.ecs.lane import StructLane

            self.lane = StructLane(self.wanted.names, self.conditions)
        #: whether the prefilter can skip lines at all (some condition testable on bytes)
        self.filtering = bool(self.conditions)
        #: "ndjson" or "stream", known once iteration has started
        self.layout: str | None = None
        #: processes reading the input, once iteration has started (:meth:`reading`)
        self._processes = 0

    @property
    def name(self) -> str:
        return self._path

    @property
    def stats(self) -> ReadStats:
        return self._stats

    def count_anew(self) -> ReadStats:
        """Count into fresh stats from now on (a worker reading one piece after another)."""
        self._stats = ReadStats()
        return self._stats

    def reading(self) -> str | None:
        """How the input was read, once begun: the literal search (as chosen here), processes."""
        if not self._processes:
            return None
        names = {"hyperscan": "Hyperscan", "libc": "libc strstr", "python": "bytes.find"}
        how = f"literals found by {names[self.searcher]}" if self.filtering else "every line parsed"
        if self.layout == "stream":
            how = "pretty-printed documents, record by record"
        return how if self._processes == 1 else f"{how}, {self._processes} processes"

    def __iter__(self) -> Iterator[ProcessEvent]:
        workers = self.options.extra.get("workers", "1")
        if workers.isdigit() and int(workers) > 1 and can_split(self, self._path):
            self._processes = int(workers)
            yield from scan_parallel(self, self._path, int(workers), PieceReader())
            return
        self._processes = 1
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

    def _emit(self, data: bytes | memoryview, line: int) -> Iterator[ProcessEvent]:
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

    def read_ndjson(self, stream: io.RawIOBase, at_start: bool = True) -> Iterator[ProcessEvent]:
        """The events of NDJSON ``stream`` (closed at the end); not ``at_start``: a range of a
        file after its first line (line numbers are then relative to the range)."""
        with stream:
            yield from self._iter_ndjson(stream, at_start)  # type: ignore[arg-type]

    def _iter_ndjson(
        self, stream: io.BufferedIOBase, at_start: bool = True
    ) -> Iterator[ProcessEvent]:
        stats = self._stats
        max_line = self.options.max_line_bytes
        chunk = ChunkBuffer(buffer_size(stream, self.chunk_bytes), self.use_libc)
        filled = 0
        eof = False
        first = at_start
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
                        if self._calibrate and n >= CALIBRATE_MIN:
                            self._choose_search(chunk, n)
                            self._calibrate = False  # once per reader, not per piece
                        primary = self._primary = self._primary or self._choose_primary(chunk, n)
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
        self, chunk: ChunkBuffer, n: int, lineno: int
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
        self, chunk: ChunkBuffer, n: int, conds: tuple[ByteCondition, ...]
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
            if self.searcher == "hyperscan":
                return self._multi_for(conds).search(buf, n), nuls
            escapes = buf.find(0x5C, 0, n) >= 0  # any backslash at all (memchr)?
            found: list[list[int]] = []
            for cond in conds:
                hits: list[int] = []
                for needle in cond.needles:
                    find_all(chunk, needle, segments, hits)
                if escapes:
                    escape_hits(chunk, cond, segments, hits)
                found.append(hits)
            return found, nuls
        finally:
            buf[n] = saved

    def _multi_for(self, conds: tuple[ByteCondition, ...]) -> MultiLiteral:
        multi = self._multi.get(conds)
        if multi is None:
            assert self._hs is not None
            multi = self._multi[conds] = MultiLiteral(self._hs, conds)
        return multi

    def _choose_search(self, chunk: ChunkBuffer, n: int) -> None:
        """``auto``: Hyperscan for this input when it searches its first chunk faster."""
        own = self.searcher

        def run(searcher: str) -> None:
            self.searcher = searcher
            self._search(chunk, n, self.conditions)

        hs_faster = faster(lambda: run(own), lambda: run("hyperscan"))
        self.searcher = "hyperscan" if hs_faster else own

    def _choose_primary(self, chunk: ChunkBuffer, n: int) -> ByteCondition:
        """The condition with the fewest hits in the first chunk picks the candidate lines."""
        if len(self.conditions) == 1:
            return self.conditions[0]
        found, _ = self._search(chunk, n, self.conditions)
        counts = [len(hits) for hits in found]
        return self.conditions[counts.index(min(counts))]

    def _scan_chunk(
        self, chunk: ChunkBuffer, n: int, lineno: int, primary: ByteCondition
    ) -> Generator[ProcessEvent, None, int]:
        stats = self._stats
        (cands,), nuls = self._search(chunk, n, (primary,))
        cands.extend(nuls)  # a line with a NUL byte is parsed, so that it is reported
        others = [c for c in self.conditions if c is not primary]
        buf = chunk.buf
        mv = chunk.mv
        total, visit = lines_to_visit(buf, n, cands)
        parsed = 0
        unparsed_ok = 0
        for i, s, q, hit, framed in visit:
            at = lineno + i + 1
            if hit:
                if others:
                    line = bytes(mv[s:q])
                    if b"\x00" not in line and not all(c.may_match(line) for c in others):
                        # cannot match after all: only the framing check, as for other lines
                        if not framed and not self._framed(buf, s, q, at):
                            unparsed_ok -= 1
                        continue
                parsed += 1
                yield from self._emit(mv[s:q], at)
            elif not self._framed(buf, s, q, at):
                unparsed_ok -= 1
        stats.lines += total
        stats.prefiltered += total - parsed + unparsed_ok
        return lineno + total

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
        records = stream_records(stream, self._path, self._stats, self.options.max_line_bytes)
        for record, line, too_long in records:
            yield from self._stream_record(record, line, too_long)

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


class PieceReader:
    """Reads pieces of one file described by JSON specs with one reader, so that its set-up
    (the quick lane, the choice of search) is made once per process, not once per piece."""

    def __init__(self) -> None:
        self._source: EcsSource | None = None

    def __call__(self, spec_json: str) -> tuple[Iterator[ProcessEvent], ReadStats]:
        doc = orjson.loads(spec_json)
        source = self._source
        if source is None:
            conditions = tuple(FieldCondition(f, frozenset(v)) for f, v in doc["prefilter"])
            options = SourceOptions(
                prefilter=Prefilter(conditions),
                fields=frozenset(doc["fields"]) if doc["fields"] is not None else None,
                max_line_bytes=doc["max_line_bytes"],
            )
            source = self._source = EcsSource(
                doc["path"],
                options,
                chunk_bytes=doc["chunk_bytes"],
                search=doc["search"],
                lane=doc["lane"],
            )
        stats = source.count_anew()
        stream = RangeStream(doc["path"], doc["start"], doc["stop"])
        return source.read_ndjson(stream, at_start=False), stats


def _read_into(
    stream: io.BufferedIOBase, target: memoryview, source: EcsSource, lineno: int
) -> int:
    """readinto that turns a corrupt or cut-off compressed stream into a counted issue."""
    try:
        return stream.readinto(target)
    except (EOFError, OSError, zlib.error) as exc:  # gzip cut short or corrupt
        source.stats.skip(SourceLocation(source.name, lineno + 1), "read error", str(exc))
        return 0


def open_ecs(path: str, options: SourceOptions) -> EcsSource:
    """The :class:`~rarebird.sources.base.SourceFactory` of the ``ecs`` format."""
    return EcsSource(path, options)
