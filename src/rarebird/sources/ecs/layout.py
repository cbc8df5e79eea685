"""How an ECS input is laid out: NDJSON, or a stream of pretty-printed documents.

The layout is chosen from the first non-blank line (:func:`detect_layout`): if it is not a
whole JSON value and the next line is indented (or closes a bracket), the input is a document
stream. In a stream, a record starts at every line whose first byte is ``{`` or ``[``
(:func:`stream_records`); a record is limited to ``max_line_bytes`` like a line (a whole
pretty-printed ``_search`` response is one record). :func:`sniff_ecs` is the format's sniffer.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator

import orjson

from rarebird.errors import ReadStats
from rarebird.events import SourceLocation
from rarebird.sources.sniff import UTF8_BOM, first_lines


def stream_records(
    stream: io.BufferedIOBase, path: str, stats: ReadStats, max_line: int
) -> Iterator[tuple[list[bytes], int, bool]]:
    """The records of a document stream: ``(lines, first line number, too long)``.

    Lines, bytes, stray lines (``invalid JSON``) and read errors are counted in ``stats``; a
    record longer than ``max_line`` keeps only its first line and is flagged too long.
    """
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
                if record:
                    yield record, start, too_long
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
                SourceLocation(path, lineno),
                "invalid JSON",
                f"not part of a JSON document: {line.strip()[:60]!r}",
            )
    except (OSError, EOFError, zlib.error) as exc:
        stats.skip(SourceLocation(path, lineno + 1), "read error", str(exc))
    if record:
        yield record, start, too_long


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
        if head.removeprefix(UTF8_BOM).lstrip()[:1] not in (b"{", b"["):
            return 0.0  # indented prose (a licence, a README), not a JSON document
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
