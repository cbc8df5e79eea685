"""Recognising an input before reading it: compression magic bytes and the first lines of text.

A format registers a *sniffer*, ``sniffer(first_bytes) -> confidence`` in ``[0, 1]``, that looks
at the first bytes of the input (already decompressed). :func:`detect_format` asks every
registered sniffer and keeps the most confident; ties go to the format registered first.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

#: How much of an input the sniffers see (after decompression).
SNIFF_BYTES = 64 * 1024

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"

Sniffer = Callable[[bytes], float]


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
