"""One file being read and its position that survives restarts: ``dev`` + ``ino``, the offset
consumed, and the SHA-256 of its first bytes (see :mod:`rarebird.serve.follow`); finding a saved
file again after rotation, compression or ``copytruncate``; reading complete records from it."""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from typing import Any

from rarebird.serve.follow.base import MAX_RECORD_BYTES, Chunk, Framer

#: Bytes of a file's start that identify its content.
HEAD_BYTES = 1024
#: A file is recognised by content alone (no inode match) only with at least this many bytes.
MIN_HEAD_MATCH = 64
_GZ_MAGIC = b"\x1f\x8b"


def _head_hash(head: bytes) -> str:
    return hashlib.sha256(head).hexdigest()


def _is_gz(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == _GZ_MAGIC
    except OSError:
        return False


def read_head(path: str, size: int = HEAD_BYTES) -> bytes | None:
    """The first ``size`` bytes of a file (decompressed when it is gzip); None if unreadable."""
    try:
        with open(path, "rb") as f:
            raw = f.read(size)
            if raw[:2] != _GZ_MAGIC:
                return raw
            f.seek(0)
            with gzip.GzipFile(fileobj=f, mode="rb") as gz:
                out = bytearray()
                while len(out) < size:
                    piece = gz.read(size - len(out))
                    if not piece:
                        break
                    out += piece
                return bytes(out)
    except (OSError, EOFError, zlib.error):
        return None


class TrackedFile:
    """One file being read: its identity, position and open handle."""

    def __init__(
        self,
        path: str,
        dev: int,
        ino: int,
        *,
        offset: int = 0,
        line: int = 0,
        head_len: int = 0,
        head_hash: str = "",
        gz: bool = False,
    ) -> None:
        self.path = path
        self.dev = dev
        self.ino = ino
        self.offset = offset
        self.line = line
        self.head_len = head_len
        self.head_hash = head_hash or _head_hash(b"")
        self.gz = gz
        #: bytes read past ``offset`` that do not yet make a complete record
        self.partial = b""
        self.eof = False
        self.done = False
        self.last_growth = 0.0
        self.last_size = -1
        self._fd: int | None = None
        self._gzf: gzip.GzipFile | None = None

    @classmethod
    def open_path(cls, path: str, *, at_end: bool = False) -> TrackedFile | None:
        """Start tracking the file now at ``path`` (from its start, or its last line end)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        tf = cls(path, st.st_dev, st.st_ino, gz=_is_gz(path))
        if not tf.open():
            return None
        tf.refresh_head()
        if at_end and not tf.gz:
            tf.offset = tf._last_line_end(st.st_size)
        return tf

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TrackedFile:
        return cls(
            str(state["path"]), int(state["dev"]), int(state["ino"]),
            offset=int(state["offset"]), line=int(state.get("line", 0)),
            head_len=int(state["head_len"]), head_hash=str(state["head_hash"]),
            gz=bool(state.get("gz", False)),
        )  # fmt: skip

    def to_state(self) -> dict[str, Any]:
        return {
            "path": self.path, "dev": self.dev, "ino": self.ino, "offset": self.offset,
            "line": self.line, "head_len": self.head_len, "head_hash": self.head_hash,
            "gz": self.gz,
        }  # fmt: skip

    @property
    def id(self) -> str:
        return f"{self.dev}:{self.ino}"

    @property
    def read_pos(self) -> int:
        return self.offset + len(self.partial)

    # -- identity ------------------------------------------------------------------------

    def matches_head(self, head: bytes | None) -> bool:
        """True when ``head`` (a file's first bytes) starts with this file's known head."""
        if head is None or len(head) < self.head_len:
            return False
        return _head_hash(head[: self.head_len]) == self.head_hash

    def is_at(self, path: str) -> bool:
        """True when the file now at ``path`` is this file (same inode, same first bytes)."""
        try:
            st = os.stat(path)
        except OSError:
            return False
        if (st.st_dev, st.st_ino) != (self.dev, self.ino):
            return False
        return self.matches_head(read_head(path, max(self.head_len, 1)))

    # -- reading -------------------------------------------------------------------------

    def open(self) -> bool:
        """Open the file at ``self.path`` (it must be this file) and seek to ``offset``."""
        try:
            if self.gz:
                gzf = gzip.GzipFile(self.path, "rb")
                skip = self.offset
                while skip > 0:
                    piece = gzf.read(min(skip, 1 << 20))
                    if not piece:
                        break
                    skip -= len(piece)
                self._gzf = gzf
                return True
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except (OSError, EOFError, zlib.error):
            return False
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (self.dev, self.ino):
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _last_line_end(self, size: int) -> int:
        assert self._fd is not None
        pos = size
        while pos > 0:
            start = max(0, pos - 65536)
            block = os.pread(self._fd, pos - start, start)
            nl = block.rfind(b"\n")
            if nl >= 0:
                return start + nl + 1
            pos = start
        return 0

    def size(self) -> int | None:
        if self._fd is None:
            return None
        try:
            return os.fstat(self._fd).st_size
        except OSError:
            return None

    def refresh_head(self) -> None:
        """Extend the known head while the file is shorter than :data:`HEAD_BYTES`."""
        if self.head_len >= HEAD_BYTES:
            return
        if self._fd is not None:
            head = os.pread(self._fd, HEAD_BYTES, 0)
        else:
            head = read_head(self.path) or b""
        if len(head) > self.head_len:
            self.head_len = len(head)
            self.head_hash = _head_hash(head)

    def head_still_matches(self) -> bool:
        if self._fd is None or self.head_len == 0:
            return True
        return _head_hash(os.pread(self._fd, self.head_len, 0)) == self.head_hash

    def read(self, budget: int) -> bytes:
        """Up to ``budget`` new bytes; sets :attr:`eof` when there was no more."""
        try:
            if self._gzf is not None:
                data = self._gzf.read(budget)
            elif self._fd is not None:
                data = os.pread(self._fd, budget, self.read_pos)
            else:
                data = b""
        except (OSError, EOFError, zlib.error):
            data = b""
            self.done = self.gz  # a corrupt or cut-off .gz ends here
        self.eof = len(data) < budget
        if self.gz and self.eof:
            self.done = True
        return data

    def truncated(self) -> bool:
        """True when the file shrank below what was read, or its first bytes changed."""
        if self.gz:
            return False
        size = self.size()
        if size is None or size == self.last_size:
            return False
        self.last_size = size
        if size < self.read_pos or not self.head_still_matches():
            return True
        self.refresh_head()
        return False

    def rewind(self) -> None:
        """Read again from the start (after truncation)."""
        self.offset = 0
        self.line = 0
        self.partial = b""
        self.head_len = 0
        self.head_hash = _head_hash(b"")
        self.refresh_head()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._gzf is not None:
            self._gzf.close()
            self._gzf = None


def take_chunk(
    tf: TrackedFile,
    source: str,
    framer: Framer,
    budget: int,
    now: float,
    *,
    final: bool = False,
    idle_after: float = 1.0,
) -> Chunk | None:
    """Read from ``tf`` and return its complete records (None when there are none)."""
    new = b"" if tf.done else tf.read(budget)
    if new:
        tf.last_growth = now
    data = tf.partial + new if tf.partial else new
    if not data:
        return None
    final = final or tf.done
    idle = tf.eof and now - tf.last_growth >= idle_after
    cut = framer(data, final and tf.eof, idle)
    if cut == 0 and len(data) > MAX_RECORD_BYTES:
        cut = len(data)
    tf.partial = data[cut:]
    if cut == 0:
        return None
    body = data[:cut]
    first = tf.line + 1
    tf.offset += cut
    tf.line += body.count(b"\n")
    return Chunk(source, tf.path, tf.id, body, first)


def bytes_left(tf: TrackedFile) -> int:
    """Bytes of ``tf`` not read yet (0 for a gzip file, whose size says nothing, or a done one)."""
    if tf.gz or tf.done:
        return 0
    size = tf.size()
    return max(0, (size or 0) - tf.read_pos)


def mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def locate(saved: TrackedFile, candidates: list[str]) -> str | None:
    """Where the saved file is now: same inode and first bytes, else same first bytes (a
    compressed or copied rotation) when enough of them are known."""
    for path in candidates:
        if saved.is_at(path):
            return path
    if saved.head_len >= MIN_HEAD_MATCH:
        for path in candidates:
            if saved.matches_head(read_head(path, saved.head_len)):
                return path
    return None


def reopen(saved: TrackedFile, path: str) -> TrackedFile | None:
    """The saved position, on the file found at ``path`` (maybe a compressed copy)."""
    st = os.stat(path)
    gz = _is_gz(path)
    tf = TrackedFile(
        path, st.st_dev, st.st_ino, offset=saved.offset, line=saved.line,
        head_len=saved.head_len, head_hash=saved.head_hash, gz=gz,
    )  # fmt: skip
    if not tf.open():
        return None
    tf.refresh_head()
    return tf


def find_copy(cur: TrackedFile, candidates: list[str]) -> TrackedFile | None:
    """After ``copytruncate``: the copy holding what ``cur`` had, continued at its offset."""
    if cur.head_len < MIN_HEAD_MATCH:
        return None
    for path in candidates:
        if path == cur.path or not cur.matches_head(read_head(path, cur.head_len)):
            continue
        tf = reopen(cur, path)
        if tf is None:
            continue
        if tf.gz or (tf.size() or 0) > cur.offset:
            return tf
        tf.close()
    return None
