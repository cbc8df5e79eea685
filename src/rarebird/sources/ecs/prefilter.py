"""The datafeed's prefilter on raw ECS bytes: which lines can hold a wanted value.

A :class:`~rarebird.sources.base.FieldCondition` whose values are all strings becomes a
:class:`ByteCondition`: every value as a JSON string literal (quotes included: ``"process"``
contains ``ss``), plus the escapes that could spell one of its characters otherwise (every
``\\u`` escape whose code unit is a character of some value, every two-character escape of a
character some value holds). A line holding none of them cannot hold the value. The literals
are found over whole chunks with libc ``strstr`` (:func:`find_all`, ``bytes.find`` when libc is
not available) in one reused buffer (:class:`ChunkBuffer`). A condition whose values could be
written as a JSON number, boolean or null (``42``, ``true``) cannot be found as a string
literal, so it is not used on bytes.
"""

from __future__ import annotations

import ctypes
import io
import os
import re
import stat
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from rarebird.sources.base import JsonObject, Prefilter
from rarebird.sources.ecs.documents import values_at
from rarebird.sources.libc import STRSTR

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

    def holds(self, doc: JsonObject) -> bool:
        """Exact check on a parsed document (keyword semantics)."""
        found: list[Any] = []
        values_at(doc, list(self.parts), 0, found)
        values = self.values
        return any(isinstance(v, str) and v in values for v in found)


@lru_cache(maxsize=32)
def byte_conditions(prefilter: Prefilter) -> tuple[ByteCondition, ...]:
    """The prefilter's conditions that can be tested on raw bytes (built once per prefilter:
    ``serve`` opens a reader for every chunk)."""
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


class ChunkBuffer:
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

    def grown(self, size: int, keep: int) -> ChunkBuffer:
        new = ChunkBuffer(size, self._carr is not None)
        new.mv[:keep] = self.mv[:keep]
        self.release()
        return new

    def release(self) -> None:
        self._carr = None
        self.mv.release()


def buffer_size(stream: io.BufferedIOBase, chunk_bytes: int) -> int:
    """``chunk_bytes``, or less for a smaller plain file (a chunk ``serve`` hands over, a
    small log): the whole file then fits and no more memory than it needs is set aside."""
    if not isinstance(stream, io.BufferedReader):
        return chunk_bytes  # gzip, or an in-memory stream: the size is not known
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return chunk_bytes
    if not stat.S_ISREG(st.st_mode):
        return chunk_bytes
    return max(16, min(chunk_bytes, st.st_size + 1))


def find_all(
    chunk: ChunkBuffer, needle: bytes, segments: list[tuple[int, int]], out: list[int]
) -> None:
    """Append the start of every occurrence of ``needle`` in the segments of the chunk."""
    if STRSTR is not None and chunk.addr:
        strstr = STRSTR
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


def escape_hits(
    chunk: ChunkBuffer, cond: ByteCondition, segments: list[tuple[int, int]], out: list[int]
) -> None:
    for esc in cond.short_escapes:
        find_all(chunk, esc, segments, out)
    if not cond.units:
        return
    found: list[int] = []
    find_all(chunk, b"\\u", segments, found)
    buf = chunk.buf
    units = cond.units
    for pos in found:
        digits = buf[pos + 2 : pos + 6]
        if len(digits) == 4 and all(c in _HEX for c in digits) and int(digits, 16) in units:
            out.append(pos)
