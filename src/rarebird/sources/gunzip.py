"""Reading gzip inputs (rotated ``audit.log.1.gz``, ``.ndjson.gz``): ISA-L's inflate when it can.

:class:`GzipInput` is the stream :func:`~rarebird.sources.inputs.open_binary` returns for a
gzip input. On a regular file, with the ``isal`` package installed, it decompresses with
ISA-L's igzip (about 2.4 times zlib's speed on this project's machine, see docs/BENCHMARKS.md);
elsewhere (pipes, no wheel, ``RAREBIRD_GZIP=zlib``) with the standard library's ``gzip``.

The two differ only on a damaged file: igzip hands out less of what precedes the damage, and
may name it differently. So at the first error the fast reader is dropped: the file is read
again from its start with the standard library, the bytes already handed out are skipped, and
the call is repeated, so what is read, and the error at the end, are exactly the standard
library's. Every read also fills the buffer piece by piece, so that what was decompressed
before a corrupt or cut-off part is handed over before the error is raised (on the next call).
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Callable
from typing import Any

ENV = "RAREBIRD_GZIP"


def _fast_reader() -> Callable[[io.BufferedReader], Any] | None:
    if os.environ.get(ENV, "") == "zlib":
        return None
    try:
        from isal import igzip
    except ImportError:
        return None
    reader: Callable[[io.BufferedReader], Any] = igzip._IGzipReader
    return reader


class GzipInput(gzip.GzipFile):
    """A gzip stream over an input :mod:`rarebird.sources.inputs` opened; closing it closes
    the input too."""

    def __init__(self, stream: io.BufferedReader) -> None:
        super().__init__(fileobj=stream, mode="rb")
        self._input = stream
        self._error: BaseException | None = None
        self._fast = False
        self._handed_out = 0
        fast = _fast_reader()
        if fast is not None and stream.seekable() and stream.tell() == 0:
            self._buffer = io.BufferedReader(fast(stream))
            self._fast = True

    @property
    def fast(self) -> bool:
        """True while ISA-L decompresses (False after a fallback)."""
        return self._fast

    def _call(self, method: Callable[[], bytes], consumes: bool = True) -> bytes:
        try:
            data = method()
        except Exception:
            if not self._fast:
                raise
            # the fast reader failed: start again with the standard library, skip the bytes
            # already handed out (counted here: after an error igzip's position is past them),
            # and repeat the call there
            self._fast = False
            self._input.seek(0)
            self._buffer = io.BufferedReader(gzip._GzipReader(self._input))
            self._buffer.seek(self._handed_out)
            data = method()
        if consumes:
            self._handed_out += len(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        return self._call(lambda: super(GzipInput, self).read(size))

    def read1(self, size: int = -1) -> bytes:
        return self._call(lambda: super(GzipInput, self).read1(size))

    def peek(self, n: int) -> bytes:
        return self._call(lambda: super(GzipInput, self).peek(n), consumes=False)

    def readline(self, size: int | None = -1) -> bytes:
        return self._call(lambda: super(GzipInput, self).readline(size))

    def readinto(self, b: Any) -> int:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        view = memoryview(b).cast("B")
        total = 0
        while total < len(view):
            try:
                piece = self.read1(len(view) - total)
            except (OSError, EOFError, zlib.error) as exc:
                if not total:
                    raise
                self._error = exc
                break
            if not piece:
                break
            view[total : total + len(piece)] = piece
            total += len(piece)
        return total

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._input.close()
