"""The C library's byte searches, where it has them: ``strstr`` (the ECS reader's literal
search, :mod:`rarebird.sources.ecs.prefilter`) and ``memmem`` (:func:`finder`).

The auditd fast path searches up to 64 KiB either side of every candidate event for the
event's other records (:mod:`rarebird.sources.auditd.fast`). On the realistic ENRICHED audit
log (docs/BENCHMARKS.md) glibc's ``memmem`` took 9.6 us a search in a whole run (40,598 searches
of 65.7 KB on average) where ``bytearray.find`` and ``rfind`` took about 13 us; on 2,000 ranges
from the middle of the log, 11 us against 32 us. Through ``ctypes`` a call costs about 1 us
more, so short ranges keep ``bytes.find``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from functools import cache
from typing import Any

#: below this many bytes ``bytearray.find`` is cheaper than a call into libc
SHORT = 2048

#: ``find(needle, start, end)``: what ``buf.find`` answers, for one buffer
Find = Callable[[bytes, int, int], int]


def _libc_function(name: str, *argtypes: Any) -> Callable[..., int | None] | None:
    """The C library's ``name`` returning a pointer, or None (no libc, or a libc without it)."""
    try:
        fn = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError, TypeError):
        return None
    fn.restype = ctypes.c_void_p
    fn.argtypes = argtypes
    return fn  # type: ignore[no-any-return]


#: ``strstr(address, needle)``: the address of the first occurrence before a NUL, or None
STRSTR = _libc_function("strstr", ctypes.c_void_p, ctypes.c_char_p)


@cache
def _memmem() -> Callable[..., int | None] | None:
    return _libc_function(
        "memmem", ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t
    )


def finder(buf: bytearray, *, use_libc: bool = True) -> Find:
    """``buf.find(needle, start, end)`` for ``buf``, by ``memmem`` on long ranges when libc has
    it. The buffer is exported while the function lives: it must not change size.

    >>> buf = bytearray(b"x" * 5000 + b"needle" + b"y" * 5000)
    >>> find = finder(buf)
    >>> find(b"needle", 0, len(buf)), find(b"needle", 5001, len(buf)), find(b"needle", 0, 5005)
    (5000, -1, -1)
    >>> find(b"needle", -7, 10**9) == buf.find(b"needle", -7, 10**9)  # negative: from the end
    True
    """
    memmem = _memmem() if use_libc else None
    if memmem is None:
        return buf.find
    carr = (ctypes.c_char * len(buf)).from_buffer(buf)
    addr = ctypes.addressof(carr)
    size = len(buf)
    py_find = buf.find

    def find(needle: bytes, start: int, end: int) -> int:
        if start < 0 or end > size or end - start < SHORT:
            return py_find(needle, start, end)
        p = memmem(addr + start, end - start, needle, len(needle))
        _ = carr  # keeps the export (and so the address) alive with this function
        return -1 if p is None else p - addr

    return find
