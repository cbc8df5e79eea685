"""Recognising an input before reading it: compression magic bytes and the first lines of text.

Each format has a *sniffer* (:data:`~rarebird.sources.base.Sniffer`), ``sniffer(first_bytes)
-> confidence`` in ``[0, 1]``, that looks at the first bytes of the input (already
decompressed). :func:`detect_format` asks every sniffer and keeps the most confident; ties go
to the format listed first (the order of :mod:`rarebird.sources.registry`). The helpers here
are shared by the sniffers of the formats.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from rarebird.sources.base import Sniffer

#: How much of an input the sniffers see (after decompression).
SNIFF_BYTES = 64 * 1024

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Detection:
    """What :func:`detect_format` chose, and how sure it was."""

    format: str
    confidence: float


def is_gzip(head: bytes) -> bool:
    """True when ``head`` starts with the gzip magic bytes (whatever the file is called)."""
    return head[:2] == GZIP_MAGIC


def gunzip_head(data: bytes, limit: int = SNIFF_BYTES) -> bytes:
    """Decompress as much of the start of a gzip stream as ``data`` holds (best effort)."""
    out = bytearray()
    try:
        while data and len(out) < limit:
            dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += dec.decompress(data, limit - len(out))
            if not dec.eof:
                break
            data = dec.unused_data  # a multi-member gzip file goes on with the next member
    except zlib.error:
        pass
    return bytes(out)


def first_lines(head: bytes, count: int = 5) -> list[bytes]:
    """Up to ``count`` non-blank lines of ``head``, stripped; a BOM is dropped.

    The last line is left out when ``head`` was cut in the middle of it (unless it is the
    only one).

    >>> first_lines(b'\\n{"a": 1}\\r\\n\\n{"b"')
    [b'{"a": 1}']
    """
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM) :]
    parts = head.split(b"\n")
    if len(parts) > 1 and parts[-1]:
        parts = parts[:-1]  # cut short
    lines = [p.strip() for p in parts if p.strip()]
    return lines[:count]


def json_lines_score(head: bytes, key: str, any_of: tuple[str, ...]) -> float:
    """0.95 times the share of the first lines that are JSON objects holding ``key`` and at
    least one of ``any_of`` (one event per line, as Laurel and osquery write them).

    >>> json_lines_score(b'{"ID": "1.2:3", "SYSCALL": {}}\\nnot json\\n', "ID", ("SYSCALL",))
    0.475
    """
    lines = first_lines(head, 5)
    hits = 0
    for line in lines:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict) and key in obj and any(k in obj for k in any_of):
            hits += 1
    return 0.95 * hits / len(lines) if lines else 0.0


def detect_format(head: bytes, sniffers: Mapping[str, Sniffer]) -> Detection | None:
    """The most confident format for ``head``, or None when no sniffer is above 0."""
    best: Detection | None = None
    for name, sniff in sniffers.items():
        try:
            confidence = float(sniff(head))
        except Exception:  # a broken sniffer must not stop the others
            continue
        if confidence > 0 and (best is None or confidence > best.confidence):
            best = Detection(name, min(confidence, 1.0))
    return best
